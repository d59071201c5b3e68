"""A connection's input: frames handled one after another, in the order they came, at a bounded rate.

Order: a request whose command is `pipelined` starts at once (several sends may be in flight; their
writes still commit in order). Any other request is a barrier: it waits until every request before
it has finished, and the frames after it wait until it has. So a history read sent right after a
message sees that message, whatever the dialect.

Rate: each frame is decoded, then paid for before it starts. A frame that moves file data (its
Request says `transfer`: an upload chunk, or a request for a download chunk) is charged its size in
bytes, at least MIN_TRANSFER_CHARGE, to a byte bucket (`transfer_bytes_per_second`,
`transfer_burst_bytes`); any other frame, bad ones included, one token of the frame bucket
(`rate_per_second`, `rate_burst`). So a file moves at the byte allowance whatever its chunk size,
while a chat flood is held to the frame rate. While a frame waits for its budget, frames wait behind a
barrier, `max_in_flight` requests of this connection are unfinished, or the daemon is overloaded (the
Governor is holding), the transport stops reading (TCP pushes back on the client); nothing the client
sent is dropped.

After the connection is lost, the frames it had delivered are still carried out, in order, with
no rate limit; then the owner's `inbox_drained` is called once.
"""

from collections import deque
from typing import Any

from zope.interface import Interface

from .governor import NoGovernor

MIN_TRANSFER_CHARGE = 1024  # bytes: what the smallest file-transfer frame costs


class TokenBucket:
    __slots__ = ("_burst", "_clock", "_rate", "_stamp", "_tokens")

    def __init__(self, clock, rate: float, burst: float):
        self._clock, self._rate, self._burst = clock, rate, burst
        self._tokens = float(burst)
        self._stamp = clock.seconds()

    def take(self, n: float = 1.0) -> float:
        """Take `n` tokens (at most the burst: a bigger charge costs a full bucket): 0 if they were there,
        else the seconds until they will be (nothing is taken)."""
        n = min(n, self._burst)
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= n:
            self._tokens -= n
            return 0.0
        return (n - self._tokens) / self._rate


class IInboxOwner(Interface):
    """What an Inbox calls on its owner (the Session)."""

    def decode_frame(item):
        """A Request for a pushed frame, or None if it was answered already."""

    def start_request(request):
        """Run a request: a Deferred that fires when it is done, or None if it is done now."""

    def pause_reading():
        """Stop reading from the client."""

    def resume_reading():
        """Read from the client again."""

    def inbox_drained():
        """After the connection was lost, every frame it had delivered has been carried out."""


class Inbox:
    # An idle connection holds one Inbox: slots, and no queue until a frame has to wait.
    __slots__ = ("_barrier", "_bucket", "_bytes", "_clock", "_drained", "_frames", "_governor", "_in_flight",
                 "_limits", "_lost", "_open", "_owner", "_reading", "_unpaid", "_waiting", "_wakeup")  # fmt: skip

    def __init__(self, owner: IInboxOwner, clock, limits, governor=None):
        self._owner = owner
        self._clock = clock
        self._limits = limits
        self._bucket = TokenBucket(clock, limits.rate_per_second, limits.rate_burst)
        self._bytes: TokenBucket | None = None  # the file-transfer byte bucket, made at the first transfer
        self._governor = governor if governor is not None else NoGovernor()
        self._frames: deque | None = None  # raw frames (or (raw, answer)) waiting their turn; None when none
        self._unpaid: tuple[Any, TokenBucket, int] | None = None  # a decoded frame waiting for its budget
        self._waiting = None  # a decoded, paid barrier request, waiting for those before it
        self._in_flight = 0
        self._barrier = False  # a barrier request is running
        self._wakeup = None  # the rate limiter's pending resume
        self._reading = True
        self._open = True
        self._lost = False
        self._drained = False

    def push(self, raw) -> None:
        """One frame from the transport, in arrival order."""
        if self._open:
            if self._frames is None:
                self._frames = deque()
            self._frames.append(raw)
            self.pump()

    def insert(self, raw) -> None:
        """Put a frame back at the front (it is handled next)."""
        if self._frames is None:
            self._frames = deque()
        self._frames.appendleft(raw)

    @property
    def holding(self) -> bool:
        """Whether frames wait here (queued, unpaid, or behind a barrier) or a barrier runs."""
        return bool(self._frames) or self._unpaid is not None or self._waiting is not None or self._barrier

    def _cost(self, request, item) -> tuple[Any, TokenBucket, int]:
        if request is not None and request.transfer:
            raw = item[0] if isinstance(item, tuple) else item
            if self._bytes is None:
                limits = self._limits
                self._bytes = TokenBucket(self._clock, limits.transfer_bytes_per_second, limits.transfer_burst_bytes)
            return request, self._bytes, max(len(raw), MIN_TRANSFER_CHARGE)
        return request, self._bucket, 1

    def pump(self) -> None:
        while not self._barrier and self._wakeup is None:
            if not self._lost and (self._frames or self._waiting is not None or self._unpaid is not None):
                if self._in_flight >= self._limits.max_in_flight:
                    break  # resumed as they finish
                if self._governor.holding:
                    self._governor.wait(self, self.pump)
                    break
            if self._waiting is not None:
                if self._in_flight:
                    break
                request, self._waiting = self._waiting, None
                self._begin(request)
                continue
            if self._unpaid is None:
                frames = self._frames
                if frames is None:
                    break
                raw = frames.popleft()
                if not frames:
                    self._frames = None
                self._unpaid = self._cost(self._owner.decode_frame(raw), raw)
            request, bucket, cost = self._unpaid
            if not self._lost:
                wait = bucket.take(cost)
                if wait:
                    self._wakeup = self._clock.callLater(wait, self._resume_pump)
                    break
            self._unpaid = None
            if request is None:
                continue
            if request.barrier and self._in_flight:
                self._waiting = request
                continue
            self._begin(request)
        if self.holding:
            self._stop_reading()
        elif self._open and not self._reading:
            self._reading = True
            self._owner.resume_reading()
        elif self._lost and not self._in_flight and not self._drained:
            self._drained = True
            self._owner.inbox_drained()

    def begin(self, request) -> None:
        """Start a request now, ahead of the queue (a login by a handshake token, before any frame)."""
        self._begin(request)

    def _begin(self, request) -> None:
        barrier = request.barrier
        d = self._owner.start_request(request)
        if d is None:
            return
        self._in_flight += 1
        if barrier:
            self._barrier = True
        d.addBoth(self._done, barrier)

    def _done(self, result, barrier: bool):
        self._in_flight -= 1
        if barrier:
            self._barrier = False
        self.pump()
        return result

    def _stop_reading(self) -> None:
        if self._reading and self._open:
            self._reading = False
            self._owner.pause_reading()

    def _resume_pump(self) -> None:
        self._wakeup = None
        self.pump()

    def close(self) -> None:
        """Take no more frames; forget those not yet handled."""
        self._open = False
        if self._wakeup is not None:
            self._wakeup.cancel()
            self._wakeup = None
        self._frames = None
        self._unpaid = self._waiting = None

    def lost(self) -> None:
        """The connection is gone: carry out what it had sent (no rate limit), then call on_drained."""
        frames, unpaid, waiting = self._frames, self._unpaid, self._waiting
        self.close()
        self._lost = True
        self._frames, self._unpaid, self._waiting = frames, unpaid, waiting
        self.pump()
