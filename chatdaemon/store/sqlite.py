"""IStore on SQLite (store.sql's SQL): WAL mode, one writer thread with group commit, a reader pool.

Message ids come from a counter in memory, taken in the order writes are submitted to the one
writer, so they commit in id order.
"""

import os
import sqlite3

from twisted.enterprise import adbapi
from twisted.internet.defer import fail, inlineCallbacks
from zope.interface import implementer

from ..core.model import Message
from . import IStore, bodies, migrate
from .sql import SQLStore
from .writer import GroupCommitWriter

DB_FILE = "chatd.sqlite3"
INSERT_MESSAGE = "INSERT INTO messages (id, room_id, sender, kind, body, ts) VALUES (?, ?, ?, ?, ?, ?)"


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
        self._next_id = last[0][0] + 1

    @inlineCallbacks
    def close(self):
        if self.writer is not None:
            yield self.writer.drain()
        for pool in (self._reader, self._writer_pool):
            if pool is not None:
                pool.close()
        self._writer_pool = self._reader = self.writer = None

    def append_message(self, m):
        mid, self._next_id = self._next_id, self._next_id + 1
        kind, body = bodies.encode(m.body)
        if self.writer is None:
            return fail(RuntimeError("the store is closed"))
        stored = Message(mid, m.room_id, m.sender, m.body, m.ts)
        # one row of a statement: consecutive messages share one executemany in the commit (writer.py)
        d = self.writer.submit_row(INSERT_MESSAGE, (mid, m.room_id, m.sender, kind, body, m.ts))
        return d.addErrback(self._unavailable).addCallback(lambda _: (stored, mid - 1))
