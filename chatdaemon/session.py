"""One connected client: its dialect, its user, its bounded and coalesced output.

A transport hands the session one frame at a time (`frame_received`) and
offers it a small surface (`write_frames`, `close`, `abort`, `pause_reading`,
`resume_reading`). The session never touches sockets itself.

Output: everything a session is sent within one reactor turn leaves in one
`write_frames` call (or in 64 KiB pieces, for a big burst). The session is
registered as the transport's streaming producer; while the transport says its
buffer is full, output queues here. A client whose queue stays above
`outbound_buffer_bytes` for `slow_consumer_grace` seconds, or ever reaches four
times that, is dropped as a slow consumer; what it missed is replayed at its
next login. A burst that a reading client drains quickly is never dropped.

Input: frames are handled in order. A command that is not `pipelined` holds
back the frames after it until it completes, and replies always leave in the
order their requests came. A token bucket bounds the request rate: past it,
reading pauses until tokens return (nothing is dropped).

Exchanges longer than one frame (see dialects.Request): a request's `expires`
is called after `limits.handshake_timeout` seconds (the timers die with the
session); a request's `follow` is handled once the reply is queued and the
output has room, so a stream (a download) is paced by the client's reading.
"""

from collections import deque

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from . import errors
from .dialects import dialect_for, fallback_error
from .errors import ChatError
from .metrics import UNREAD

_PENDING = object()
WRITE_CHUNK = 64 * 1024
HARD_LIMIT_FACTOR = 4


class Flusher:
    """Writes every session with pending output once, at the end of the reactor turn."""

    def __init__(self, clock):
        self._clock = clock
        self._sessions: list = []
        self._call = None

    def schedule(self, session) -> None:
        self._sessions.append(session)
        if self._call is None:
            self._call = self._clock.callLater(0, self._run)

    def _run(self) -> None:
        self._call = None
        sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.flush()


class TokenBucket:
    def __init__(self, clock, rate: float, burst: int):
        self._clock, self._rate, self._burst = clock, rate, burst
        self._tokens = float(burst)
        self._stamp = clock.seconds()

    def take(self) -> float:
        """Take a token: 0 if one was there, else the seconds until one will be."""
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self._rate


@implementer(IPushProducer)
class Session:
    log = Logger()

    def __init__(self, core, transport, flusher: Flusher, limits, clock, kind: str, peer: str, metrics=UNREAD):
        self.core = core
        self.metrics = metrics
        self.transport = transport
        self.limits = limits
        self.kind, self.peer = kind, peer
        self.user = self.key_hash = None
        self.dialect = None
        self.open = True
        self._clock = clock
        self._flusher = flusher
        self._bucket = TokenBucket(clock, limits.rate_per_second, limits.rate_burst)
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._scheduled = False
        self._paused = False
        self._dropped = False
        self._slow_timer = None
        self._held: list[bytes] | None = None  # live output kept aside during an offline replay
        self._replay_mark = 0  # the last offline message queued
        self._written_mark = 0  # every message up to this id was handed to the transport
        self._flushed_mark = 0  # ... and up to this one the transport said it sent
        self._writable_waiters: list[Deferred] = []
        self._inbox: deque[bytes] = deque()
        self._busy = False  # a barrier command is running
        self._reading = True
        self._wakeup = None  # the rate limiter's pending resume
        self._replies: deque[list] = deque()
        self._bad_frames = 0
        self._timers: set = set()  # pending `expires` calls of requests
        self._lost = False  # the transport is gone
        self._left = False  # ... and the core has been told
        self._token = ""  # a session key given at a WebSocket handshake: logged in once the dialect is known

    # -- login by a key given before the first frame (a WebSocket handshake)

    def start(self, token: str = "", dialect=None) -> None:
        """Log in with `token` as soon as the dialect is known: now, if `dialect` (an instance) is given."""
        self._token = token
        if dialect is not None:
            self._set_dialect(dialect)
            self._token_login()

    def _set_dialect(self, dialect) -> None:
        self.dialect = dialect
        for greeting in self.dialect.greeting():
            self.send(greeting)

    def _token_login(self) -> None:
        if self._token:
            token, self._token = self._token, ""
            self._run(self.dialect.token_login(token))

    # -- input

    def frame_received(self, raw: bytes) -> None:
        """One frame from the transport, in arrival order."""
        if not self.open:
            return
        self._inbox.append(raw)
        self._pump()

    def frame_refused(self, error: ChatError) -> None:
        """A frame the transport could not take (e.g. a binary WebSocket message)."""
        self._refuse(error)

    def frame_too_long(self) -> None:
        self._refuse(ChatError(errors.LINE_TOO_LONG, f"lines are at most {self.limits.max_line_bytes} bytes"))

    def _pump(self) -> None:
        while self._inbox and not self._busy and (self.open or self._lost) and self._wakeup is None:
            wait = 0 if self._lost else self._bucket.take()  # a gone client floods nobody
            if wait:
                self._wakeup = self._clock.callLater(wait, self._resume_pump)
                break
            self._handle(self._inbox.popleft())
        if self._inbox:
            self._pause_reading()  # frames are waiting: read no more until they are done
        elif self.open and not self._reading:
            self._reading = True
            self.transport.resume_reading()
        elif self._lost and not self._busy and not self._left:
            self._left = True
            self.core.disconnect(self)  # after every frame it sent was carried out

    def _pause_reading(self) -> None:
        if self._reading and self.open:
            self._reading = False
            self.transport.pause_reading()

    def _resume_pump(self) -> None:
        self._wakeup = None
        self._pump()

    def _handle(self, raw: bytes) -> None:
        try:
            if self.dialect is None:
                dialect = dialect_for(raw)
                if dialect is None:
                    return
                self._set_dialect(dialect)
                if self._token:  # log in first; this frame follows
                    self._inbox.appendleft(raw)
                    self._token_login()
                    return
            self.metrics.frames_in(self.dialect)
            request = self.dialect.decode(raw)
        except ChatError as e:
            self._refuse(e)
            return
        self._bad_frames = 0
        self._run(request)

    def _run(self, request) -> None:
        if request.expires is not None:
            self._expire_later(request.expires)
        if request.follow is not None:
            request.close = False  # a stream closes nothing
        box = [_PENDING]
        self._replies.append(box)
        if request.command is None:
            self._answer(request.reply(None), box, request.close)
            if request.follow is not None:
                self._follow(request.follow)
            return
        d = self.core.execute(self, request.command)
        self.metrics.track(self, request.command, d)
        d.addCallback(request.reply)
        d.addErrback(self._failed, request)  # a refusal, or a reply that could not be rendered
        d.addCallback(self._answer, box, request.close)
        if request.follow is not None:
            d.addCallback(lambda _: self._follow(request.follow))
        if not request.command.pipelined:
            self._busy = True
            d.addBoth(self._unblock)

    def _expire_later(self, expires) -> None:
        seconds = self.limits.handshake_timeout

        def expire():
            self._timers.discard(call)
            if self.open:
                for frame in expires(seconds):
                    self.send(frame)

        call = self._clock.callLater(seconds, expire)
        self._timers.add(call)

    def _follow(self, follow) -> None:
        """The next request of a stream, once the output has room."""

        def next_step(_):
            if not self.open:
                return
            try:
                request = follow()
            except ChatError as e:
                self.send(self.dialect.error(e))
                return
            if request is not None:
                self._run(request)

        self.writable().addCallback(next_step).addErrback(lambda f: self.log.failure("stream failed", f))

    def _failed(self, failure: Failure, request) -> list[bytes]:
        if failure.check(ChatError):
            self.metrics.errors[failure.value.code] += 1
            return request.fail(failure.value)
        self.log.failure("request failed", failure)
        return request.fail(ChatError(errors.SERVER_ERROR))

    def _answer(self, frames: list[bytes], box: list, close: bool = False) -> None:
        box[0] = frames
        while self._replies and self._replies[0][0] is not _PENDING:
            for frame in self._replies.popleft()[0]:
                self.send(frame)
        if close:
            self.close()

    def _unblock(self, _) -> None:
        self._busy = False
        self._pump()

    def _refuse(self, error: ChatError) -> None:
        """A bad frame: answer it; close after too many in a row."""
        self._bad_frames += 1
        self.metrics.errors[error.code] += 1
        self.send(self.dialect.error(error) if self.dialect else fallback_error(error))
        if self._bad_frames >= self.limits.max_bad_frames:
            self.close(ChatError(errors.TOO_MANY_ERRORS, f"{self._bad_frames} bad frames in a row"))

    # -- output

    def send(self, frame: bytes) -> None:
        """Queue one frame; it leaves at the end of this reactor turn."""
        if not self.open:
            return
        self._out.append(frame)
        self._out_bytes += len(frame)
        if self._paused:
            self._check_backlog()
        elif self._out_bytes >= WRITE_CHUNK:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            self._flusher.schedule(self)

    def _check_backlog(self) -> None:
        limit = self.limits.outbound_buffer_bytes
        if self._out_bytes > HARD_LIMIT_FACTOR * limit:
            self._drop_slow()
        elif self._out_bytes > limit and self._slow_timer is None:
            self._slow_timer = self._clock.callLater(self.limits.slow_consumer_grace, self._slow_deadline)

    def _slow_deadline(self) -> None:
        self._slow_timer = None
        if self.open and self._out_bytes > self.limits.outbound_buffer_bytes:
            self._drop_slow()

    def deliver(self, event) -> None:
        """An event from the core, rendered in this session's dialect."""
        wants = getattr(self.dialect, "wants", None)
        if wants is not None and not wants(event):
            return  # e.g. an events connection following another conversation
        frame = event.encoded(self.dialect)
        if frame is None:
            return
        if getattr(event, "offline", False):
            self._replay_mark = max(self._replay_mark, getattr(getattr(event, "message", None), "id", 0))
            self.send(frame)
        elif self._held is not None:
            self._held.append(frame)
            self._out_bytes += len(frame)
            self._check_backlog()
        else:
            self.send(frame)

    def flush(self) -> None:
        self._scheduled = False
        if self._paused or not self._out or not self.open:
            return
        out, self._out = self._out, []
        self._out_bytes = sum(map(len, self._held)) if self._held else 0
        self.metrics.frames_out(self.dialect, len(out))
        self.transport.write_frames(out)
        self._written_mark = self._replay_mark if self._held is not None else self.core.fanout_upto
        if not self._paused:
            self._wake_writers()

    def hold(self) -> None:
        self._held = []

    def release(self) -> None:
        held, self._held = self._held or [], None
        for frame in held:
            self._out_bytes -= len(frame)
            self.send(frame)

    @property
    def queued_bytes(self) -> int:
        """Output queued here, not yet handed to the transport."""
        return self._out_bytes

    def writable(self) -> Deferred:
        """Fires when this session's output has room again."""
        if not self._paused and self._out_bytes < self.limits.outbound_buffer_bytes // 2:
            return succeed(None)
        d = Deferred()
        self._writable_waiters.append(d)
        return d

    def _wake_writers(self) -> None:
        waiters, self._writable_waiters = self._writable_waiters, []
        for d in waiters:
            d.callback(None)

    def delivered_upto(self, fanout: int) -> int:
        """The highest message id this client surely received (see core.chat).

        What was written while the transport kept up counts; what was still
        queued here, or written after the transport last said it was full, does not.
        """
        if self._paused or self._dropped:
            return self._flushed_mark
        if self._out or self._held is not None:
            return self._written_mark
        return fanout

    def _drop_slow(self) -> None:
        error = ChatError(errors.SLOW_CONSUMER, f"more than {self.limits.outbound_buffer_bytes} bytes unread")
        self.log.warn(
            "dropping slow consumer {user} ({transport} {peer}): {n} bytes unread",
            user=self.user,
            transport=self.kind,
            peer=self.peer,
            n=self._out_bytes,
            code=error.code,
        )
        self.metrics.slow_consumers += 1
        self._dropped = True
        self._out, self._held, self._out_bytes = [], None, 0
        self.transport.write_frames([self.dialect.farewell(error) if self.dialect else fallback_error(error)])
        self._shut()
        self.transport.abort()

    # IPushProducer: the transport's buffer is full / has drained
    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._cancel_slow_timer()
        self._flushed_mark = self._written_mark  # the transport's buffer has drained
        self.flush()
        if not self._paused:
            self._wake_writers()

    def stopProducing(self) -> None:
        """The connection is going away; connection_lost follows."""

    # -- lifetime

    def close(self, error: ChatError | None = None) -> None:
        """Say goodbye (with `error` as the reason, if any), send what is queued, and close."""
        if not self.open:
            return
        if error is not None:
            self.log.info(
                "closing {transport} {peer}: {code} {reason}",
                transport=self.kind,
                peer=self.peer,
                user=self.user,
                code=error.code,
                reason=error.message,
            )
            self.metrics.errors[error.code] += 1
            self.send(self.dialect.farewell(error) if self.dialect else fallback_error(error))
        self.flush()
        self._shut()
        self.transport.close()

    def notify_close(self, event) -> None:
        """Send a last notice (e.g. the server shutting down), ahead of anything held, and close with its code."""
        frame = event.encoded(self.dialect) if self.dialect is not None else None
        if frame is not None:
            self.send(frame)
        self.close(ChatError(event.code, event.text))

    def _cancel_slow_timer(self) -> None:
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None

    def _shut(self) -> None:
        self.open = False
        self._cancel_slow_timer()
        if self._wakeup is not None:
            self._wakeup.cancel()
            self._wakeup = None
        self._inbox.clear()
        timers, self._timers = self._timers, set()
        for call in timers:
            if call.active():
                call.cancel()

    def connection_lost(self) -> None:
        """The transport is gone. Frames it had delivered are still carried out, in order (nothing
        the client sent is lost; the answers go nowhere); then the core hears that the client left."""
        inbox = list(self._inbox)
        self._shut()
        self._lost = True
        self._inbox.extend(inbox)
        self._wake_writers()
        self._pump()
