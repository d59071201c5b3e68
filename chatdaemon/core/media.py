"""Media and files: chunked uploads into the file store, posted as messages; chunked reads (a Core mixin).

A file is posted to a user's direct conversation, a room or a group, as a
message of kind "media" whose body is JSON {"file", "name", "mime", "size"}; whoever may read that room
may read the file. Limits: a maximum file size and a per-user quota (stored
files plus uploads in progress). Chunks are 1-based; a chunk sent again
replaces itself. When the last chunk index arrives with chunks missing, the
answer says which; sending them completes the upload.
"""

import math
import re
from dataclasses import dataclass, field

import orjson

from .. import errors
from ..errors import ChatError
from . import commands as c
from .commands import handles
from .model import FileRef, Message, Room

MAX_UPLOADS_PER_USER = 8
_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")


def display_name(name: str) -> str:
    """What is kept of a client's file name: its last path component, printable, at most 255 characters."""
    base = _UNSAFE.sub("", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return base[:255] if base not in ("", ".", "..") else "file"


@dataclass
class Upload:
    id: str  # the server's, names its directory
    owner: str
    room: Room
    name: str
    mime: str
    size: int
    started: float
    total: int = 0
    chunks: dict[int, int] = field(default_factory=dict)  # index -> bytes

    def missing(self) -> list[int]:
        return [i for i in range(1, self.total + 1) if i not in self.chunks]


@dataclass(frozen=True)
class ChunkResult:
    upload: str
    index: int
    total: int
    missing: list[int]  # empty when complete
    message: Message | None = None  # the posted media message, once complete
    file: FileRef | None = None


@dataclass(frozen=True)
class Chunk:
    file: FileRef
    index: int
    total: int
    data: bytes


class Media:
    def _in_progress(self, owner: str) -> int:
        return sum(u.size for (o, _), u in self.uploads.items() if o == owner)

    @handles(c.StartUpload)
    async def _start_upload(self, client, cmd: c.StartUpload) -> Upload:
        limits = self.file_limits
        if not 0 <= cmd.size <= limits.max_upload_bytes:
            raise ChatError(errors.TOO_LARGE, f"files are at most {limits.max_upload_bytes} bytes")
        room = self._target(client, cmd.to)
        key = (client.user, cmd.upload)
        old = self.uploads.get(key)
        if old is not None and (old.room, old.size, old.mime) == (room, cmd.size, cmd.mime):
            return old  # announced again: resume
        if old is not None:
            self._drop_upload(key)
        if len([k for k in self.uploads if k[0] == client.user]) >= MAX_UPLOADS_PER_USER:
            raise ChatError(errors.TOO_LARGE, f"at most {MAX_UPLOADS_PER_USER} uploads at a time")
        self._check_quota(client.user, cmd.size)
        upload = Upload(
            self.file_store.new_id(),
            client.user,
            room,
            display_name(cmd.name),
            cmd.mime[:127] or "application/octet-stream",
            cmd.size,
            self.clock.seconds(),
        )
        self.file_store.begin(upload.id)
        self.uploads[key] = upload
        return upload

    def _check_quota(self, owner: str, size: int) -> None:
        """Refuse `size` more bytes if the owner's files and uploads in progress would pass the quota."""
        quota = self.file_limits.quota_bytes
        if self.file_usage.get(owner, 0) + self._in_progress(owner) + size > quota:
            raise ChatError(errors.TOO_LARGE, f"your quota of {quota} bytes would be exceeded")

    async def _keep_file(self, owner: str, room: Room, upload_id: str, total: int, name: str, mime: str) -> FileRef:
        """Assemble an upload's chunks into a stored file, recorded and counted against its owner."""
        file_id = self.file_store.new_id()
        size, sha256 = await self.file_store.assemble(upload_id, total, file_id)
        ref = FileRef(file_id, owner, room.id, name, mime, size, sha256, self._now())
        await self.store.add_file(ref)
        self.file_usage[owner] = self.file_usage.get(owner, 0) + size
        return ref

    async def _post_file(self, client, room: Room, ref: FileRef, **extra) -> Message:
        """Post a stored file to its room as a media message."""
        body = orjson.dumps({"file": ref.id, "name": ref.name, "mime": ref.mime, "size": ref.size, **extra}).decode()
        return await self._post(client, room, "media", body)

    def _drop_upload(self, key) -> None:
        upload = self.uploads.pop(key, None)
        if upload is not None:
            self.file_store.discard(upload.id)

    def expire_uploads(self) -> int:
        """Forget uploads idle longer than files.upload_timeout; returns how many."""
        deadline = self.clock.seconds() - self.file_limits.upload_timeout
        stale = [key for key, u in self.uploads.items() if u.started < deadline]
        for key in stale:
            self._drop_upload(key)
        return len(stale)

    @handles(c.PutChunk)
    async def _put_chunk(self, client, cmd: c.PutChunk) -> ChunkResult:
        key = (client.user, cmd.upload)
        upload = self.uploads.get(key)
        if upload is None:
            raise ChatError(errors.NO_SUCH_MEDIA, f"no upload {cmd.upload!r} of yours in progress")
        if cmd.total < 1 or (upload.total and cmd.total != upload.total) or not 1 <= cmd.index <= cmd.total:
            raise ChatError(errors.BAD_CHUNK, f"chunk {cmd.index} of {cmd.total} does not fit this upload")
        others = sum(n for i, n in upload.chunks.items() if i != cmd.index)
        if others + len(cmd.data) > upload.size:
            raise ChatError(errors.TOO_LARGE, f"more data than the {upload.size} bytes announced")
        upload.total = cmd.total
        self.file_store.put_chunk(upload.id, cmd.index, cmd.data)
        upload.chunks[cmd.index] = len(cmd.data)
        upload.started = self.clock.seconds()
        missing = upload.missing()
        if missing:
            return ChunkResult(cmd.upload, cmd.index, cmd.total, missing if cmd.index == cmd.total else [])
        return await self._finish_upload(client, key, upload, cmd.index)

    async def _finish_upload(self, client, key, upload: Upload, index: int) -> ChunkResult:
        del self.uploads[key]
        if sum(upload.chunks.values()) != upload.size:
            self.file_store.discard(upload.id)
            raise ChatError(
                errors.INCOMPLETE_MEDIA, f"received {sum(upload.chunks.values())} bytes, announced {upload.size}"
            )
        ref = await self._keep_file(upload.owner, upload.room, upload.id, upload.total, upload.name, upload.mime)
        message = await self._post_file(client, upload.room, ref)
        return ChunkResult(key[1], index, upload.total, [], message, ref)

    async def _readable_file(self, client, file_id: str) -> FileRef:
        ref = await self.store.file(file_id)
        room = self.rooms.get(ref.room_id) if ref else None
        if room is None or client.user not in room.members:
            raise ChatError(errors.NO_SUCH_MEDIA, f"no file {file_id!r} in your rooms")
        return ref

    def chunk_count(self, size: int) -> int:
        return max(1, math.ceil(size / self.file_limits.chunk_bytes))

    @handles(c.ReadChunk)
    async def _read_chunk(self, client, cmd: c.ReadChunk) -> Chunk:
        ref = await self._readable_file(client, cmd.file_id)
        total = self.chunk_count(ref.size)
        if not 1 <= cmd.index <= total:
            raise ChatError(errors.BAD_CHUNK, f"chunk {cmd.index} is not within 1-{total}")
        step = self.file_limits.chunk_bytes
        return Chunk(ref, cmd.index, total, self.file_store.read(ref.id, (cmd.index - 1) * step, step))
