"""Files: uploads in chunks (or whole), stored by server id and posted as media messages; chunked reads.

One path for every dialect: StartUpload announces a file for an address (the client's `key`
names the upload; announcing it again resumes it), PutChunk stores chunks (1-based; a chunk sent
again replaces itself), and the upload completes either with the chunk that fills it (`finish`)
or by an explicit FinishUpload. A whole file given at once (`data`) takes the same path in one step.
A completed upload is assembled into the file store, recorded, counted against its owner's quota,
and posted to its conversation as a Media message; whoever may read that conversation may read
the file. Limits: files.max_upload_bytes per file, files.quota_bytes per user (stored files plus
uploads in progress), files.max_total_bytes for all users together (past it a new upload is refused
with 9021; stored files stay readable), MAX_UPLOADS_PER_USER at a time, files.inline_max_bytes for a
whole file in one frame. Idle uploads expire after files.upload_timeout. A client's file name is
display text only (core.model.display_text). A write the disk refuses (full, read-only) fails with
9020 and marks the file store not writable (see store/files.py).
"""

import math

from .. import errors
from ..errors import ChatError
from . import authz
from .commands import FileInfo, FinishUpload, ListFiles, PutChunk, ReadChunk, StartUpload
from .handling import handles, now_ms
from .model import FileRef, Media, Room, display_text
from .results import Chunk, ChunkResult, Upload

MAX_UPLOADS_PER_USER = 8
MAX_CHUNKS = 100_000


def display_name(name: str) -> str:
    """What is kept of a client's file name: its last path component as display text, at most 255 characters."""
    base = display_text(display_text(name).replace("\\", "/").rsplit("/", 1)[-1])
    return base[:255] if base not in ("", ".", "..") else "file"


class Files:
    def __init__(self, state, store, file_store, rooms, messages, limits, clock):
        self.state, self.store, self.file_store = state, store, file_store
        self.rooms, self.messages, self.limits, self.clock = rooms, messages, limits, clock
        self.uploads: dict[tuple[str, str], Upload] = {}  # (owner, the client's key) -> upload

    # -- limits

    def _in_progress(self, owner: str) -> int:
        return sum(u.size for (o, _), u in self.uploads.items() if o == owner)

    def _check_quota(self, owner: str, size: int) -> None:
        """Refuse `size` more bytes if the owner's files and uploads in progress would pass the quota, or all files
        and uploads the server's bound."""
        quota = self.limits.quota_bytes
        if self.state.file_usage.get(owner, 0) + self._in_progress(owner) + size > quota:
            raise ChatError(errors.TOO_LARGE, f"your quota of {quota} bytes would be exceeded")
        bound = self.limits.max_total_bytes
        if self.state.file_bytes + sum(u.size for u in self.uploads.values()) + size > bound:
            raise ChatError(errors.FILE_SPACE_FULL, f"the server's {bound} bytes for files are taken")

    def _disk(self, error: OSError) -> ChatError:
        """The refusal for a file write that failed; a fault of the disk is 9020, anything else is raised."""
        why = self.file_store.failed(error)
        if not why:
            raise error
        return ChatError(errors.STORAGE_UNWRITABLE, f"files cannot be stored ({why}): try again later")

    def chunk_count(self, size: int) -> int:
        return max(1, math.ceil(size / self.limits.chunk_bytes))

    # -- uploads

    @handles(StartUpload)
    async def start(self, client, cmd: StartUpload) -> Upload | ChunkResult:
        limits = self.limits
        if not 0 <= cmd.size <= limits.max_upload_bytes:
            raise ChatError(errors.TOO_LARGE, f"files are at most {limits.max_upload_bytes} bytes")
        if cmd.data is not None:
            if not cmd.data:
                raise ChatError(errors.BAD_CONTENT, "no media data")
            if len(cmd.data) > limits.inline_max_bytes:
                raise ChatError(
                    errors.TOO_LARGE,
                    f"a file sent whole is at most {limits.inline_max_bytes} bytes; upload it in chunks",
                )
        elif cmd.chunks and not 1 <= cmd.chunks <= min(MAX_CHUNKS, max(1, cmd.size)):
            raise ChatError(
                errors.BAD_CHUNK, f"a file of {cmd.size} bytes comes in 1-{min(MAX_CHUNKS, max(1, cmd.size))} chunks"
            )
        room = await self.rooms.target(client, cmd.where)
        key = (client.user, cmd.key)
        old = self.uploads.get(key)
        same = old is not None and (old.room, old.size, old.mime) == (room, cmd.size, cmd.mime)
        if same and old is not None and cmd.data is None and cmd.chunks in (0, old.total):
            return old  # announced again: resume
        if old is not None:
            self.drop(key)
        if sum(1 for owner, _ in self.uploads if owner == client.user) >= MAX_UPLOADS_PER_USER:
            raise ChatError(errors.TOO_LARGE, f"at most {MAX_UPLOADS_PER_USER} uploads at a time")
        size = cmd.size if cmd.data is None else len(cmd.data)
        self._check_quota(client.user, size)
        mime = display_text(cmd.mime)[:127] or "application/octet-stream"
        upload = Upload(self.file_store.new_id(), cmd.key, client.user, room, display_name(cmd.name), mime, size,
                        cmd.media, self.clock.seconds(), 1 if cmd.data is not None else cmd.chunks)  # fmt: skip
        try:
            self.file_store.begin(upload.id)
        except OSError as e:
            raise self._disk(e) from None
        self.uploads[key] = upload
        if cmd.data is None:
            return upload
        self._store_chunk(upload, 1, cmd.data)
        return await self._finish(client, key, upload, 1)

    def _store_chunk(self, upload: Upload, index: int, data: bytes) -> None:
        others = upload.received - upload.chunks.get(index, 0)  # a chunk sent again replaces itself
        if others + len(data) > upload.size:
            raise ChatError(errors.TOO_LARGE, f"more data than the {upload.size} bytes announced")
        try:
            kept = self.file_store.put_chunk(upload.id, index, data, most=2 * upload.size)
        except OSError as e:
            raise self._disk(e) from None
        if not kept:
            raise ChatError(errors.TOO_LARGE, "too many chunks sent again with other lengths than before")
        upload.chunks[index] = len(data)
        upload.received = others + len(data)
        upload.touched = self.clock.seconds()

    def _upload(self, client, key: str) -> Upload:
        upload = self.uploads.get((client.user, key))
        if upload is None:
            raise ChatError(errors.NO_SUCH_MEDIA, f"no upload {key!r} of yours in progress: announce it first")
        return upload

    @handles(PutChunk)
    async def put_chunk(self, client, cmd: PutChunk) -> ChunkResult:
        upload = self._upload(client, cmd.key)
        total = upload.total or cmd.total
        if total < 1 or (cmd.total and cmd.total != total) or not 1 <= cmd.index <= total:
            raise ChatError(errors.BAD_CHUNK, f"chunk {cmd.index} of {cmd.total or total} does not fit this upload")
        upload.total = total
        self._store_chunk(upload, cmd.index, cmd.data)
        if not cmd.finish:
            return ChunkResult(cmd.key, cmd.index, total, [])
        if len(upload.chunks) < total:  # (indexes are 1..total: that many chunks are all of them)
            return ChunkResult(cmd.key, cmd.index, total, upload.missing() if cmd.index == total else [])
        return await self._finish(client, (client.user, cmd.key), upload, cmd.index)

    @handles(FinishUpload)
    async def finish(self, client, cmd: FinishUpload) -> ChunkResult:
        upload = self._upload(client, cmd.key)
        if cmd.total != upload.total:
            raise ChatError(errors.BAD_CHUNK, f"the upload was announced with {upload.total} chunks")
        missing = upload.missing()
        if missing:
            shown = ", ".join(str(i) for i in missing[:20]) + (", ..." if len(missing) > 20 else "")
            raise ChatError(errors.INCOMPLETE_MEDIA, f"{len(missing)} chunks missing: {shown}", missing=missing)
        return await self._finish(client, (client.user, cmd.key), upload, upload.total)

    async def _finish(self, client, key: tuple[str, str], upload: Upload, index: int) -> ChunkResult:
        del self.uploads[key]
        received = upload.received
        if received != upload.size:
            self.file_store.discard(upload.id)
            raise ChatError(errors.INCOMPLETE_MEDIA, f"received {received} bytes, announced {upload.size}")
        file_id = self.file_store.new_id()
        try:
            size, sha256 = await self.file_store.assemble(upload.id, upload.total, file_id)
        except OSError as e:
            self.file_store.discard(upload.id)
            raise self._disk(e) from None
        ref = FileRef(file_id, upload.owner, upload.room.id, upload.name, upload.mime, size, sha256, now_ms(self.clock))
        await self.store.add_file(ref)
        self.state.add_usage(ref.owner, size)  # (and so state.file_bytes)
        sent = await self.messages.post(client, upload.room, Media(ref.id, ref.name, ref.mime, ref.size, upload.media))
        return ChunkResult(upload.key, index, upload.total, [], sent.message, ref)

    def drop(self, key: tuple[str, str]) -> None:
        upload = self.uploads.pop(key, None)
        if upload is not None:
            self.file_store.discard(upload.id)

    def drop_all_of(self, owner: str) -> None:
        for key in [k for k in self.uploads if k[0] == owner]:
            self.drop(key)

    def expire(self) -> int:
        """Forget uploads idle longer than files.upload_timeout; returns how many."""
        deadline = self.clock.seconds() - self.limits.upload_timeout
        stale = [key for key, u in self.uploads.items() if u.touched < deadline]
        for key in stale:
            self.drop(key)
        return len(stale)

    # -- reads

    async def readable(self, user: str, file_id: str) -> FileRef:
        ref = await self.store.file(file_id)
        authz.may_read_file(user, self.state.rooms.get(ref.room_id) if ref else None, file_id)
        assert ref is not None
        return ref

    @handles(FileInfo)
    async def info(self, client, cmd: FileInfo) -> FileRef:
        return await self.readable(client.user, cmd.file_id)

    @handles(ReadChunk)
    async def read_chunk(self, client, cmd: ReadChunk) -> Chunk:
        ref = await self.readable(client.user, cmd.file_id)
        total = self.chunk_count(ref.size)
        if not 1 <= cmd.index <= total:
            raise ChatError(errors.BAD_CHUNK, f"chunk {cmd.index} is not within 1-{total}")
        step = self.limits.chunk_bytes
        return Chunk(ref, cmd.index, total, await self.file_store.read(ref.id, (cmd.index - 1) * step, step))

    @handles(ListFiles)
    async def list(self, client, cmd: ListFiles) -> tuple[Room, list[FileRef]]:
        room = await self.rooms.target(client, cmd.where)
        authz.may_read(client.user, room)
        files = await self.store.files_in_room(room.id)
        if cmd.name:
            name = display_name(cmd.name)
            files = [f for f in files if f.id == cmd.name] or [f for f in files if f.name == name]
        return room, files
