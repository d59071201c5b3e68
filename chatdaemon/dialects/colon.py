"""The colon dialect (seed 004): {"type": "CHAT:SEND_MESSAGE_TEXT", "data": ...} both ways.

docs/protocols/colon.md is the reference. Groups are the shared rooms: GROUP:ADD_GROUP makes a
public room led by its creator (who alone may GROUP:DELETE_GROUP it); GROUP:JOIN_GROUP joins any
public room (or a group one is invited to). Media (CHAT:SEND_MESSAGE_IMAGE/AUDIO/GIF) is given
inline as base64 `data` (at most files.inline_max_bytes decoded, checked by the core) or as a stored `fileId`.
A frame with inline data is a file-transfer frame (Request.transfer): budgeted by bytes, and it may be
larger than an ordinary frame.
"""

import base64
import binascii

import orjson

from .. import errors
from ..core import commands as c
from ..core.events import (
    MemberJoined,
    MemberLeft,
    MessagePosted,
    Notice,
    PresenceChanged,
    ReadReceipt,
    RoomAdded,
    RoomRemoved,
    Typing,
)
from ..core.model import DIRECT, Address, Media, Message, Text
from ..errors import ChatError
from . import Dialect, Request, answering, parse_json
from .shapes import message_json

MEDIA = {"CHAT:SEND_MESSAGE_IMAGE": "image", "CHAT:SEND_MESSAGE_AUDIO": "audio", "CHAT:SEND_MESSAGE_GIF": "gif"}


def frame(kind: str, data) -> bytes:
    return orjson.dumps({"type": kind, "data": data})


def _str(data, key: str, *alternatives: str) -> str:
    if not isinstance(data, dict):
        raise ChatError(errors.BAD_FIELD, "data must be an object")
    for name in (key, *alternatives):
        value = data.get(name)
        if value is not None:
            if not isinstance(value, str) or not value:
                raise ChatError(errors.BAD_FIELD, f"data.{name} must be a non-empty string")
            return value
    raise ChatError(errors.BAD_FIELD, f"data.{key} is required")


def group_json(room) -> dict:
    return {"id": room.id, "name": room.name, "kind": room.kind, "leader": room.leader, "members": len(room.members)}


def chat_message(m) -> dict:
    out = message_json(m)
    out["groupId"] = out["cid"]
    return out


def message_type(m: Message) -> str:
    body = m.body
    if not isinstance(body, Media):
        return "CHAT:MESSAGE_RETURN_TEXT"
    media = body.media or ("gif" if body.mime == "image/gif" else body.mime.split("/")[0])
    return {
        "image": "CHAT:MESSAGE_RETURN_IMAGE",
        "audio": "CHAT:MESSAGE_RETURN_AUDIO",
        "gif": "CHAT:MESSAGE_RETURN_GIF",
    }.get(media, "CHAT:MESSAGE_RETURN_FILE")


def encode_event(event) -> bytes | None:
    match event:
        case MessagePosted():
            return frame(
                message_type(event.message), chat_message(event.message) | ({"offline": True} if event.offline else {})
            )
        case MemberJoined():
            return frame("GROUP:USER_JOINED", {"groupId": event.room.id, "username": event.user})
        case MemberLeft():
            return frame("GROUP:USER_LEFT", {"groupId": event.room.id, "username": event.user})
        case RoomRemoved():
            return frame("GROUP:GROUP_DELETED", {"groupId": event.room.id, "by": event.by})
        case RoomAdded():
            return frame("GROUP:GROUP_ADDED", group_json(event.room) | {"by": event.by})
        case Typing():
            kind = "CHAT:USER_STARTED_TYPING" if event.typing else "CHAT:USER_STOPPED_TYPING"
            return frame(kind, {"groupId": event.room.id, "username": event.user})
        case PresenceChanged():
            return frame("USER:PRESENCE", {"username": event.user, "online": event.online, "status": event.status})
        case ReadReceipt():
            return frame(
                "CHAT:MESSAGE_READ", {"groupId": event.room.id, "id": event.message.id, "username": event.reader}
            )
        case Notice():
            return frame("ERROR", {"code": event.code, "message": event.text})
    return None


class ColonDialect(Dialect):
    name = "colon"
    carries_files = True  # inline media
    encode_event = staticmethod(encode_event)

    def __init__(self):
        self.user = ""
        self._inline = 0  # numbers this connection's whole-file uploads

    def error(self, error: ChatError) -> bytes:
        data = {"code": error.code, "message": error.message}
        if "retry_after" in error.details:
            data["retryAfter"] = error.details["retry_after"]
        if error.original_type:
            data["originalType"] = error.original_type
        return frame("ERROR", data)

    def farewell(self, error: ChatError) -> bytes:
        return frame("ERROR", {"code": error.code, "message": error.message, "closing": True})

    def token_login(self, key: str) -> Request:
        return self._login({"token": key})

    def _errors(self, error: ChatError) -> list[bytes]:
        return [self.error(error)]

    def decode(self, raw: bytes) -> Request:
        f = parse_json(raw)
        if not isinstance(f, dict) or not isinstance(f.get("type"), str) or ":" not in f["type"]:
            raise ChatError(errors.BAD_FRAME, 'a colon frame is {"type": "AREA:NAME", "data": ...}')
        kind = f["type"]

        def build() -> Request:
            data = f.get("data")
            if kind in MEDIA:
                return self._media(data, MEDIA[kind])
            else:
                handler = (
                    getattr(self, "_on_" + kind.replace(":", "__"), None)
                    if kind.replace(":", "_").isidentifier()
                    else None
                )
                if handler is None:
                    raise ChatError(errors.UNKNOWN_TYPE, f"unknown type {kind[:64]!r}")
                return handler(data if data is not None else {})

        return answering(kind, build)

    def _simple(self, command, render) -> Request:
        return Request(command, render, self._errors)

    # USER:*

    def _on_SYSTEM__PING(self, d) -> Request:
        """Answered SYSTEM:PONG with the same data: proves every earlier frame was handled; a keepalive."""
        return Request(None, lambda _: [frame("SYSTEM:PONG", d)], self._errors)

    def _on_USER__REGISTER(self, d) -> Request:
        return self._simple(
            c.Register(_str(d, "username"), _str(d, "password")), lambda u: [frame("USER:REGISTERED", {"username": u})]
        )

    def _login(self, d) -> Request:
        command = (
            c.Login(session_key=_str(d, "token"))
            if isinstance(d, dict) and "token" in d
            else c.Login(_str(d, "username"), _str(d, "password"))
        )

        def ok(result):
            self.user = result.user
            return [frame("USER:LOGGED_IN", {"username": result.user, "token": result.session_key})]

        return self._simple(command, ok)

    def _on_USER__LOGIN(self, d) -> Request:
        return self._login(d)

    def _on_USER__REFRESH_PROFILE(self, d) -> Request:
        def profile(listings):
            groups = [entry.room.id for entry in listings if entry.joined]
            return [frame("USER:PROFILE_REFRESHED", {"username": self.user, "groups": groups})]

        return self._simple(c.ListRooms(), profile)

    # GROUP:*

    def _on_GROUP__GET_ALL_GROUPS(self, d) -> Request:
        def listed(listings):
            groups = [
                group_json(e.room) | {"joined": e.joined, "online": e.online} for e in listings if e.room.kind != DIRECT
            ]
            return [frame("GROUP:RETURN_ALL_GROUPS", groups)]

        return self._simple(c.ListRooms(), listed)

    def _on_GROUP__ADD_GROUP(self, d) -> Request:
        name = d if isinstance(d, str) else _str(d, "name")
        return self._simple(
            c.CreateRoom(name), lambda room: [frame("GROUP:GROUP_ADDED", group_json(room) | {"by": self.user})]
        )

    def _on_GROUP__DELETE_GROUP(self, d) -> Request:
        gid = _group_id(d)
        return self._simple(
            c.DeleteRoom(gid), lambda room: [frame("GROUP:GROUP_DELETED", {"groupId": room.id, "by": self.user})]
        )

    def _on_GROUP__JOIN_GROUP(self, d) -> Request:
        return self._simple(
            c.JoinRoom(_group_id(d)),
            lambda room: [frame("GROUP:USER_JOINED", {"groupId": room.id, "username": self.user})],
        )

    def _on_GROUP__LEAVE_GROUP(self, d) -> Request:
        return self._simple(
            c.LeaveRoom(_group_id(d)),
            lambda room: [frame("GROUP:USER_LEFT", {"groupId": room.id, "username": self.user})],
        )

    def _on_GROUP__GET_INIT_DATA(self, d) -> Request:
        gid = _group_id(d)

        def init(result):
            (room, members), page = result
            data = {
                "group": group_json(room),
                "members": [{"username": m.user, "online": m.online} for m in members],
                "messages": [chat_message(m) for m in page.messages],
            }
            return [frame("GROUP:RETURN_INIT_DATA", data)]

        return self._simple((c.Members(gid), c.History(Address.room(gid))), init)

    # CHAT:*

    def _on_CHAT__GET_INIT_MESSAGES(self, d) -> Request:
        gid = _group_id(d)
        before = d.get("before") if isinstance(d, dict) else None
        before = 0 if before is None else before  # null: absent
        if not isinstance(before, int) or isinstance(before, bool):
            raise ChatError(errors.BAD_FIELD, "data.before must be an integer")

        def page(p):
            messages = [message_json(m, p.changes, p.reads) | {"groupId": p.room.id} for m in p.messages]
            return [frame("CHAT:RETURN_INIT_MESSAGES", {"groupId": p.room.id, "messages": messages})]

        return self._simple(c.History(Address.room(gid), before=before), page)

    def _on_CHAT__READ_MESSAGE(self, d) -> Request:
        if not isinstance(d, dict) or not isinstance(d.get("id"), int) or isinstance(d.get("id"), bool):
            raise ChatError(errors.BAD_FIELD, "data.id (a message id) is required")
        return self._simple(c.MarkRead(d["id"]), lambda e: [encode_event(e)])

    def _typing(self, d, typing: bool) -> Request:
        gid = d if isinstance(d, str) else _str(d, "groupId", "to")
        return Request(c.SetTyping(Address(gid), typing), lambda e: [], self._errors)

    def _on_CHAT__START_TYPING(self, d) -> Request:
        return self._typing(d, True)

    def _on_CHAT__STOP_TYPING(self, d) -> Request:
        return self._typing(d, False)

    def _on_CHAT__SEND_MESSAGE_TEXT(self, d) -> Request:
        to, text = _str(d, "groupId", "to"), _str(d, "text", "message")
        temp = d.get("tempId")
        echo = {"tempId": temp} if isinstance(temp, (str, int)) and not isinstance(temp, bool) else {}
        return self._simple(
            c.Send(Address(to), Text(text), client_id=str(temp) if echo else ""),
            lambda sent: [frame("CHAT:MESSAGE_RETURN_TEXT", chat_message(sent.message) | echo)],
        )

    def _media(self, d, kind: str) -> Request:
        to = _str(d, "groupId", "to")
        name = d.get("name") if isinstance(d.get("name"), str) else ""
        default_mime = {"gif": "image/gif", "image": "image/png", "audio": "audio/mpeg"}[kind]
        mime = d["mime"] if isinstance(d.get("mime"), str) else default_mime
        if d.get("fileId") is not None:
            command: c.Command = c.Send(Address(to), Media(_str(d, "fileId"), media=kind))
        else:
            encoded = _str(d, "data")  # bounded by the transfer-frame size; the core bounds the media
            try:
                data = base64.b64decode(
                    encoded.split(",", 1)[-1] if encoded.startswith("data:") else encoded, validate=True
                )
            except (binascii.Error, ValueError):
                raise ChatError(errors.BAD_MEDIA) from None
            self._inline += 1
            key = f"inline-{self._inline}"
            command = c.StartUpload(key, Address(to), name or kind, mime, len(data), media=kind, data=data)
        request = self._simple(
            command, lambda result: [frame(message_type(result.message), chat_message(result.message))]
        )
        request.transfer = d.get("fileId") is None  # inline data: a file-transfer frame
        return request


def _group_id(d) -> str:
    return d if isinstance(d, str) else _str(d, "groupId", "id")
