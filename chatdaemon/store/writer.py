"""Group commit: every write goes through one queue, many writes share one transaction.

A write is a function run with the database cursor. While a transaction is in
flight new writes wait; when it commits, everything that arrived meanwhile
goes out in the next one. Under load thousands of writes share a commit; when
idle a write waits at most one reactor turn. Each write runs inside its own
savepoint, so a constraint violation fails that write alone. Deferreds fire
in submission order, and only after the commit.
"""

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger


class GroupCommitWriter:
    log = Logger()

    def __init__(self, pool, clock, max_batch: int, item_errors: tuple[type[Exception], ...], begin: str = "",
                 wrap=None):  # fmt: skip
        """`pool` has adbapi's runInteraction; `begin` is the SQL opening a transaction (if the driver does not);
        `wrap(cursor)` is what the writes get (a cursor with room for per-transaction notes), by default the cursor."""
        self._pool = pool
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

    def submit(self, fn, *args) -> Deferred:
        """Queue `fn(cursor, *args)`; the Deferred fires with its result after the commit."""
        d = Deferred()
        self._queue.append((fn, args, d))
        if self._in_flight is None and self._scheduled is None:
            self._scheduled = self._clock.callLater(0, self._flush)
        return d

    def drain(self) -> Deferred:
        """Fire once everything submitted so far is committed (or failed)."""
        if not self._queue and self._in_flight is None:
            return succeed(None)
        d = Deferred()
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
        """In the database thread: one transaction, one savepoint per write."""
        if self._begin:
            cursor.execute(self._begin)
        txn = self._wrap(cursor)
        outcomes = []
        for fn, args, _ in batch:
            cursor.execute("SAVEPOINT w")
            try:
                outcomes.append((True, fn(txn, *args)))
            except self._item_errors as e:
                cursor.execute("ROLLBACK TO SAVEPOINT w")
                outcomes.append((False, e))
            cursor.execute("RELEASE SAVEPOINT w")
        return outcomes

    def _committed(self, outcomes, batch) -> None:
        self.commits += 1
        self.observe_commit(self._clock.seconds() - self._began, len(batch))
        self._in_flight = None
        self._next()
        for (_, _, d), (ok, value) in zip(batch, outcomes, strict=False):
            if ok:
                d.callback(value)
            else:
                d.errback(value)
        self._notify_idle()

    def _failed(self, failure, batch) -> None:
        self.log.failure("group commit of {n} writes failed", failure, n=len(batch))
        self._in_flight = None
        self._next()
        for _, _, d in batch:
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
