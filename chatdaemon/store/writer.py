"""Group commit: every write goes through one queue, many writes share one transaction.

A write is a function run with the database cursor (`submit`), or one row of an
SQL statement (`submit_row`). While a transaction is in flight new writes wait;
when it commits, everything that arrived meanwhile goes out in the next one.
Under load thousands of writes share a commit; when idle a write waits at most
one reactor turn. Each write runs inside its own savepoint, so a constraint
violation fails that write alone; consecutive rows of one statement (messages,
under load) share one `executemany` and one savepoint, and are retried one by
one only if that fails. Deferreds fire in submission order, and only after the
commit, each with its write's result (or the result given with the write) directly:
no callbacks of the store's own on the path of every message. A write that fails
tells `lost(result)` first (with the result it was given), so a store learns, in
order and without a callback per write, which of its writes never happened.
"""

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure


class GroupCommitWriter:
    log = Logger()

    def __init__(self, pool, clock, max_batch: int, item_errors: tuple[type[Exception], ...], begin: str = "",
                 wrap=None, translate: Callable[[Failure], Failure] = lambda failure: failure,
                 lost: Callable[[Any], None] = lambda result: None):  # fmt: skip
        """`pool` has adbapi's runInteraction; `begin` is the SQL opening a transaction (if the driver does not);
        `wrap(cursor)` is what the writes get (a cursor with room for per-transaction notes), by default the cursor;
        `translate` turns the driver's failures into the store's (e.g. "the database is out of reach");
        `lost(result)` is called with the result given to a write that failed, before its Deferred fails."""
        self._pool = pool
        self._translate = translate
        self._lost = lost
        self._begin = begin
        self._wrap = wrap if wrap is not None else (lambda cursor: cursor)
        self._clock = clock
        self._max_batch = max_batch
        self._item_errors = item_errors
        self._queue: list[tuple] = []
        self._scheduled = None
        self._in_flight: Deferred | None = None
        self._idle_waiters: list[Deferred] = []
        self.commits = 0  # transactions committed, for metrics and tests
        self.observe_commit = lambda seconds, writes: None  # metrics hook: each commit's duration and size
        self._began = 0.0

    @property
    def pending(self) -> int:
        """Writes waiting for the next transaction (metrics)."""
        return len(self._queue)

    def submit(self, fn, *args, result: Any = None) -> Deferred:
        """Queue `fn(cursor, *args)`; the Deferred fires with its result after the commit (or with `result`, if
        given: then `lost(result)` hears of a failure)."""
        return self._queued(fn, args, result)

    def submit_row(self, sql: str, row: tuple, result: Any = 1) -> Deferred:
        """Queue one row of `sql` (an INSERT); the Deferred fires with `result` after the commit."""
        return self._queued(sql, row, result)

    def _queued(self, what, args: tuple, result) -> Deferred:
        d: Deferred[Any] = Deferred()
        self._queue.append((what, args, d, result))
        if self._in_flight is None and self._scheduled is None:
            self._scheduled = self._clock.callLater(0, self._flush)
        return d

    def drain(self) -> Deferred:
        """Fire once everything submitted so far is committed (or failed)."""
        if not self._queue and self._in_flight is None:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._idle_waiters.append(d)
        return d

    def _flush(self) -> None:
        self._scheduled = None
        if not self._queue or self._in_flight is not None:
            return
        batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
        self._began = self._clock.seconds()
        self._in_flight = self._pool.runInteraction(self._run, batch)
        self._in_flight.addCallbacks(self._committed, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))

    def _run(self, cursor, batch):
        """In the database thread: one transaction; a savepoint per write, or per run of rows of one statement."""
        if self._begin:
            cursor.execute(self._begin)
        txn = self._wrap(cursor)
        outcomes: list[tuple[bool, Any]] = []
        i, n = 0, len(batch)
        while i < n:
            what = batch[i][0]
            if not isinstance(what, str):
                outcomes.append(self._one(cursor, what, (txn, *batch[i][1])))
                i += 1
                continue
            j = i + 1
            while j < n and batch[j][0] == what:
                j += 1
            rows = [batch[k][1] for k in range(i, j)]
            cursor.execute("SAVEPOINT w")
            try:
                cursor.executemany(what, rows)
            except self._item_errors:
                cursor.execute("ROLLBACK TO SAVEPOINT w")
                cursor.execute("RELEASE SAVEPOINT w")
                outcomes.extend(self._one(cursor, _execute, (cursor, what, row)) for row in rows)
            else:
                cursor.execute("RELEASE SAVEPOINT w")
                outcomes.extend([(True, 1)] * (j - i))
            i = j
        return outcomes

    def _one(self, cursor, fn, args: tuple) -> tuple[bool, Any]:
        """`fn(*args)` in a savepoint of its own (`args` begin with what the write gets as its cursor)."""
        cursor.execute("SAVEPOINT w")
        try:
            outcome: tuple[bool, Any] = (True, fn(*args))
        except self._item_errors as e:
            cursor.execute("ROLLBACK TO SAVEPOINT w")
            outcome = (False, e)
        cursor.execute("RELEASE SAVEPOINT w")
        return outcome

    def _committed(self, outcomes, batch) -> None:
        self.commits += 1
        self.observe_commit(self._clock.seconds() - self._began, len(batch))
        self._in_flight = None
        self._next()
        for (_, _, d, result), (ok, value) in zip(batch, outcomes, strict=True):
            if ok:
                d.callback(value if result is None else result)
            else:
                if result is not None:
                    self._lost(result)
                d.errback(self._translate(Failure(value)))
        self._notify_idle()

    def _failed(self, failure, batch) -> None:
        self.log.failure("group commit of {n} writes failed", failure, n=len(batch))
        self._in_flight = None
        self._next()
        failure = self._translate(failure)
        for _, _, d, result in batch:
            if result is not None:
                self._lost(result)
            d.errback(failure)
        self._notify_idle()

    def _next(self) -> None:
        if self._queue and self._scheduled is None:
            self._scheduled = self._clock.callLater(0, self._flush)

    def _notify_idle(self) -> None:
        if not self._queue and self._in_flight is None:
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                d.callback(None)


def _execute(cursor, sql: str, row: tuple) -> int:
    return cursor.execute(sql, row).rowcount
