"""The typed dialect (seeds 000 and 002): {"type": ..., "timestamp": ..., "payload": {...}}.

docs/protocols/typed.md is the reference for every frame and code here.
"""

import time

import orjson

from .. import __version__, errors
from ..core import commands as c
from ..core.events import Invited, MemberJoined, MemberLeft, MessagePosted, Notice, PresenceChanged
from ..core.moderation import SendFeedback
from ..errors import ChatError
from . import Request, parse_json

PROTOCOL_VERSION = "1.0"


def envelope(kind: str, payload: dict) -> bytes:
    return orjson.dumps({"type": kind, "timestamp": int(time.time()), "payload": payload})


def _text(payload: dict, key: str, *alternatives: str) -> str:
    """A required string field (the first of `key`, `alternatives` present)."""
    for name in (key, *alternatives):
        value = payload.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise ChatError(errors.BAD_FIELD, f"payload.{name} must be a string")
            return value
    raise ChatError(errors.BAD_FIELD, f"payload.{key} is required")


def _optional_text(payload: dict, key: str) -> str:
    return "" if payload.get(key) is None else _text(payload, key)


def _message_payload(event: MessagePosted) -> dict:
    m = event.message
    payload = {
        "sender": m.sender,
        "receiver": event.receiver,
        "content": m.body,
        "messageId": m.id,
        "timestamp": m.ts // 1000,
    }
    if event.room.kind != "direct":
        payload["room"] = event.room.id
    return payload


def encode_event(event) -> bytes | None:
    match event:
        case MessagePosted(offline=offline):
            return envelope("OFFLINE_MESSAGE" if offline else "TEXT_MESSAGE", _message_payload(event))
        case PresenceChanged(online=False):
            return envelope("USER_LOGOUT", {"username": event.user})
        case PresenceChanged():
            return envelope("USER_STATUS_UPDATE", {"username": event.user, "status": event.status})
        case MemberJoined():
            return envelope("USER_JOIN", {"username": event.user, "room": event.room.id})
        case MemberLeft():
            return envelope("USER_LEAVE", {"username": event.user, "room": event.room.id})
        case Invited():
            return envelope(
                "GROUP_INVITE",
                {"sender": event.inviter, "receiver": event.invitee, "group": event.room.name, "groupId": event.room.id},
            )
        case Notice():
            return envelope("SERVER_NOTIFICATION", {"code": event.code, "message": event.text})
    return None


class TypedDialect:
    name = "typed"
    encode_event = staticmethod(encode_event)

    def greeting(self) -> list[bytes]:
        return [
            envelope(
                "CONNECTION_ESTABLISHED",
                {"server": "chatd", "version": __version__, "protocolVersion": PROTOCOL_VERSION, "dialect": self.name},
            )
        ]

    def error(self, error: ChatError) -> bytes:
        payload = {"code": error.code, "message": error.message}
        if error.original_type:
            payload["originalType"] = error.original_type
        return envelope("ERROR", payload)

    def _errors(self, error: ChatError) -> list[bytes]:
        return [self.error(error)]

    def decode(self, raw: bytes) -> Request:
        frame = parse_json(raw)
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise ChatError(errors.BAD_FRAME, 'a typed frame is {"type": "...", "timestamp": ..., "payload": {...}}')
        kind = frame["type"]
        try:
            payload = frame.get("payload", {})
            if not isinstance(payload, dict):
                raise ChatError(errors.BAD_FIELD, "payload must be an object")
            handler = getattr(self, "_on_" + kind, None) if kind.isupper() else None
            if handler is None:
                raise ChatError(errors.UNKNOWN_TYPE, f"unknown message type {kind[:64]!r}")
            return handler(payload)
        except ChatError as e:
            e.original_type = kind[:64]
            raise

    # -- accounts

    @staticmethod
    def _credentials(payload: dict, login: bool):
        if login and "sessionKey" in payload:
            return c.Login(session_key=_text(payload, "sessionKey"))
        username = _text(payload, "username")
        password = _text(payload, "passwordHash", "password")
        return c.Login(username, password) if login else c.Register(username, password)

    def _on_REGISTER_REQUEST(self, p: dict) -> Request:
        def failed(e: ChatError):
            code = errors.REGISTER_SERVER_ERROR if e.code == errors.SERVER_ERROR else e.code
            return [envelope("REGISTER_RESPONSE", {"success": False, "code": code, "message": e.message})]

        return Request(
            self._credentials(p, login=False),
            lambda user: [envelope("REGISTER_RESPONSE", {"success": True, "code": 0, "username": user})],
            failed,
        )

    def _login(self, p: dict, ok_type: str, fail_type: str, server_error: int) -> Request:
        def failed(e: ChatError):
            code = server_error if e.code == errors.SERVER_ERROR else e.code
            return [envelope(fail_type, {"success": False, "code": code, "message": e.message})]

        def succeeded(result):
            payload = {"success": True, "code": 0, "username": result.user, "sessionKey": result.session_key}
            return [envelope(ok_type, payload)]

        return Request(self._credentials(p, login=True), succeeded, failed)

    def _on_LOGIN_REQUEST(self, p: dict) -> Request:
        return self._login(p, "LOGIN_RESPONSE", "LOGIN_RESPONSE", errors.LOGIN_SERVER_ERROR)

    def _on_AUTH_REQUEST(self, p: dict) -> Request:
        return self._login(p, "AUTH_RESPONSE", "AUTH_ERROR", errors.LOGIN_SERVER_ERROR)

    def _on_USER_LOGOUT(self, p: dict) -> Request:
        return Request(
            c.Logout(), lambda user: [envelope("USER_LOGOUT", {"username": user, "code": 0})], self._errors
        )

    def _on_USER_STATUS_UPDATE(self, p: dict) -> Request:
        return Request(
            c.SetStatus(_text(p, "status")),
            lambda r: [envelope("USER_STATUS_UPDATE", {"username": r[0], "status": r[1], "code": 0})],
            self._errors,
        )

    # -- rooms

    def _on_USER_JOIN(self, p: dict) -> Request:
        return Request(
            c.JoinRoom(_text(p, "room")),
            lambda room: [envelope("USER_JOIN", {"room": room.id, "members": len(room.members), "code": 0})],
            self._errors,
        )

    def _on_USER_LEAVE(self, p: dict) -> Request:
        return Request(
            c.LeaveRoom(_text(p, "room")),
            lambda room: [envelope("USER_LEAVE", {"room": room.id, "code": 0})],
            self._errors,
        )

    # -- messages

    def _on_TEXT_MESSAGE(self, p: dict) -> Request:
        content = _text(p, "content")
        room = _optional_text(p, "room")
        receiver = room or _text(p, "receiver")
        client_id = p.get("clientMessageId")
        echo = {"clientMessageId": client_id} if isinstance(client_id, (str, int)) and not isinstance(client_id, bool) else {}

        def acked(result):
            message, _ = result
            payload = {"messageId": message.id, "receiver": receiver, "timestamp": message.ts // 1000, "code": 0}
            return [envelope("MESSAGE_ACK", payload | echo)]

        def nacked(e: ChatError):
            return [envelope("MESSAGE_NACK", {"receiver": receiver, "code": e.code, "message": e.message} | echo)]

        sender = _optional_text(p, "sender")
        return Request(c.SendMessage(content, to_room=room, to=receiver, sender=sender), acked, nacked)

    # -- connection

    def _on_PING(self, p: dict) -> Request:
        return Request(None, lambda _: [envelope("PONG", p)], self._errors)

    def _on_PROTOCOL_VERSION(self, p: dict) -> Request:
        asked = p.get("version")
        compatible = asked is None or str(asked).split(".")[0] == PROTOCOL_VERSION.split(".")[0]
        payload = {"version": PROTOCOL_VERSION, "supported": [PROTOCOL_VERSION], "compatible": compatible}
        return Request(None, lambda _: [envelope("PROTOCOL_VERSION", payload)], self._errors)

    # -- feedback (seed 000), read by the operators in the admin shell

    def _on_FEEDBACK(self, p: dict) -> Request:
        return Request(
            SendFeedback(_text(p, "content", "message")), lambda _: [envelope("FEEDBACK", {"code": 0})], self._errors
        )
