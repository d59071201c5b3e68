"""IStore on SQLite (store.sql's SQL): WAL mode, one writer thread with group commit, a reader pool.

Message ids come from a counter in memory, taken in the order writes are submitted to the one
writer, so they commit in id order. A message without a client id is one row of a statement
(consecutive ones share one executemany); one with a client id is a write of its own (its
sent_ids row, then the message, in one savepoint), so that a resend's conflict fails that write
alone. An id whose write failed is never used; `prev` of a message is the last one stored before it.

A write failing with SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR or SQLITE_CANTOPEN (or an OSError
such as ENOSPC or EROFS) fails with StorageFault and makes the store not `writable` until `probe()`
succeeds: it writes and syncs store.PROBE_BYTES in a file beside the database (SQLite may still fit a
small commit into its write-ahead log on a full disk, so a successful write proves little), then
commits a write through the group commit.
"""

import os
import sqlite3

from twisted.enterprise import adbapi
from twisted.internet.defer import fail, inlineCallbacks
from twisted.internet.threads import deferToThread
from zope.interface import implementer

from ..core.model import Message
from . import IStore, bodies, fault_of, migrate, probe_directory
from .sql import SQLStore
from .writer import GroupCommitWriter

DB_FILE = "chatd.sqlite3"
INSERT_MESSAGE = "INSERT INTO messages (id, room_id, sender, kind, body, ts) VALUES (?, ?, ?, ?, ?, ?)"
# SQLite's primary result codes that mean "cannot write": READONLY, IOERR, FULL, CANTOPEN
_SQLITE_FAULTS = {8: "read-only", 10: "I/O error", 13: "disk full", 14: "cannot open the database file"}


def sqlite_fault(error: BaseException | None) -> str:
    """Why `error` means the database cannot be written, or ""."""
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)
        if code is not None:
            return _SQLITE_FAULTS.get(code & 0xFF, "")
        text = str(error)  # an error raised without a code (e.g. by the module itself)
        clues = (("disk is full", "disk full"), ("readonly", "read-only"), ("disk I/O", "I/O error"))
        return next((why for clue, why in clues if clue in text), "")
    return fault_of(error)


@implementer(IStore)
class SQLiteStore(SQLStore):
    _conflicts = (sqlite3.IntegrityError,)

    def __init__(self, data_dir: str, reactor, group_commit_max: int = 1024, synchronous: str = "FULL"):
        super().__init__()
        self.path = self.location = os.path.join(data_dir, DB_FILE)
        self._reactor = reactor
        self._synchronous = synchronous
        self._group_commit_max = group_commit_max
        self._next_id = 1
        self._last_stored = 0  # the highest message id committed (ids whose write failed are skipped)
        self._writer_pool: adbapi.ConnectionPool | None = None

    def _pool(self, readers: int):
        def pragmas(conn):
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA busy_timeout = 5000")

        return adbapi.ConnectionPool(
            "sqlite3",
            self.path,
            check_same_thread=False,
            isolation_level=None,
            cp_min=1,
            cp_max=readers,
            cp_openfun=pragmas,
            cp_reactor=self._reactor,
        )

    @inlineCallbacks
    def open(self):
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        self._writer_pool = writer_pool = self._pool(1)
        self.writer = GroupCommitWriter(
            writer_pool, self._reactor, self._group_commit_max, (sqlite3.DatabaseError,), "BEGIN IMMEDIATE"
        )
        yield writer_pool.runWithConnection(migrate.upgrade, self.path)
        self._reader = self._pool(2)
        last = yield self._read("SELECT coalesce(max(id), 0) FROM messages")
        self._last_stored = last[0][0]
        self._next_id = self._last_stored + 1

    @inlineCallbacks
    def close(self):
        if self.writer is not None:
            yield self.writer.drain()
        for pool in (self._reader, self._writer_pool):
            if pool is not None:
                pool.close()
        self._writer_pool = self._reader = self.writer = None

    def _fault_of(self, error: BaseException | None) -> str:
        return sqlite_fault(error)

    def _probe_write(self):
        """store.PROBE_BYTES written and synced beside the database, then a write through the group commit."""
        d = deferToThread(probe_directory, os.path.dirname(self.path) or ".")
        return d.addCallback(lambda _: super(SQLiteStore, self)._probe_write())

    def append_message(self, m: Message, client_id: str = "", digest: int = 0, replace: bool = False):
        if self.writer is None:
            return fail(RuntimeError("the store is closed"))
        mid, self._next_id = self._next_id, self._next_id + 1
        kind, body = bodies.encode(m.body)
        row = (mid, m.room_id, m.sender, kind, body, m.ts)
        if not client_id:
            # one row of a statement: consecutive messages share one executemany in the commit (writer.py)
            d = self.writer.submit_row(INSERT_MESSAGE, row).addErrback(self._write_failed)
        else:
            remember = self._sent_id_sql(replace)

            def append(cursor):
                cursor.execute(remember, (m.sender, client_id, mid, m.ts, digest))  # first: a resend fails here
                cursor.execute(INSERT_MESSAGE, row)

            d = self._submit(append).addErrback(self._sent_before, m.sender, client_id)
        stored = Message(mid, m.room_id, m.sender, m.body, m.ts)
        return d.addCallback(self._stored, stored)

    def _stored(self, _, stored: Message) -> tuple[Message, int]:
        # Deferreds fire in the order of submission: every smaller id's write has succeeded or failed by now
        prev, self._last_stored = self._last_stored, stored.id
        return stored, prev
