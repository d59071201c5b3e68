"""The colon dialect (seed 004): {"type": "CHAT:SEND_MESSAGE_TEXT", "data": ...} both ways.

docs/protocols/colon.md is the reference. Groups are the shared rooms: GROUP:ADD_GROUP makes a
public room led by its creator (who alone may GROUP:DELETE_GROUP it); GROUP:JOIN_GROUP joins any
public room (or a group one is invited to). Media (CHAT:SEND_MESSAGE_IMAGE/AUDIO/GIF) is given
inline as base64 `data` (at most files.inline_max_bytes decoded, checked by the core) or as a stored `fileId`.
"""

import base64
import binascii

import orjson

from .. import errors
from ..core import commands as c
from ..core.editing import (
    AllRooms,
    CreateRoom,
    DeleteRoom,
    Follow,
    MessagesPage,
    PostMedia,
    RoomAdded,
    RoomInfo,
    TypingIn,
)
from ..core.events import GroupRemoved, MemberJoined, MemberLeft, MessagePosted, Notice, PresenceChanged, Typing
from ..errors import ChatError
from . import Request, answering, parse_json
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


def message_type(m) -> str:
    if m.kind != "media":
        return "CHAT:MESSAGE_RETURN_TEXT"
    info = orjson.loads(m.body)
    media = info.get("media") or ("gif" if info["mime"] == "image/gif" else info["mime"].split("/")[0])
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
        case GroupRemoved():
            return frame("GROUP:GROUP_DELETED", {"groupId": event.room.id, "by": event.by})
        case RoomAdded():
            return frame("GROUP:GROUP_ADDED", group_json(event.room) | {"by": event.by})
        case Typing():
            kind = "CHAT:USER_STARTED_TYPING" if event.typing else "CHAT:USER_STOPPED_TYPING"
            return frame(kind, {"groupId": event.room.id, "username": event.user})
        case PresenceChanged():
            return frame("USER:PRESENCE", {"username": event.user, "online": event.online, "status": event.status})
        case Notice():
            return frame("ERROR", {"code": event.code, "message": event.text})
    return None


class ColonDialect:
    name = "colon"
    encode_event = staticmethod(encode_event)

    def __init__(self):
        self.user = ""

    def greeting(self) -> list[bytes]:
        return []

    def error(self, error: ChatError) -> bytes:
        data = {"code": error.code, "message": error.message}
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
        def profile(rooms):
            return [
                frame(
                    "USER:PROFILE_REFRESHED",
                    {"username": self.user, "groups": [r.id for r in rooms if self.user in r.members]},
                )
            ]

        return self._simple(AllRooms(), profile)

    # GROUP:*

    def _on_GROUP__GET_ALL_GROUPS(self, d) -> Request:
        return self._simple(
            AllRooms(),
            lambda rooms: [
                frame("GROUP:RETURN_ALL_GROUPS", [group_json(r) | {"joined": self.user in r.members} for r in rooms])
            ],
        )

    def _on_GROUP__ADD_GROUP(self, d) -> Request:
        name = d if isinstance(d, str) else _str(d, "name")
        return self._simple(
            CreateRoom(name), lambda room: [frame("GROUP:GROUP_ADDED", group_json(room) | {"by": self.user})]
        )

    def _on_GROUP__DELETE_GROUP(self, d) -> Request:
        gid = d if isinstance(d, str) else _str(d, "groupId", "id")
        return self._simple(
            DeleteRoom(gid), lambda room: [frame("GROUP:GROUP_DELETED", {"groupId": room.id, "by": self.user})]
        )

    def _on_GROUP__JOIN_GROUP(self, d) -> Request:
        gid = d if isinstance(d, str) else _str(d, "groupId", "id")
        return self._simple(
            Follow(gid), lambda room: [frame("GROUP:USER_JOINED", {"groupId": room.id, "username": self.user})]
        )

    def _on_GROUP__LEAVE_GROUP(self, d) -> Request:
        gid = d if isinstance(d, str) else _str(d, "groupId", "id")
        return self._simple(
            c.LeaveRoom(gid), lambda room: [frame("GROUP:USER_LEFT", {"groupId": room.id, "username": self.user})]
        )

    def _on_GROUP__GET_INIT_DATA(self, d) -> Request:
        gid = d if isinstance(d, str) else _str(d, "groupId", "id")

        def init(result):
            room, members, page = result
            return [
                frame(
                    "GROUP:RETURN_INIT_DATA",
                    {
                        "group": group_json(room),
                        "members": [{"username": u, "online": online} for u, online in members],
                        "messages": [chat_message(m) | {"groupId": room.id} for m in page.messages],
                    },
                )
            ]

        return self._simple(RoomInfo(gid), init)

    # CHAT:*

    def _on_CHAT__GET_INIT_MESSAGES(self, d) -> Request:
        gid = d if isinstance(d, str) else _str(d, "groupId", "id")
        before = d.get("before", 0) if isinstance(d, dict) else 0
        if not isinstance(before, int) or isinstance(before, bool):
            raise ChatError(errors.BAD_FIELD, "data.before must be an integer")

        def page(p):
            messages = [message_json(m, p.changes, p.reads) | {"groupId": p.room.id} for m in p.messages]
            return [frame("CHAT:RETURN_INIT_MESSAGES", {"groupId": p.room.id, "messages": messages})]

        return self._simple(MessagesPage(gid, before=before), page)

    def _typing(self, d, typing: bool) -> Request:
        gid = d if isinstance(d, str) else _str(d, "groupId", "to")
        return Request(TypingIn(gid, typing), lambda e: [], self._errors)

    def _on_CHAT__START_TYPING(self, d) -> Request:
        return self._typing(d, True)

    def _on_CHAT__STOP_TYPING(self, d) -> Request:
        return self._typing(d, False)

    def _on_CHAT__SEND_MESSAGE_TEXT(self, d) -> Request:
        to, text = _str(d, "groupId", "to"), _str(d, "text", "message")
        return self._simple(
            c.SendMessage(text, to=to), lambda result: [frame("CHAT:MESSAGE_RETURN_TEXT", chat_message(result[0]))]
        )

    def _media(self, d, kind: str) -> Request:
        to = _str(d, "groupId", "to")
        name = d.get("name") if isinstance(d.get("name"), str) else ""
        mime = (
            d.get("mime")
            if isinstance(d.get("mime"), str)
            else {"gif": "image/gif", "image": "image/png", "audio": "audio/mpeg"}[kind]
        )
        if d.get("fileId") is not None:
            command = PostMedia(to, kind, name, mime, file_id=_str(d, "fileId"))
        else:
            encoded = _str(d, "data")  # bounded by the frame size; the core bounds the media
            try:
                data = base64.b64decode(
                    encoded.split(",", 1)[-1] if encoded.startswith("data:") else encoded, validate=True
                )
            except (binascii.Error, ValueError):
                raise ChatError(errors.BAD_MEDIA) from None
            command = PostMedia(to, kind, name or kind, mime, data=data)
        return self._simple(command, lambda m: [frame(message_type(m), chat_message(m))])
