"""Rooms named without a join, history by time, and whole-file uploads (a Core mixin).

Seed 001 (the action dialect) has no join: naming a public room in a message,
a history request or a file action joins it (authz.may_enter); a user's name
names the direct conversation with that user; a private group needs
membership (join_room accepts an invitation). Its uploads announce the number
of chunks up front and are completed by an explicit finish, not by the last
chunk; they reuse core/media.py's Upload records, limits, quota and the one
file store, so seed 002's media and these files are the same files.
"""

from dataclasses import dataclass

from .. import errors
from ..errors import ChatError
from . import authz
from . import commands as c
from .commands import Command, handles
from .media import ChunkResult, Upload, display_name
from .model import ROOM_NAME, FileRef, Message, Room

MAX_PACKETS = 100_000  # chunks one upload may announce


@dataclass(frozen=True)
class CheckPost(Command):
    """Would PostTo(to, text) be accepted? Changes nothing; fires with the room id or user name."""

    to: str
    text: str
    sender: str = ""


@dataclass(frozen=True)
class PostTo(Command):
    """A text to a room (joined first if public and new to the user, created if absent) or to a user."""

    to: str
    text: str
    sender: str = ""


@dataclass(frozen=True)
class MessagesSince(Command):
    """A page of a room's (or a direct conversation's) messages with ts >= from_ms and id > after."""

    to: str
    from_ms: int = 0
    after: int = 0
    limit: int = 100


@dataclass(frozen=True)
class ReadMessage(Command):
    """A message the user may see, by id."""

    pipelined = True
    message_id: int


@dataclass(frozen=True)
class BeginFile(Command):
    """Announce a file of `size` bytes in `total` chunks to a room or user; `path` is the client's name for it."""

    to: str
    path: str
    mime: str
    size: int
    total: int


@dataclass(frozen=True)
class FileChunk(Command):
    """Chunk `index` (1-based) of the upload announced as (to, path); stored, not yet assembled."""

    pipelined = True
    to: str
    path: str
    index: int
    data: bytes


@dataclass(frozen=True)
class FinishFile(Command):
    """Check that every chunk arrived and the size matches, then assemble and post the file."""

    to: str
    path: str
    total: int


@dataclass(frozen=True)
class RoomFiles(Command):
    to: str


@dataclass(frozen=True)
class FindFile(Command):
    """A file of a room by the server's id, or else the newest with that display name."""

    to: str
    name: str
    file_id: str = ""


@dataclass(frozen=True)
class FoundFile:
    file: FileRef
    room: Room
    total: int  # chunks of files.chunk_bytes


class HistoryFiles:
    def _check_text(self, client, text: str, sender: str) -> None:
        if sender and sender != client.user:
            raise ChatError(errors.BAD_FIELD, f"chatid must be {client.user}, the user logged in here")
        limit = self.limits.max_message_chars
        if not text.strip() or len(text) > limit:
            raise ChatError(errors.BAD_CONTENT, f"a message is 1-{limit} characters")

    def _peek(self, client, ref: str, create: bool) -> Room | str | None:
        """What `ref` names, without changing anything: a user's name, a room the user may enter,
        or None for a room that `create` allows to make."""
        if ref in self.users:
            if ref == client.user:
                raise ChatError(errors.SELF_MESSAGE)
            return ref
        room = self.rooms.get(ref)
        if room is None:
            if create and ROOM_NAME.fullmatch(ref):
                return None
            room = self._group(client.user, ref)  # a group by its name, or NO_SUCH_ROOM
        authz.may_enter(client.user, room)
        return room

    async def _enter(self, client, ref: str, create: bool = False) -> Room:
        """The room `ref` names, entered: a direct conversation, or a room joined if need be."""
        found = self._peek(client, ref, create)
        if isinstance(found, str):
            return self._target(client, to_user=found)
        if found is None or client.user not in found.members:
            return await self._join(client, c.JoinRoom(ref if found is None else found.id))
        return found

    @handles(CheckPost)
    async def _check_post(self, client, cmd: CheckPost) -> str:
        self._check_text(client, cmd.text, cmd.sender)
        found = self._peek(client, cmd.to, create=True)
        return found if isinstance(found, str) else cmd.to if found is None else found.id

    @handles(PostTo)
    async def _post_to(self, client, cmd: PostTo) -> tuple[Message, Room]:
        self._check_text(client, cmd.text, cmd.sender)
        room = await self._enter(client, cmd.to, create=True)
        return await self._send(client, c.SendMessage(cmd.text, to_room=room.id, sender=cmd.sender))

    @handles(MessagesSince)
    async def _messages_since(self, client, cmd: MessagesSince) -> tuple[Room, list[Message], int]:
        """(room, page oldest first, the id the next page starts after, or 0 if this was the last)."""
        room = await self._enter(client, cmd.to)
        authz.may_read_history(client.user, room)
        limit = max(1, min(cmd.limit, self.limits.history_page))
        raw = await self.store.room_since(room.id, max(0, cmd.from_ms), max(0, cmd.after), limit + 1)
        page = raw[:limit]
        return room, self._unblocked(client.user, page), page[-1].id if len(raw) > limit else 0

    @handles(ReadMessage)
    async def _read_message(self, client, cmd: ReadMessage) -> tuple[Message, Room]:
        return await self._visible_message(client, cmd.message_id)

    # -- files

    def _upload_key(self, client, room: Room, path: str) -> tuple:
        return (client.user, ("file", room.id, path))

    async def _upload_of(self, client, to: str, path: str) -> tuple[tuple, Upload]:
        found = self._peek(client, to, create=False)
        room = self._target(client, to_user=found) if isinstance(found, str) else found
        key = self._upload_key(client, room, path)
        upload = self.uploads.get(key)
        if upload is None:
            raise ChatError(errors.NO_SUCH_MEDIA, "no upload of that file_path in progress: send file_send_init first")
        return key, upload

    @handles(BeginFile)
    async def _begin_file(self, client, cmd: BeginFile) -> Upload:
        if not 1 <= cmd.total <= min(MAX_PACKETS, max(1, cmd.size)):
            raise ChatError(
                errors.BAD_CHUNK, f"total_packets must be 1-{min(MAX_PACKETS, max(1, cmd.size))} for {cmd.size} bytes"
            )
        if not 0 <= cmd.size <= self.file_limits.max_upload_bytes:
            raise ChatError(errors.TOO_LARGE, f"files are at most {self.file_limits.max_upload_bytes} bytes")
        room = await self._enter(client, cmd.to, create=True)
        key = self._upload_key(client, room, cmd.path)
        old = self.uploads.get(key)
        if old is not None and old.total != cmd.total:
            self._drop_upload(key)  # announced differently: start over
        upload = await self._start_upload(client, c.StartUpload(key[1], room.id, cmd.path, cmd.mime, cmd.size))
        upload.total = cmd.total
        return upload

    @handles(FileChunk)
    async def _file_chunk(self, client, cmd: FileChunk) -> int:
        _, upload = await self._upload_of(client, cmd.to, cmd.path)
        if not 1 <= cmd.index <= upload.total:
            raise ChatError(errors.BAD_CHUNK, f"chunk {cmd.index} is not within 1-{upload.total}")
        others = sum(n for i, n in upload.chunks.items() if i != cmd.index)
        if others + len(cmd.data) > upload.size:
            raise ChatError(errors.TOO_LARGE, f"more data than the {upload.size} bytes announced")
        self.file_store.put_chunk(upload.id, cmd.index, cmd.data)
        upload.chunks[cmd.index] = len(cmd.data)
        upload.started = self.clock.seconds()
        return cmd.index

    @handles(FinishFile)
    async def _finish_file(self, client, cmd: FinishFile) -> ChunkResult:
        key, upload = await self._upload_of(client, cmd.to, cmd.path)
        if cmd.total != upload.total:
            raise ChatError(errors.BAD_CHUNK, f"total_packets was {upload.total} in file_send_init")
        missing = upload.missing()
        if missing:
            shown = ", ".join(str(i) for i in missing[:20]) + (", ..." if len(missing) > 20 else "")
            raise ChatError(errors.INCOMPLETE_MEDIA, f"{len(missing)} chunks missing: {shown}", missing=missing)
        return await self._finish_upload(client, key, upload, upload.total)

    @handles(RoomFiles)
    async def _room_files(self, client, cmd: RoomFiles) -> tuple[Room, list[FileRef]]:
        room = await self._enter(client, cmd.to)
        authz.may_read_history(client.user, room)
        return room, await self.store.files_in_room(room.id)

    @handles(FindFile)
    async def _find_file(self, client, cmd: FindFile) -> FoundFile:
        room, files = await self._room_files(client, RoomFiles(cmd.to))
        name = display_name(cmd.name)
        match = [f for f in files if f.id in (cmd.file_id, cmd.name)] or [f for f in files if f.name == name]
        if not match:
            raise ChatError(errors.NO_SUCH_MEDIA, f"no file {name!r} in {cmd.to}")
        ref = match[-1]  # files_in_room is oldest first: the newest of that name
        return FoundFile(ref, room, self.chunk_count(ref.size))
