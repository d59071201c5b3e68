"""IStore on SQLite (store.sql's SQL): WAL mode, one writer thread with group commit, a reader pool.

Checkpoints (copying the write-ahead log into the database file) run every CHECKPOINT_SECONDS in a
thread of their own, beside the writer (PASSIVE: they never block it). Left to the writer, as SQLite
does by default, one commit in a thousand pages would carry a checkpoint and hold every write behind
it for tens of milliseconds; the writer still checkpoints itself if the log reaches
WRITER_CHECKPOINT_PAGES (the background ones stalled), so the log stays bounded.

Message ids come from a counter in memory, taken in the order writes are submitted to the one
writer, so they commit in id order.
"""

import os
import sqlite3

from twisted.enterprise import adbapi
from twisted.internet.defer import fail, inlineCallbacks
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from ..core.model import Message
from . import IStore, bodies, migrate
from .sql import SQLStore
from .writer import GroupCommitWriter

DB_FILE = "chatd.sqlite3"
CHECKPOINT_SECONDS = 1.0
WRITER_CHECKPOINT_PAGES = 16384  # 64 MiB of log at SQLite's 4 KiB pages
LOG_SIZE_LIMIT = 64 * 1024 * 1024  # bytes the log file is cut back to after a checkpoint empties it
INSERT_MESSAGE = "INSERT INTO messages (id, room_id, sender, kind, body, ts) VALUES (?, ?, ?, ?, ?, ?)"


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
            translate=self._unavailable,
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
        return d.addErrback(lambda failure: self.log.failure("checkpoint failed", failure))

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

    def append_message(self, m):
        mid, self._next_id = self._next_id, self._next_id + 1
        kind, body = bodies.encode(m.body)
        if self.writer is None:
            return fail(RuntimeError("the store is closed"))
        stored = Message(mid, m.room_id, m.sender, m.body, m.ts)
        # one row of a statement: consecutive messages share one executemany in the commit (writer.py)
        return self.writer.submit_row(INSERT_MESSAGE, (mid, m.room_id, m.sender, kind, body, m.ts), (stored, mid - 1))
