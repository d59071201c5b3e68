"""IStore on PostgreSQL (store.sql's SQL), shared by every node of a cluster; and IFileStore in it.

psycopg 3 connections from a bounded psycopg_pool pool, used in threads of a Twisted ThreadPool of
the same size: the reactor never waits on the database. Writes go through the same group commit as
SQLite's, one writer connection per node: one transaction per batch, Deferreds fired after the
commit. Each batch takes a transaction-scoped advisory lock first, so that the batches of all
nodes commit one after another and message ids, drawn from the sequence `message_ids` inside the
batch, become visible in id order (IStore's promise). `prev` of a message is the highest id in
the table when its batch began (or the one before it in the batch). A message with a client id
draws its id in its sent_ids row, which goes first (a resend fails there, drawing nothing more).

When the database cannot be reached, calls fail with Unavailable (the core answers 9010),
`available` turns False and a probe asks the database every PROBE_SECONDS until it answers.
A database that answers but cannot write (disk full, read-only, I/O error) is a storage fault
instead: StorageFault (9020), not `writable` until probe() commits a write again.
"""

import contextlib
import hashlib
import os
import shutil
import urllib.parse

import psycopg
import psycopg_pool
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.threads import deferToThread, deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from . import IFileStore, IStore, fault_of, migrate, probe_directory
from .files import FileStore
from .sql import SQLStore
from .writer import GroupCommitWriter

ORDER_LOCK = 0x63686174_6D736773  # "chatmsgs": held by each write transaction until its commit
PROBE_SECONDS = 1.0
RECONNECT_SECONDS = 5.0
FILE_CHUNK = 256 * 1024
# the server's errors that mean "cannot write" (it answers, so the database is not out of reach)
_PG_FAULTS = {
    psycopg.errors.DiskFull: "disk full",
    psycopg.errors.ReadOnlySqlTransaction: "read-only",
    psycopg.errors.IoError: "I/O error",
}


def safe_url(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class _Txn:
    """The writer's cursor, with the batch's last message id (its first message's `prev`)."""

    __slots__ = ("_cursor", "last")

    def __init__(self, cursor):
        self._cursor = cursor
        self.last: int | None = None

    def __getattr__(self, name):
        return getattr(self._cursor, name)


class PgPool:
    """A bounded pool of psycopg connections used in threads: adbapi's runInteraction and runQuery, over
    psycopg_pool (which reconnects, checks returned connections, and bounds the wait for one)."""

    log = Logger()

    def __init__(self, reactor, url: str, size: int, name: str, timeout: float, configure=None):
        self._reactor = reactor
        self._threads = ThreadPool(1, size, name=name)
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=size,
            timeout=timeout,
            open=False,
            name=name,
            kwargs={"connect_timeout": max(1, int(timeout)), "application_name": "chatd"},
            configure=configure,
            check=psycopg_pool.ConnectionPool.check_connection,  # a connection broken by a restart is replaced
            # psycopg_pool backs off exponentially while the database is down; giving up after a few seconds
            # lets the next request try at once, so that a node is back as soon as its database is
            reconnect_timeout=RECONNECT_SECONDS,
        )
        self._started = False

    def start(self) -> None:
        self._threads.start()
        self._pool.open(wait=False)
        self._started = True

    def _in_thread(self, fn, *args) -> Deferred:
        return deferToThreadPool(self._reactor, self._threads, fn, *args)

    def _interaction(self, fn, *args):
        with self._pool.connection() as conn, conn.cursor() as cursor:
            return fn(cursor, *args)  # committed when the block ends, rolled back on an exception

    def runInteraction(self, fn, *args) -> Deferred:
        return self._in_thread(self._interaction, fn, *args)

    def runQuery(self, sql, args=()) -> Deferred:
        return self.runInteraction(lambda cursor: cursor.execute(sql, args).fetchall())

    def runWithConnection(self, fn, *args) -> Deferred:
        def run():
            with self._pool.connection() as conn:
                return fn(conn, *args)

        return self._in_thread(run)

    def close(self) -> None:
        if self._started:
            self._started = False
            self._pool.close()
            self._threads.stop()


@implementer(IStore)
class PostgresStore(SQLStore):
    placeholder = "%s"
    greatest = "greatest"
    _errors = (psycopg.OperationalError, psycopg_pool.PoolTimeout, psycopg.InterfaceError)
    _conflicts = (psycopg.IntegrityError,)
    log = Logger()

    def __init__(self, url: str, reactor, pool_size: int = 8, group_commit_max: int = 1024, timeout: float = 5.0):
        super().__init__()
        self.url = url
        self.location = safe_url(url)
        self._reactor = reactor
        self._pool_size = pool_size
        self._group_commit_max = group_commit_max
        self._timeout = timeout
        self._writer_pool: PgPool | None = None
        self._probe = None

    @inlineCallbacks
    def open(self):
        self._writer_pool = PgPool(self._reactor, self.url, 1, "chatd-pg-writer", self._timeout)
        self._reader = PgPool(self._reactor, self.url, self._pool_size, "chatd-pg", self._timeout)
        self._writer_pool.start()
        self._reader.start()
        self.writer = GroupCommitWriter(
            self._writer_pool,
            self._reactor,
            self._group_commit_max,
            (psycopg.IntegrityError, psycopg.DataError),
            f"SELECT pg_advisory_xact_lock({ORDER_LOCK})",
            _Txn,
            translate=self._write_failed,
        )
        yield self._writer_pool.runWithConnection(migrate.upgrade_postgres, self.location)

    @inlineCallbacks
    def close(self):
        if self.writer is not None:
            yield self.writer.drain()
        if self._probe is not None and self._probe.active():
            self._probe.cancel()
        for pool in (self._reader, self._writer_pool):
            if pool is not None:
                pool.close()
        self._writer_pool = self._reader = self.writer = None

    def load(self):
        def snapshot(cursor):
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return self._snapshot(cursor)

        return self._interaction(snapshot)

    def _insert_message(self, txn: _Txn, m, kind: str, body: str, sent: tuple | None) -> tuple[int, int]:
        if txn.last is None:
            txn.last = txn.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
        if sent is None:
            mid = txn.execute(
                "INSERT INTO messages (id, room_id, sender, kind, body, ts) "
                "VALUES (nextval('message_ids'), %s, %s, %s, %s, %s) RETURNING id",
                (m.room_id, m.sender, kind, body, m.ts),
            ).fetchone()[0]
        else:
            client_id, digest, replace = sent
            remember = self._sent_id_sql(replace, "nextval('message_ids')") + " RETURNING message_id"
            mid = txn.execute(remember, (m.sender, client_id, m.ts, digest)).fetchone()[0]  # first: a resend fails here
            txn.execute(
                "INSERT INTO messages (id, room_id, sender, kind, body, ts) VALUES (%s, %s, %s, %s, %s, %s)",
                (mid, m.room_id, m.sender, kind, body, m.ts),
            )
        prev, txn.last = txn.last, mid
        return mid, prev

    def _fault_of(self, error: BaseException | None) -> str:
        for kind, why in _PG_FAULTS.items():
            if isinstance(error, kind):
                return why
        return fault_of(error)

    # -- out of reach, and back

    def _lost(self, failure) -> None:
        if self.available:
            self.log.warn("the database is out of reach: {error}", error=failure.getErrorMessage())
            self.available = False
            self._probe = self._reactor.callLater(PROBE_SECONDS, self._ask)

    def _ask(self) -> None:
        def back(_):
            self.available = True
            self.log.info("the database answers again")

        def still_down(_):
            self._probe = self._reactor.callLater(PROBE_SECONDS, self._ask)

        if self._reader is not None and self._writer_pool is not None:  # both: reads, and the writer's connection
            probes = [pool.runQuery("SELECT 1") for pool in (self._reader, self._writer_pool)]
            gatherResults(probes, consumeErrors=True).addCallbacks(back, still_down)

    def file_store(self, uploads_dir: str) -> "PostgresFileStore":
        """Where this cluster's files go: the database (uploads in progress stay in `uploads_dir`)."""
        return PostgresFileStore(self, uploads_dir)


@implementer(IFileStore)
class PostgresFileStore(FileStore):
    """Files in PostgreSQL, in FILE_CHUNK-byte rows of `file_chunks`, so that every node reaches every file with
    nothing shared but the database. Chunks of uploads in progress stay on this node's disk (an upload is one
    connection's, on one node), as with the disk store, and are assembled into the database in a thread."""

    def __init__(self, store: PostgresStore, uploads_dir: str):
        super().__init__(uploads_dir)
        self.uploads = uploads_dir
        self.location = f"{store.location} (table file_chunks)"
        self._store = store

    def open(self) -> None:
        shutil.rmtree(self.uploads, ignore_errors=True)
        os.makedirs(self.uploads)

    def assemble(self, upload_id: str, total: int, file_id: str):
        chunks = self._chunks.pop(upload_id)
        self._spooled.pop(upload_id, None)
        places = [chunks[index] for index in range(1, total + 1)]
        spool_path = self._spool(upload_id)

        def write(conn):
            digest, size, buffer, seq = hashlib.sha256(), 0, bytearray(), 0
            with conn.cursor() as cursor, open(spool_path, "rb") as spool:
                for offset, length in places:
                    spool.seek(offset)
                    data = spool.read(length)
                    digest.update(data)
                    size += len(data)
                    buffer += data
                    while len(buffer) >= FILE_CHUNK:
                        cursor.execute(
                            "INSERT INTO file_chunks (file_id, seq, data) VALUES (%s, %s, %s)",
                            (file_id, seq, bytes(buffer[:FILE_CHUNK])),
                        )
                        del buffer[:FILE_CHUNK]
                        seq += 1
                if buffer or seq == 0:
                    cursor.execute(
                        "INSERT INTO file_chunks (file_id, seq, data) VALUES (%s, %s, %s)",
                        (file_id, seq, bytes(buffer)),
                    )
            conn.commit()
            with contextlib.suppress(FileNotFoundError):
                os.remove(spool_path)
            return size, digest.hexdigest()

        return self._store._reader.runWithConnection(write).addErrback(self._store._write_failed)

    def read(self, file_id: str, offset: int, length: int):
        first, last = offset // FILE_CHUNK, (offset + max(length, 1) - 1) // FILE_CHUNK

        def join(rows) -> bytes:
            data = b"".join(bytes(r[0]) for r in rows)
            start = offset - first * FILE_CHUNK
            return data[start : start + length]

        d = self._store._reader.runQuery(
            "SELECT data FROM file_chunks WHERE file_id = %s AND seq BETWEEN %s AND %s ORDER BY seq",
            (file_id, first, last),
        )
        return d.addCallbacks(join, self._store._unavailable)

    def remove(self, file_id: str):
        return self._store._write("DELETE FROM file_chunks WHERE file_id = ?", file_id)

    def _probe_write(self) -> Deferred:
        """The uploads in progress on this node's disk, then a write through the database's group commit."""
        d = deferToThread(probe_directory, self.uploads)
        return d.addCallback(lambda _: self._store._probe_write())
