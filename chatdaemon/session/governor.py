"""Overload control: when the daemon cannot keep up, take no new work until it has caught up.

Offered more than it can carry, a server that goes on reading accepts work it cannot finish: commits
queue, replies and deliveries fall behind, memory grows, and everyone's latency grows with it. The
Governor watches three signs, each against a bound ([overload] in the config):

    event-loop lag   how late a timer that should fire every `tick` seconds fires
    commit queue     writes waiting for the next group commit (the store's pending_writes)
    queued output    bytes waiting in the connections' outboxes, over all of them

While any is past its bound the daemon is *holding*: no Inbox starts a new request, so frames stay
queued, each connection stops being read, and TCP pushes back on the senders. Nothing accepted is
dropped; what is in flight finishes. Once every sign is below half its bound, the held inboxes resume,
oldest first. The state is visible in /metrics and the admin shell's `stats`.
"""

from collections.abc import Callable, Iterable

from twisted.internet.task import LoopingCall
from twisted.logger import Logger


class Governor:
    log = Logger()

    def __init__(self, clock, bounds, pending_writes: Callable[[], int], queued_bytes: Callable[[], Iterable[int]],
                 tick: float = 0.05):  # fmt: skip
        self._clock, self.bounds, self.tick = clock, bounds, tick
        self._pending_writes, self._queued_bytes = pending_writes, queued_bytes
        self.holding = False
        self.lag = 0.0  # seconds, at the last check
        self.pending = 0
        self.queued = 0
        self.episodes = 0  # times the daemon started holding
        self.held_seconds = 0.0
        self._since = 0.0
        self._waiting: dict[object, Callable[[], None]] = {}  # inbox -> its pump, in the order they waited
        self._last = 0.0
        self._loop = LoopingCall(self._check)
        self._loop.clock = clock

    def start(self) -> None:
        self._last = self._clock.seconds()
        self._loop.start(self.tick, now=False)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()
        self._release()

    def wait(self, inbox, pump: Callable[[], None]) -> None:
        """`inbox` has work it may not start now: call `pump` when the daemon is no longer holding."""
        self._waiting.setdefault(inbox, pump)

    def _check(self) -> None:
        now = self._clock.seconds()
        self.lag = max(0.0, now - self._last - self.tick)
        self._last = now
        self.pending = self._pending_writes()
        self.queued = sum(self._queued_bytes())
        b = self.bounds
        over = self.lag > b.max_loop_lag or self.pending > b.max_pending_writes or self.queued > b.max_queued_bytes
        under = (
            self.lag <= b.max_loop_lag / 2
            and self.pending <= b.max_pending_writes / 2
            and self.queued <= b.max_queued_bytes / 2
        )
        if over and not self.holding:
            self.holding, self._since = True, now
            self.episodes += 1
            self.log.warn(
                "overloaded: taking no new work (loop lag {lag:.0f} ms, {pending} writes pending, {queued} bytes "
                "queued)", lag=self.lag * 1000, pending=self.pending, queued=self.queued,
            )  # fmt: skip
        elif self.holding and under:
            self.holding = False
            self.held_seconds += now - self._since
            self.log.info("caught up after {s:.2f} s: taking work again", s=now - self._since)
            self._release()

    def _release(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for pump in waiting.values():
            pump()


class NoGovernor:
    """For a session made without a service (unit tests): never holding."""

    holding = False

    def wait(self, inbox, pump: Callable[[], None]) -> None:
        """Never called: an inbox waits only while holding."""
