"""IFileStore on disk (a node alone): by server-generated id, data_dir/files/<id>. Client names never become paths.

An upload is a directory of chunk files (data_dir/uploads/<upload id>/<index>),
assembled in a thread into a temporary file that is synced and then renamed
into place, so a file is either whole or absent. Uploads do not survive a
restart: their directory is emptied at start, and the client starts again.
"""

import contextlib
import hashlib
import os
import secrets
import shutil

from twisted.internet.threads import deferToThread
from zope.interface import implementer

from . import IFileStore


@implementer(IFileStore)
class FileStore:
    def __init__(self, data_dir: str):
        self.files = self.location = os.path.join(data_dir, "files")
        self.uploads = os.path.join(data_dir, "uploads")

    def open(self) -> None:
        shutil.rmtree(self.uploads, ignore_errors=True)
        os.makedirs(self.uploads)
        os.makedirs(self.files, exist_ok=True)

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(16)

    def _chunk_path(self, upload_id: str, index: int) -> str:
        return os.path.join(self.uploads, upload_id, str(int(index)))

    def begin(self, upload_id: str) -> None:
        os.makedirs(os.path.join(self.uploads, upload_id), exist_ok=True)

    def put_chunk(self, upload_id: str, index: int, data: bytes) -> None:
        """Write one chunk (again, if it was written before: the same index replaces it)."""
        path = self._chunk_path(upload_id, index)
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.replace(path + ".tmp", path)

    def discard(self, upload_id: str) -> None:
        shutil.rmtree(os.path.join(self.uploads, upload_id), ignore_errors=True)

    def assemble(self, upload_id: str, total: int, file_id: str):
        """Join chunks 1..total into file `file_id`; fires with (size, sha256)."""
        return deferToThread(self._assemble, upload_id, total, file_id)

    def _assemble(self, upload_id: str, total: int, file_id: str) -> tuple[int, str]:
        digest, size = hashlib.sha256(), 0
        target = os.path.join(self.files, file_id)
        with open(target + ".tmp", "xb") as out:
            for index in range(1, total + 1):
                with open(self._chunk_path(upload_id, index), "rb") as chunk:
                    data = chunk.read()
                digest.update(data)
                size += len(data)
                out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(target + ".tmp", target)
        self.discard(upload_id)
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
