"""A connection's output: coalesced, bounded, paced by the transport, with delivery marks.

Everything queued within one reactor turn leaves in one `write_frames` call at the end of the turn
(the Flusher), or at once in 64 KiB pieces for a big burst. The Outbox follows the transport as a
streaming producer: while the transport says its buffer is full, output queues here. A client
whose queue stays above `outbound_buffer_bytes` for `slow_consumer_grace` seconds, or ever
reaches HARD_LIMIT_FACTOR times that, is dropped as a slow consumer (its owner's `too_slow`); what it missed
is replayed at its next login. A burst that a reading client drains quickly is never dropped.

While an offline replay runs (`hold`), live frames wait aside and leave after it (`release`).
Holds nest: the frames leave at the release of the last one (a session whose dialect is not ready
yet holds too).

Delivery marks say how far the client surely got: what was written while the transport kept up
counts; what is still queued here, or was written after the transport last said it was full,
does not (`delivered_upto`).
"""

from twisted.internet.defer import Deferred, succeed
from zope.interface import Attribute, Interface

WRITE_CHUNK = 64 * 1024
HARD_LIMIT_FACTOR = 4


class Flusher:
    """Writes every outbox with pending output once, at the end of the reactor turn."""

    def __init__(self, clock):
        self._clock = clock
        self._outboxes: list[Outbox] = []
        self._call = None

    def schedule(self, outbox: "Outbox") -> None:
        self._outboxes.append(outbox)
        if self._call is None:
            self._call = self._clock.callLater(0, self._run)

    def _run(self) -> None:
        self._call = None
        outboxes, self._outboxes = self._outboxes, []
        for outbox in outboxes:
            outbox.flush()


class IOutboxOwner(Interface):
    """What an Outbox calls on its owner (the Session)."""

    fanout_upto = Attribute("Every message up to this id has been handed to the bus (the core's watermark)")

    def write_out(frames):
        """Write these frames to the transport, now."""

    def too_slow(unread):
        """The client is too slow: `unread` bytes were waiting for it (they are given up)."""


class Outbox:
    __slots__ = ("_bytes", "_clock", "_closed", "_dropped", "_flushed_mark", "_flusher", "_held", "_holds", "_out",
                 "_owner", "_paused", "_replay_mark", "_scheduled", "_slow_timer", "_waiters", "_written_mark",
                 "limits")  # fmt: skip

    def __init__(self, owner: IOutboxOwner, flusher: Flusher, limits, clock):
        self._owner = owner
        self._flusher = flusher
        self.limits = limits
        self._clock = clock
        self._out: list[bytes] = []
        self._bytes = 0  # queued here, held frames included
        self._scheduled = False
        self._paused = False
        self._closed = False
        self._dropped = False
        self._slow_timer = None
        self._held: list[bytes] | None = None
        self._holds = 0
        self._replay_mark = 0  # the last offline message queued
        self._written_mark = 0  # every message up to this id was handed to the transport
        self._flushed_mark = 0  # ... and up to this one the transport said it sent
        self._waiters: list[Deferred] | None = None  # who waits for room (made when someone does)

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def send(self, frame: bytes) -> None:
        """Queue one frame; it leaves at the end of this reactor turn."""
        if self._closed:
            return
        self._out.append(frame)
        self._bytes += len(frame)
        if self._paused:
            self._check_backlog()
        elif self._bytes >= WRITE_CHUNK:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._flusher.schedule(self)

    def send_live(self, frame: bytes) -> None:
        """A live event's frame: held back while a replay runs."""
        if self._held is None:
            self.send(frame)
        elif not self._closed:
            self._held.append(frame)
            self._bytes += len(frame)
            self._check_backlog()

    def send_replayed(self, frame: bytes, message_id: int) -> None:
        """A frame of the offline replay (of message `message_id`, or 0)."""
        if message_id > self._replay_mark:
            self._replay_mark = message_id
        self.send(frame)

    def hold(self) -> None:
        self._holds += 1
        if self._held is None:
            self._held = []

    def release(self) -> None:
        self._holds = max(0, self._holds - 1)
        if self._holds:
            return
        held, self._held = self._held or [], None
        for frame in held:
            self._bytes -= len(frame)
            self.send(frame)

    def flush(self) -> None:
        self._scheduled = False
        if self._paused or not self._out or self._closed:
            return
        out, self._out = self._out, []
        self._bytes = sum(map(len, self._held)) if self._held else 0
        owner = self._owner
        owner.write_out(out)
        self._written_mark = self._replay_mark if self._held is not None else owner.fanout_upto
        if not self._paused:
            self._wake()

    def writable(self) -> Deferred:
        """Fires when the output has room again."""
        if not self._paused and self._bytes < self.limits.outbound_buffer_bytes // 2:
            return succeed(None)
        d: Deferred = Deferred()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(d)
        return d

    def _wake(self) -> None:
        if self._waiters is None:
            return
        waiters, self._waiters = self._waiters, None
        for d in waiters:
            d.callback(None)

    def delivered_upto(self, fanout: int) -> int:
        if self._paused or self._dropped:
            return self._flushed_mark
        if self._out or self._held is not None:
            return self._written_mark
        return fanout

    # -- back-pressure from the transport

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self._cancel_slow_timer()
        self._flushed_mark = self._written_mark  # the transport's buffer has drained
        self.flush()
        if not self._paused:
            self._wake()

    def _check_backlog(self) -> None:
        limit = self.limits.outbound_buffer_bytes
        if self._bytes > HARD_LIMIT_FACTOR * limit:
            self._drop()
        elif self._bytes > limit and self._slow_timer is None:
            self._slow_timer = self._clock.callLater(self.limits.slow_consumer_grace, self._deadline)

    def _deadline(self) -> None:
        self._slow_timer = None
        if not self._closed and self._bytes > self.limits.outbound_buffer_bytes:
            self._drop()

    def _drop(self) -> None:
        unread = self._bytes
        self._dropped = True
        self._out, self._held, self._bytes, self._holds = [], None, 0, 0
        self._owner.too_slow(unread)

    def _cancel_slow_timer(self) -> None:
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None

    @property
    def paused(self) -> bool:
        """Whether the transport said its buffer is full (and has not drained since)."""
        return self._paused

    def discard(self) -> None:
        """Give up what is queued (the connection is closing under a client that does not keep up); delivery marks
        count none of it, so its messages are replayed at the next login."""
        self._dropped = True
        self._out, self._held, self._bytes = [], None, 0

    def close(self) -> None:
        """No more output (what is queued was flushed, or is given up)."""
        self._closed = True
        self._cancel_slow_timer()

    def release_waiters(self) -> None:
        """The connection is gone: nobody waits for room any more."""
        self._wake()
