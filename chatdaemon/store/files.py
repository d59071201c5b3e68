"""IFileStore on disk (a node alone): by server-generated id, data_dir/files/<id>. Client names never become paths.

An upload is one spool file (data_dir/uploads/<upload id>) that its chunks are written into as they
come, in any order: a chunk goes at the end of the spool, or, sent again with its earlier length, over
its earlier place; where each chunk lies is kept in memory. Writing a chunk is one write into a file
that exists (not a new file per chunk), so small chunks are cheap. The spool is assembled in a thread
into a temporary file that is synced and then renamed into place, so a file is either whole or
absent. Uploads do not survive a restart: their directory is emptied at start, and the client starts
again.

A write that fails for want of space or write access (ENOSPC, EROFS, ...) is reported by the core
(`failed`); the file store is then not `writable` until `probe()` can write again.
"""

import contextlib
import hashlib
import os
import secrets
import shutil

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from zope.interface import implementer

from . import IFileStore, fault_of, probe_directory

log = Logger()


@implementer(IFileStore)
class FileStore:
    def __init__(self, data_dir: str):
        self.files = self.location = os.path.join(data_dir, "files")
        self.uploads = os.path.join(data_dir, "uploads")
        self._chunks: dict[str, dict[int, tuple[int, int]]] = {}  # upload id -> index -> (offset, length)
        self._spooled: dict[str, int] = {}  # upload id -> bytes written to its spool (chunks sent again too)
        self.writable = True
        self.fault = ""

    def failed(self, error: BaseException | None) -> str:
        """A write failed with `error`: why the files cannot be written (then not `writable`), or ""."""
        why = fault_of(error)
        if why:
            if self.writable:
                log.warn("files cannot be written ({why}): refusing uploads until a probe succeeds", why=why)
            self.writable, self.fault = False, why
        return why

    def probe(self) -> Deferred:
        """Try to write again (after a fault); fires with whether it worked."""

        def done(_) -> bool:
            if not self.writable:
                log.info("files can be written again")
            self.writable, self.fault = True, ""
            return True

        def failed(failure) -> bool:
            self.failed(failure.value)
            return False

        return self._probe_write().addCallbacks(done, failed)

    def _probe_write(self) -> Deferred:
        """A write that needs free space where the files go."""
        return deferToThread(probe_directory, self.files)

    def open(self) -> None:
        shutil.rmtree(self.uploads, ignore_errors=True)
        os.makedirs(self.uploads)
        os.makedirs(self.files, exist_ok=True)

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(16)

    def _spool(self, upload_id: str) -> str:
        return os.path.join(self.uploads, upload_id)

    def begin(self, upload_id: str) -> None:
        """Start an upload (again: what it had is kept)."""
        if upload_id not in self._chunks:
            with open(self._spool(upload_id), "wb"):
                pass
            self._chunks[upload_id], self._spooled[upload_id] = {}, 0

    def put_chunk(self, upload_id: str, index: int, data: bytes, most: int) -> bool:
        """Write one chunk (again, if it was written before: the same index replaces it). False, and nothing
        written, if the spool would pass `most` bytes (a chunk sent again with another length takes new room)."""
        chunks = self._chunks[upload_id]
        old = chunks.get(index)
        if old is not None and old[1] == len(data):
            offset = old[0]
        else:
            offset = self._spooled[upload_id]
            if offset + len(data) > most:
                return False
            self._spooled[upload_id] = offset + len(data)
        with open(self._spool(upload_id), "r+b") as f:
            f.seek(offset)
            f.write(data)
        chunks[index] = (offset, len(data))
        return True

    def discard(self, upload_id: str) -> None:
        self._chunks.pop(upload_id, None)
        self._spooled.pop(upload_id, None)
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._spool(upload_id))

    def assemble(self, upload_id: str, total: int, file_id: str):
        """Join chunks 1..total into file `file_id`; fires with (size, sha256). The upload is gone after."""
        chunks = self._chunks.pop(upload_id)
        self._spooled.pop(upload_id, None)
        places = [chunks[index] for index in range(1, total + 1)]
        return deferToThread(self._assemble, self._spool(upload_id), places, file_id)

    def _assemble(self, spool: str, places: list[tuple[int, int]], file_id: str) -> tuple[int, str]:
        digest, size = hashlib.sha256(), 0
        target = os.path.join(self.files, file_id)
        try:
            with open(spool, "rb") as chunks, open(target + ".tmp", "xb") as out:
                expected = 0
                for offset, length in places:
                    if offset != expected:  # in order in the spool: read on; else seek
                        chunks.seek(offset)
                    data = chunks.read(length)
                    expected = offset + length
                    digest.update(data)
                    size += len(data)
                    out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(target + ".tmp", target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(target + ".tmp")  # a full disk gets its space back
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(spool)
        return size, digest.hexdigest()

    def read(self, file_id: str, offset: int, length: int):
        return deferToThread(self._read, file_id, offset, length)

    def _read(self, file_id: str, offset: int, length: int) -> bytes:
        with open(os.path.join(self.files, file_id), "rb") as f:
            f.seek(offset)
            return f.read(length)

    def remove(self, file_id: str):
        return deferToThread(self._remove, file_id)

    def _remove(self, file_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.files, file_id))
