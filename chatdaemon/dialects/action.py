"""The action dialect (seed 001): {"action": "...", "data": {...}}; replies add "status" and "message".

docs/protocols/action.md is the reference for every action, field and status.
Each action A is handled by a method _on_A. The dialect is pure: it keeps the
connection's pending character-count handshakes (by transaction_id) and its
downloads, and asks the session (Request.expires, Request.follow) for the
handshake deadline and for pacing a download.
"""

import base64
import binascii
import datetime
import re
import unicodedata
from collections import Counter
from typing import Any

import orjson

from .. import errors
from ..core import commands as c
from ..core.events import MessagePosted, Notice, RoomRemoved
from ..core.model import Address, Media, Message, Text
from ..errors import ChatError
from . import Dialect, Request, answering, parse_json

MAX_PENDING = 16  # handshakes one connection may have open
MAX_DOWNLOADS = 4  # downloads one connection may have in progress
SEED_LOGIN_FAIL = "Invalid credentials or user already logged in"
_RECEIVED = re.compile(r"msg-([0-9]{1,18})")


def letter_frequencies(text: str) -> dict[str, int]:
    """How often each letter occurs: the text NFC-normalised and case-folded (str.casefold, so "ß"
    counts as two "s"), then every character for which str.isalpha() holds; digits, spaces,
    punctuation, emoji and combining marks are not counted. Keys sorted."""
    folded = unicodedata.normalize("NFC", text).casefold()
    return dict(sorted(Counter(ch for ch in folded if ch.isalpha()).items()))


def iso(ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC, to the second: 2024-01-01T12:00:00Z."""
    return datetime.datetime.fromtimestamp(ms // 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


MAX_SECONDS = 1 << 52  # a time in seconds past this is as good as never (and stays an exact float)


def parse_time(value, key: str = "from_time") -> int:
    """An ISO 8601 time (no zone: UTC) or seconds since the epoch, as milliseconds; None is 0."""
    if value is None:
        return 0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(max(0, min(value, MAX_SECONDS)) * 1000)
    if isinstance(value, str) and len(value) <= 64:
        try:
            when = datetime.datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                when = when.replace(tzinfo=datetime.UTC)
            return max(0, int(when.timestamp() * 1000))
    raise ChatError(errors.BAD_FIELD, f'data.{key} must be an ISO 8601 time such as "2024-01-01T00:00:00Z"')


def frame(action: str, data: dict | None = None, status: str | None = None, message: str | None = None, **top) -> bytes:
    out: dict[str, Any] = {"action": action}
    if status is not None:
        out["status"] = status
    if message is not None:
        out["message"] = message
    out |= top
    if data is not None:
        out["data"] = data
    return orjson.dumps(out)


def success(action: str, message: str, data: dict | None = None) -> bytes:
    return frame(action, data, "success", message)


# -- field readers


def _text(d: dict, key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise ChatError(errors.BAD_FIELD, f"data.{key} is required and must be a string")
    return value


def _opt_text(d: dict, *keys: str) -> str:
    for key in keys:
        if d.get(key) is not None:
            return _text(d, key)
    return ""


def _int(d: dict, key: str, default: int | None = None) -> int:
    value = d.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ChatError(errors.BAD_FIELD, f"data.{key} must be an integer")
    return value


def _entering(ref: str, create: bool = False) -> Address:
    """Seed 001 has no join: a public room named in a request is entered (and, for a message or a file,
    made if new); a user's name is the direct conversation with them."""
    return Address(ref, enter=True, create=create)


def _upload_key(room: str, path: str) -> str:
    return f"{room}/{path}"


def _room(d: dict) -> str:
    room = _text(d, "room_id")
    if not room:
        raise ChatError(errors.BAD_FIELD, "data.room_id must not be empty")
    return room


# -- events


def _file_info(media: Media) -> dict:
    return {"file_path": media.name, "file_size": media.size, "file_type": media.mime, "file_id": media.file}


def received_message(m: Message, text: str) -> dict:
    return {
        "transaction_id": f"msg-{m.id}",
        "room_id": m.room_id,
        "sender_chatid": m.sender,
        "content": text,
        "timestamp": iso(m.ts),
        "message_id": m.id,
    }


def received_file(m: Message, media: Media) -> dict:
    return {
        "room_id": m.room_id,
        "sender_chatid": m.sender,
        **_file_info(media),
        "timestamp": iso(m.ts),
        "message_id": m.id,
    }


def listed(m: Message) -> dict | None:
    """A stored message as an entry of messages_list (encrypted and deleted ones are not shown)."""
    entry = {"message_id": m.id, "sender_chatid": m.sender}
    match m.body:
        case Text(text):
            return entry | {"content": text, "timestamp": iso(m.ts)}
        case Media() as media:
            info = _file_info(media)
            return entry | {"content": info["file_path"], "timestamp": iso(m.ts), "kind": "file"} | info
    return None


def encode_event(event) -> bytes | None:
    """Text messages as receive_message, files as receive_file (live or replayed at login),
    server and operator notices as server_notification; nothing else."""
    match event:
        case MessagePosted(message=Message(body=Text(text)) as m):
            return success("receive_message", "New message received.", received_message(m, text))
        case MessagePosted(message=Message(body=Media() as media) as m):
            return success("receive_file", "New file received.", received_file(m, media))
        case Notice():
            return success("server_notification", event.text, {"code": event.code})
        case RoomRemoved(operator=True):
            text = f"{event.room.id} was deleted by the operators"
            return success("server_notification", text, {"code": errors.ROOM_DELETED, "room_id": event.room.id})
    return None


def _retry(e: ChatError) -> dict | None:
    """The data of a throttled login or registration's refusal: how many seconds to wait."""
    return {"retry_after": e.details["retry_after"]} if "retry_after" in e.details else None


class ActionDialect(Dialect):
    name = "action"
    carries_files = True
    encode_event = staticmethod(encode_event)

    def __init__(self):
        self.user = ""  # who logged in here, as the replies said
        # transaction_id -> (room_id, content, chatid, client_message_id)
        self._pending: dict[str, tuple[str, str, str, str]] = {}
        self._serial = 0
        self._downloads = 0

    def error(self, error: ChatError) -> bytes:
        data = {k: v for k, v in error.details.items() if isinstance(v, (str, int, list))}
        return frame(
            "error",
            data or None,
            original_action=error.original_type or None,
            status="error",
            message=error.message,
            code=error.code,
        )

    farewell = error

    def token_login(self, key: str) -> Request:
        """A login by the session key given at a WebSocket handshake: answered like `login` with a session_key."""
        return self._on_login({"session_key": key})

    def _errors(self, error: ChatError) -> list[bytes]:
        return [self.error(error)]

    def _me(self, d: dict, *keys: str) -> str:
        """The chatid a request names (if any): it must be the user logged in here."""
        who = _opt_text(d, *keys)
        if who and self.user and who != self.user:
            raise ChatError(errors.BAD_FIELD, f"data.{keys[0]} must be {self.user}, the user logged in here")
        return who

    def decode(self, raw: bytes) -> Request:
        frame_ = parse_json(raw)
        if not isinstance(frame_, dict) or not isinstance(frame_.get("action"), str):
            raise ChatError(errors.BAD_FRAME, 'an action frame is {"action": "...", "data": {...}}')
        action = frame_["action"]

        def build() -> Request:
            data = frame_.get("data")
            data = {} if data is None else data
            if not isinstance(data, dict):
                raise ChatError(errors.BAD_FIELD, "data must be an object")
            handler = getattr(self, "_on_" + action, None) if action.isidentifier() and action.islower() else None
            if handler is None:
                raise ChatError(errors.UNKNOWN_TYPE, f"unknown action {action[:64]!r}")
            return handler(data)

        return answering(action, build)

    # -- accounts

    def _on_ping(self, d: dict) -> Request:
        """Answered `pong` with the same data: proves every earlier frame was handled; a keepalive."""
        return Request(None, lambda _: [success("pong", "Pong.", d)], self._errors)

    def _on_register(self, d: dict) -> Request:
        name = _text(d, "chatid")
        return Request(
            c.Register(name, _text(d, "password")),
            lambda user: [success("register_success", "Registration successful", {"chatid": user})],
            lambda e: [frame("register_fail", _retry(e), "error", e.message, code=e.code)],
        )

    def _on_login(self, d: dict) -> Request:
        if d.get("session_key") is not None:
            command = c.Login(session_key=_text(d, "session_key"))
        else:
            command = c.Login(_text(d, "chatid"), _text(d, "password"))

        def succeeded(result):
            self.user = result.user
            data = {"chatid": result.user, "session_key": result.session_key}
            return [success("login_success", "Login successful", data)]

        def failed(e: ChatError):
            seed = e.code in (errors.INVALID_CREDENTIALS, errors.USER_NOT_FOUND, errors.ALREADY_LOGGED_IN)
            return [frame("login_fail", _retry(e), "error", SEED_LOGIN_FAIL if seed else e.message, code=e.code)]

        return Request(command, succeeded, failed)

    def _on_logout(self, d: dict) -> Request:
        def logged_out(user):
            self.user = ""
            self._pending.clear()
            return [success("logout_success", "Logout successful", {"chatid": user})]

        return Request(c.Logout(), logged_out, self._errors)

    # -- rooms

    def _on_join_room(self, d: dict) -> Request:
        self._me(d, "chatid", "chat_id")
        return Request(
            c.JoinRoom(_room(d)),
            lambda room: [
                success("join_room", f"Joined room {room.id}.", {"room_id": room.id, "members": len(room.members)})
            ],
            self._errors,
        )

    def _on_leave_room(self, d: dict) -> Request:
        self._me(d, "chatid", "chat_id")
        return Request(
            c.LeaveRoom(_room(d)),
            lambda room: [success("leave_room", f"Left room {room.id}.", {"room_id": room.id})],
            self._errors,
        )

    # -- messages and the character-count handshake

    def _on_send_message(self, d: dict) -> Request:
        chatid, room, content = self._me(d, "chatid", "chat_id"), _room(d), _text(d, "content")
        client_id = _opt_text(d, "client_message_id")
        if len(self._pending) >= MAX_PENDING:
            raise ChatError(errors.TOO_MANY_PENDING, f"at most {MAX_PENDING} messages may wait for confirm_count")
        self._serial += 1
        tx = f"tx-{self._serial}"

        def checked(_):
            self._pending[tx] = (room, content, chatid, client_id)
            data = {
                "transaction_id": tx,
                "letter_frequencies": letter_frequencies(content),
                "original_action": "send_message",
            }
            return [frame("character_count", data)]

        def expired(seconds: float) -> list[bytes]:
            if self._pending.pop(tx, None) is None:
                return []  # confirmed or refused meanwhile
            e = ChatError(
                errors.HANDSHAKE_TIMEOUT,
                f"no confirm_count within {seconds:g} seconds: message dropped",
                transaction_id=tx,
            )
            e.original_type = "send_message"
            return [self.error(e)]

        command = c.Send(_entering(room, create=True), Text(content), sender=chatid, dry_run=True)
        return Request(command, checked, self._errors, expires=expired)

    def _on_confirm_count(self, d: dict) -> Request:
        tx, confirm = _text(d, "transaction_id"), d.get("confirm")
        if not isinstance(confirm, bool):
            raise ChatError(errors.BAD_FIELD, "data.confirm must be true or false")
        pending = self._pending.pop(tx, None)
        if pending is None:
            raise ChatError(
                errors.NO_SUCH_TRANSACTION,
                f"no message is waiting for confirm_count with transaction_id {tx[:64]!r}",
                transaction_id=tx[:64],
            )

        def dropped(e: ChatError) -> list[bytes]:
            e.original_type = "send_message"
            e.details.setdefault("transaction_id", tx)
            return [self.error(e)]

        if not confirm:
            return Request(None, lambda _: dropped(ChatError(errors.COUNT_NOT_CONFIRMED)), self._errors)
        room, content, chatid, client_id = pending

        def stored(sent):
            message = sent.message
            data = {
                "transaction_id": tx,
                "message_id": message.id,
                "room_id": sent.room.id,
                "timestamp": iso(message.ts),
            } | ({"client_message_id": client_id} if client_id else {})
            return [success("ack", "Action processed successfully.", data)]

        command = c.Send(_entering(room, create=True), Text(content), sender=chatid, client_id=client_id)
        return Request(command, stored, dropped)

    @staticmethod
    def _frequencies(d: dict) -> dict[str, int]:
        value = d.get("letter_frequencies")
        if not isinstance(value, dict) or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in value.values()
        ):
            raise ChatError(errors.BAD_FIELD, "data.letter_frequencies must be an object of letters to counts")
        return {k: n for k, n in value.items() if n}

    def _on_character_count(self, d: dict) -> Request:
        tx, counted = _text(d, "transaction_id"), self._frequencies(d)

        def answer(content: str) -> list[bytes]:
            return [frame("confirm_count", {"transaction_id": tx, "confirm": counted == letter_frequencies(content)})]

        pending = self._pending.get(tx)
        if pending is not None:  # the client's own count of a message it is sending
            return Request(None, lambda _: answer(pending[1]), self._errors)
        match = _RECEIVED.fullmatch(tx)
        if match is None:
            raise ChatError(
                errors.NO_SUCH_TRANSACTION, f"no message with transaction_id {tx[:64]!r}", transaction_id=tx[:64]
            )

        def received(found) -> list[bytes]:
            body = found[0].body
            return answer(body.text if isinstance(body, Text) else "")

        return Request(c.GetMessage(int(match.group(1))), received, self._errors)

    def _on_ack(self, d: dict) -> Request:
        tx = _text(d, "transaction_id")
        match = _RECEIVED.fullmatch(tx)
        if match is None:
            raise ChatError(
                errors.NO_SUCH_TRANSACTION,
                f"no received message with transaction_id {tx[:64]!r}",
                transaction_id=tx[:64],
            )
        return Request(c.MarkRead(int(match.group(1))), lambda _: [], self._errors)

    def _on_get_messages(self, d: dict) -> Request:
        self._me(d, "chatid", "chat_id")
        room, since = _room(d), parse_time(d.get("from_time"))
        after, limit = _int(d, "after_message_id", 0), _int(d, "limit", 100)

        def listing(page):
            data = {
                "room_id": page.room.id,
                "messages": [e for e in map(listed, page.messages) if e is not None],
                "has_more": page.more,
            }
            if page.more:
                data["next_after_message_id"] = page.next_after
            return [success("messages_list", "Messages retrieved successfully.", data)]

        # seed 001 pages forward in time: with no from_time, from the room's first message
        command = c.History(_entering(room), after=after, since=since, limit=limit)
        return Request(command, listing, self._errors)

    # -- files up

    def _file_fields(self, d: dict) -> tuple[str, str, str]:
        return self._me(d, "chat_id", "chatid"), _room(d), _text(d, "file_path")

    def _on_file_send_init(self, d: dict) -> Request:
        chat_id, room, path = self._file_fields(d)
        size, total = _int(d, "file_size"), _int(d, "total_packets")
        mime = _opt_text(d, "file_type") or "application/octet-stream"
        echo = {"chat_id": chat_id or self.user, "room_id": room, "file_path": path}
        if total < 1:
            raise ChatError(errors.BAD_CHUNK, "total_packets must be at least 1")
        return Request(
            c.StartUpload(_upload_key(room, path), _entering(room, create=True), path, mime, size, chunks=total),
            lambda _: [success("file_send_init", "Server ready to receive file.", echo)],
            self._errors,
        )

    def _on_file_send_data(self, d: dict) -> Request:
        chat_id, room, path = self._file_fields(d)
        seq = _int(d, "sequence_number")
        if seq < 0:
            raise ChatError(errors.BAD_CHUNK, "sequence_number counts from 0", sequence_number=seq)
        try:
            chunk = base64.b64decode(_text(d, "file_data"), validate=True)
        except (binascii.Error, ValueError):
            raise ChatError(errors.BAD_CHUNK, "data.file_data is not valid base64", sequence_number=seq) from None
        echo = {"chat_id": chat_id or self.user, "room_id": room, "file_path": path, "sequence_number": seq}

        def failed(e: ChatError) -> list[bytes]:
            if e.code == errors.BAD_CHUNK:
                e = ChatError(errors.BAD_CHUNK, "sequence_number is outside 0..total_packets-1")
            e.details["sequence_number"] = seq
            e.original_type = "file_send_data"
            return [self.error(e)]

        return Request(
            c.PutChunk(_upload_key(room, path), seq + 1, chunk, finish=False),
            lambda _: [success("file_send_data", f"Chunk {seq} received.", echo)],
            failed,
            transfer=True,
        )

    def _on_file_send_fin(self, d: dict) -> Request:
        chat_id, room, path = self._file_fields(d)
        total = _int(d, "total_packets")
        echo = {"chat_id": chat_id or self.user, "room_id": room, "file_path": path}

        def assembled(result):
            data = echo | {"file_id": result.file.id, "file_size": result.file.size, "message_id": result.message.id}
            return [success("file_send_fin", "File assembled successfully.", data)]

        def failed(e: ChatError) -> list[bytes]:
            missing = e.details.get("missing")
            if missing is not None:
                e.details["missing"] = [i - 1 for i in missing]  # as sequence numbers
                e.message = f"{len(missing)} packets missing: " + ", ".join(str(i - 1) for i in missing[:20])
            return [self.error(e)]

        return Request(c.FinishUpload(_upload_key(room, path), total), assembled, failed)

    # -- files down

    def _on_file_list_req(self, d: dict) -> Request:
        self._me(d, "chat_id", "chatid")
        room = _room(d)

        def listing(result):
            _where, files = result
            entries = [
                {
                    "file_id": f.id,
                    "file_path": f.name,
                    "file_size": f.size,
                    "file_type": f.mime,
                    "sender_chatid": f.owner,
                    "timestamp": iso(f.created),
                }
                for f in files
            ]
            data = {"file_list": ", ".join(f.name for f in files), "files": entries}
            return [success("file_list_req", f"File list for room {room}", data)]

        return Request(c.ListFiles(_entering(room)), listing, self._errors)

    def _on_file_down_req(self, d: dict) -> Request:
        """ListFiles finds the file (by id, or the newest of that name); the download then streams: chunk 1
        comes with file_down_meta, each next chunk once the connection's output has room."""
        self._me(d, "chat_id", "chatid")
        room, path, file_id = _room(d), _text(d, "file_path"), _opt_text(d, "file_id")
        if self._downloads >= MAX_DOWNLOADS:
            raise ChatError(errors.BAD_CHUNK, f"at most {MAX_DOWNLOADS} downloads at a time")
        found: list = []

        def located(result) -> list[bytes]:
            _where, files = result
            if not files:
                e = ChatError(errors.NO_SUCH_MEDIA, f"no file {path!r} in {room}")
                e.original_type = "file_down_req"
                return [self.error(e)]
            found.append(files[-1])  # oldest first: the newest of that name
            self._downloads += 1
            return []

        def first() -> Request | None:
            return self._download_step(found[0].id, room, path, 1) if found else None

        return Request(c.ListFiles(_entering(room), file_id or path), located, self._errors, follow=first)

    def _download_step(self, file_id: str, room: str, path: str, index: int) -> Request:
        """Chunk `index` (1-based); sent as sequence_number index - 1, the first one after file_down_meta."""
        more = []

        def chunk(result) -> list[bytes]:
            frames = []
            if index == 1:
                f = result.file
                meta = {"room_id": room, "file_path": path, "file_size": f.size, "total_packets": result.total,
                        "file_id": f.id, "file_type": f.mime}  # fmt: skip
                frames.append(success("file_down_meta", "Starting file download.", meta))
            data = {
                "room_id": room,
                "file_path": path,
                "sequence_number": index - 1,
                "file_data": base64.b64encode(result.data).decode("ascii"),
            }
            frames.append(frame("file_down_data", data))
            if index >= result.total:
                self._downloads -= 1
                frames.append(success("file_down_fin", "File download complete.", {"room_id": room, "file_path": path}))
            else:
                more.append(True)
            return frames

        def failed(e: ChatError) -> list[bytes]:
            self._downloads -= 1
            e.original_type = "file_down_req"
            return [self.error(e)]

        def following() -> Request | None:
            return self._download_step(file_id, room, path, index + 1) if more else None

        return Request(c.ReadChunk(file_id, index), chunk, failed, follow=following)
