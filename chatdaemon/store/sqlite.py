"""IStore on SQLite (store.sql's SQL): WAL mode, one writer thread with group commit, a reader pool.

Checkpoints (copying the write-ahead log into the database file) run every CHECKPOINT_SECONDS in a
thread of their own, beside the writer (PASSIVE: they never block it). Left to the writer, as SQLite
does by default, one commit in a thousand pages would carry a checkpoint and hold every write behind
it for tens of milliseconds; the writer still checkpoints itself if the log reaches
WRITER_CHECKPOINT_PAGES (the background ones stalled), so the log stays bounded.

Message ids come from a counter in memory, taken in the order writes are submitted to the one
writer, so they commit in id order. A message without a client id is one row of a statement
(consecutive ones share one executemany); one with a client id is a write of its own (its sent_ids
row, then the message, in one savepoint), so that a resend's conflict fails that write alone. The id
of a write that failed is never used: the writer says so (`lost`), and a message submitted after that
is known takes as its `prev` the id before the lost ones, so the fan-out needs no read to pass them.

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
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from zope.interface import implementer

from ..core.model import Message
from . import IStore, bodies, fault_of, migrate, probe_directory
from .sql import SQLStore
from .writer import GroupCommitWriter

DB_FILE = "chatd.sqlite3"
CHECKPOINT_SECONDS = 1.0
WRITER_CHECKPOINT_PAGES = 16384  # 64 MiB of log at SQLite's 4 KiB pages
LOG_SIZE_LIMIT = 64 * 1024 * 1024  # bytes the log file is cut back to after a checkpoint empties it
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
    log = Logger()
    _conflicts = (sqlite3.IntegrityError,)

    def __init__(self, data_dir: str, reactor, group_commit_max: int = 1024, synchronous: str = "FULL"):
        super().__init__()
        self.path = self.location = os.path.join(data_dir, DB_FILE)
        self._reactor = reactor
        self._synchronous = synchronous
        self._group_commit_max = group_commit_max
        self._next_id = 1
        self._writer_pool: adbapi.ConnectionPool | None = None
        self._checkpoint_pool: adbapi.ConnectionPool | None = None
        self._checkpoints = LoopingCall(self._checkpoint)
        self._checkpoints.clock = reactor
        self._checkpoint_fault = ""  # why checkpoints fail for want of space or write access (said once)
        self._lost_ids: set[int] = set()  # ids of message writes that failed, just below the next id

    def _pool(self, readers: int, writer: bool = False):
        def pragmas(conn):
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA busy_timeout = 5000")
            if writer:
                conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_PAGES}")
                conn.execute(f"PRAGMA journal_size_limit = {LOG_SIZE_LIMIT}")

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
        self._writer_pool = writer_pool = self._pool(1, writer=True)
        self.writer = GroupCommitWriter(
            writer_pool,
            self._reactor,
            self._group_commit_max,
            (sqlite3.DatabaseError,),
            "BEGIN IMMEDIATE",
            translate=self._write_failed,
            lost=self._lost_message,
        )
        yield writer_pool.runWithConnection(migrate.upgrade, self.path)
        self._reader = self._pool(2)
        last = yield self._read("SELECT coalesce(max(id), 0) FROM messages")
        self._next_id = last[0][0] + 1
        self._checkpoint_pool = self._pool(1)
        self._checkpoints.start(CHECKPOINT_SECONDS, now=False)

    def _checkpoint(self):
        """Copy what the log holds into the database file, beside the writer (the next one waits for this one)."""
        if self._checkpoint_pool is None:
            return None
        d = self._checkpoint_pool.runQuery("PRAGMA wal_checkpoint(PASSIVE)")
        return d.addCallbacks(self._checkpointed, self._checkpoint_failed)

    def _checkpointed(self, rows):
        self._checkpoint_fault = ""
        return rows  # (busy, log pages, pages copied)

    def _checkpoint_failed(self, failure) -> None:
        why = sqlite_fault(failure.value)
        if not why:
            self.log.failure("checkpoint failed", failure)
        elif why != self._checkpoint_fault:  # a full disk: said once, tried again each time (the log stays)
            self.log.warn("checkpoints fail ({why}): the write-ahead log grows until they succeed", why=why)
        self._checkpoint_fault = why

    @inlineCallbacks
    def close(self):
        if self._checkpoints.running:
            self._checkpoints.stop()
        if self.writer is not None:
            yield self.writer.drain()
        for pool in (self._reader, self._checkpoint_pool, self._writer_pool):
            if pool is not None:
                pool.close()
        self._writer_pool = self._reader = self._checkpoint_pool = self.writer = None

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
        prev = mid - 1
        if self._lost_ids:  # ids below whose writes failed: none of them will ever be a message
            while prev in self._lost_ids:
                prev -= 1
            self._lost_ids = {i for i in self._lost_ids if i > prev}
        kind, body = bodies.encode(m.body)
        row = (mid, m.room_id, m.sender, kind, body, m.ts)
        stored = (Message(mid, m.room_id, m.sender, m.body, m.ts), prev)
        if not client_id:
            # one row of a statement: consecutive messages share one executemany in the commit (writer.py)
            return self.writer.submit_row(INSERT_MESSAGE, row, stored)
        remember = self._sent_id_sql(replace)

        def append(cursor):
            cursor.execute(remember, (m.sender, client_id, mid, m.ts, digest))  # first: a resend fails here
            cursor.execute(INSERT_MESSAGE, row)

        # (a client id sent already fails with Conflict: _write_failed)
        return self.writer.submit(append, result=stored)

    def _lost_message(self, result) -> None:
        """A write failed (the writer, in order): if it was a message's, its id will never be a message."""
        if isinstance(result, tuple) and isinstance(result[0], Message):
            self._lost_ids.add(result[0].id)
