"""The events dialect (seed 003): {"event": "CLIENT_CHAT_SEND", "data": {...}} both ways.

docs/protocols/events.md is the reference. A connection follows at most one conversation
(CLIENT_CHAT_JOIN, unless it says `follow: false`): it then gets the live messages, typing,
reactions and edits of that conversation only. Following none, it gets them for every
conversation it is in (the web page follows none, for its unread counts). Presence,
membership and conversation changes, read receipts of its own messages and what it missed
while offline always arrive.

Presence (as a seed-003 app shows it): the users one shares a conversation with, and one's
friends. Right after a login, SERVER_USER_ONLINE for each of them online then; after that, each
change as it happens (the core's PresenceChanged, to both audiences).
"""

import orjson

from .. import errors
from ..core import commands as c
from ..core.events import (
    Invited,
    LeaderChanged,
    MemberJoined,
    MemberLeft,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    MissedSummary,
    Notice,
    PresenceChanged,
    ReactionChanged,
    ReadReceipt,
    RoomAdded,
    RoomRemoved,
    Typing,
)
from ..core.model import Address, Text
from ..errors import ChatError
from . import Dialect, Request, answering, parse_json
from .shapes import message_json, room_json

FOLLOWED = (MessagePosted, Typing, ReactionChanged, MessageEdited, MessageDeleted)


def frame(event: str, data) -> bytes:
    return orjson.dumps({"event": event, "data": data})


def _str(data: dict, key: str, *alternatives: str) -> str:
    for name in (key, *alternatives):
        value = data.get(name)
        if value is not None:
            if not isinstance(value, str) or not value:
                raise ChatError(errors.BAD_FIELD, f"data.{name} must be a non-empty string")
            return value
    raise ChatError(errors.BAD_FIELD, f"data.{key} is required")


def _int(data: dict, key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ChatError(errors.BAD_FIELD, f"data.{key} must be an integer")
    return value


def status(m, room, state: str, **extra) -> dict:
    return {"id": m.id, "cid": room.id, "status": state, **extra}


def encode_event(event) -> bytes | None:
    match event:
        case MessagePosted():
            return frame(
                "SERVER_CHAT_RECEIVE",
                {"message": message_json(event.message), **({"offline": True} if event.offline else {})},
            )
        case PresenceChanged(online=True):
            return frame("SERVER_USER_ONLINE", {"user": event.user, "status": event.status, "friend": event.friend})
        case PresenceChanged():
            return frame("SERVER_USER_OFFLINE", {"user": event.user, "friend": event.friend})
        case MemberJoined():
            return frame("SERVER_CHAT_MEMBER_JOINED", {"cid": event.room.id, "user": event.user})
        case MemberLeft():
            return frame("SERVER_CHAT_MEMBER_LEFT", {"cid": event.room.id, "user": event.user})
        case RoomRemoved():
            return frame("SERVER_CHAT_CONVERSATION_UPDATED", {"cid": event.room.id, "deleted": True, "by": event.by})
        case LeaderChanged():
            return frame(
                "SERVER_CHAT_CONVERSATION_UPDATED", {"cid": event.room.id, "leader": event.leader, "by": event.by}
            )
        case Invited():
            return frame(
                "SERVER_CHAT_CONVERSATION_UPDATED",
                {"cid": event.room.id, "name": event.room.name, "invited": event.invitee, "by": event.inviter},
            )
        case RoomAdded():
            return frame(
                "SERVER_CHAT_CONVERSATION_UPDATED",
                {"cid": event.room.id, "name": event.room.name, "added": True, "by": event.by},
            )
        case Typing():
            return frame(
                "SERVER_CHAT_TYPING" if event.typing else "SERVER_CHAT_STOP_TYPING",
                {"cid": event.room.id, "user": event.user},
            )
        case ReadReceipt():
            return frame("SERVER_CHAT_MESSAGE_STATUS", status(event.message, event.room, "read", user=event.reader))
        case MessageEdited():
            return frame(
                "SERVER_CHAT_MESSAGE_STATUS",
                status(
                    event.message, event.room, "edited", message=message_json(event.message) | {"edited": event.edited}
                ),
            )
        case MessageDeleted():
            return frame("SERVER_CHAT_MESSAGE_STATUS", status(event.message, event.room, "deleted", by=event.by))
        case ReactionChanged():
            kind = "SERVER_CHAT_REACTION_ADD" if event.added else "SERVER_CHAT_REACTION_REMOVE"
            return frame(kind, {"id": event.message.id, "cid": event.room.id, "user": event.user, "emoji": event.emoji})
        case MissedSummary():
            return frame("SERVER_MISSED", {"messages": event.messages, "notices": event.notices})
        case Notice():
            return frame("SERVER_NOTICE", {"code": event.code, "message": event.text})
    return None


class EventsDialect(Dialect):
    name = "events"
    encode_event = staticmethod(encode_event)

    def __init__(self):
        self.user = ""
        self.following: str | None = None

    def error(self, error: ChatError) -> bytes:
        data = {"code": error.code, "message": error.message}
        if "retry_after" in error.details:
            data["retryAfter"] = error.details["retry_after"]
        if error.original_type:
            data["event"] = error.original_type
        return frame("SERVER_ERROR", data)

    def farewell(self, error: ChatError) -> bytes:
        return frame("SERVER_ERROR", {"code": error.code, "message": error.message, "closing": True})

    def wants(self, event) -> bool:
        if self.following is None or not isinstance(event, FOLLOWED) or getattr(event, "offline", False):
            return True
        return event.room.id == self.following

    def token_login(self, key: str) -> Request:
        return self._on_CLIENT_AUTH({"token": key})

    def _errors(self, error: ChatError) -> list[bytes]:
        return [self.error(error)]

    def decode(self, raw: bytes) -> Request:
        f = parse_json(raw)
        if not isinstance(f, dict) or not isinstance(f.get("event"), str):
            raise ChatError(errors.BAD_FRAME, 'an events frame is {"event": "...", "data": {...}}')
        kind = f["event"]

        def build() -> Request:
            data = f.get("data", {})
            if not isinstance(data, dict):
                raise ChatError(errors.BAD_FIELD, "data must be an object")
            handler = getattr(self, "_on_" + kind, None) if kind.isupper() and kind.isidentifier() else None
            if handler is None:
                raise ChatError(errors.UNKNOWN_TYPE, f"unknown event {kind[:64]!r}")
            return handler(data)

        return answering(kind, build)

    def _simple(self, command, render) -> Request:
        return Request(command, render, self._errors)

    # -- accounts

    def _on_CLIENT_PING(self, d: dict) -> Request:
        """Answered SERVER_PONG with the same data: proves every earlier frame was handled; a keepalive."""
        return Request(None, lambda _: [frame("SERVER_PONG", d)], self._errors)

    def _on_CLIENT_REGISTER(self, d: dict) -> Request:
        return self._simple(
            c.Register(_str(d, "username"), _str(d, "password")),
            lambda u: [frame("SERVER_REGISTERED", {"username": u})],
        )

    def _on_CLIENT_AUTH(self, d: dict) -> Request:
        """A login (also a token given at the WebSocket handshake): SERVER_AUTH_OK, then who of the people
        whose presence this user sees is online now (seed 003's SERVER_USER_ONLINE after connecting)."""
        login = (
            c.Login(session_key=_str(d, "token")) if "token" in d else c.Login(_str(d, "username"), _str(d, "password"))
        )

        def ok(results):
            result, online = results
            self.user = result.user
            return [
                frame("SERVER_AUTH_OK", {"username": result.user, "token": result.session_key}),
                *(encode_event(presence) for presence in online),
            ]

        return self._simple((login, c.OnlineContacts()), ok)

    def _on_CLIENT_LOGOUT(self, d: dict) -> Request:
        def out(user):
            self.user, self.following = "", None
            return [frame("SERVER_LOGGED_OUT", {"username": user})]

        return self._simple(c.Logout(), out)

    # -- conversations

    def _on_CLIENT_CHAT_JOIN(self, d: dict) -> Request:
        follow = d.get("follow", True)
        if not isinstance(follow, bool):
            raise ChatError(errors.BAD_FIELD, "data.follow must be true or false")

        def joined(room):
            if follow:
                self.following = room.id
            return [frame("SERVER_CHAT_JOINED", {"conversation": room_json(room, self.user)})]

        return self._simple(c.JoinRoom(_str(d, "cid")), joined)

    def _on_CLIENT_CHAT_LEAVE(self, d: dict) -> Request:
        cid = _str(d, "cid")
        membership = d.get("membership", False)
        if not isinstance(membership, bool):
            raise ChatError(errors.BAD_FIELD, "data.membership must be true or false")

        def left(_):
            if self.following == cid:
                self.following = None
            return [frame("SERVER_CHAT_LEFT", {"cid": cid, "membership": membership})]

        return self._simple(c.LeaveRoom(cid) if membership else None, left)

    def _on_CLIENT_CONVERSATIONS(self, d: dict) -> Request:
        def listed(summaries):
            out = [
                room_json(s.room, self.user)
                | {"last_message": message_json(s.last) if s.last else None, "unread": s.unread}
                for s in summaries
            ]
            return [frame("SERVER_CONVERSATIONS", {"conversations": out})]

        return self._simple(c.Conversations(), listed)

    def _on_CLIENT_CHAT_HISTORY(self, d: dict) -> Request:
        command = c.History(
            Address(_str(d, "cid")),
            _int(d, "before", 0),
            _int(d, "after") if "after" in d else None,
            limit=_int(d, "limit", 50),
        )

        def page(p):
            messages = [message_json(m, p.changes, p.reads) for m in p.messages]
            return [frame("SERVER_CHAT_HISTORY", {"cid": p.room.id, "messages": messages})]

        return self._simple(command, page)

    # -- messages

    def _on_CLIENT_CHAT_SEND(self, d: dict) -> Request:
        temp = d.get("tempId")
        extra = {"tempId": temp} if isinstance(temp, (str, int)) and not isinstance(temp, bool) else {}

        def sent(s):
            frames = [
                frame("SERVER_CHAT_RECEIVE", {"message": message_json(s.message), **extra}),
                frame("SERVER_CHAT_MESSAGE_STATUS", status(s.message, s.room, "sent", **extra)),
            ]
            if s.delivered:
                frames.append(
                    frame(
                        "SERVER_CHAT_MESSAGE_STATUS",
                        status(s.message, s.room, "delivered", to=list(s.delivered), **extra),
                    )
                )
            return frames

        command = c.Send(Address(_str(d, "cid")), Text(_str(d, "text")), client_id=str(temp) if extra else "")
        return self._simple(command, sent)

    def _on_CLIENT_CHAT_EDIT(self, d: dict) -> Request:
        return self._simple(c.Edit(_int(d, "id"), _str(d, "text")), lambda e: [encode_event(e)])

    def _on_CLIENT_CHAT_DELETE(self, d: dict) -> Request:
        return self._simple(c.Delete(_int(d, "id")), lambda e: [encode_event(e)])

    def _on_CLIENT_CHAT_READ(self, d: dict) -> Request:
        return self._simple(c.MarkRead(_int(d, "id")), lambda e: [encode_event(e)])

    def _typing(self, d: dict, typing: bool) -> Request:
        return Request(c.SetTyping(Address(_str(d, "cid")), typing), lambda e: [], self._errors)

    def _on_CLIENT_CHAT_TYPING(self, d: dict) -> Request:
        return self._typing(d, True)

    def _on_CLIENT_CHAT_STOP_TYPING(self, d: dict) -> Request:
        return self._typing(d, False)

    def _reaction(self, d: dict, add: bool) -> Request:
        return self._simple(c.React(_int(d, "id"), _str(d, "emoji"), add), lambda e: [encode_event(e)])

    def _on_CLIENT_CHAT_REACTION_ADD(self, d: dict) -> Request:
        return self._reaction(d, True)

    def _on_CLIENT_CHAT_REACTION_REMOVE(self, d: dict) -> Request:
        return self._reaction(d, False)
