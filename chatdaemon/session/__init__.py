"""One connected client: its dialect, its user, its input (Inbox) and its output (Outbox).

A transport (line, WebSocket, ...) hands the session one frame at a time (`frame_received`) and
offers it the ISessionTransport surface; the session never touches sockets. The session is the
core's IClient: it runs the client's requests through the core, replies in request order, and
renders the core's events in its dialect. It is also the transport's streaming producer
(IPushProducer), which paces the Outbox.

Exchanges longer than one frame (see dialects.Request): a request's `expires` is called after
`limits.handshake_timeout` seconds (the timers die with the session); a request's `follow` is
handled once the reply is queued and the output has room, so a stream (a download) is paced by
the client's reading.

A dialect that is not `ready` (a handshake to finish first, like IRC's registration) gets no
events until a reply has made it ready: live events are held in the Outbox, and `writable()`
(which the offline replay awaits before it begins) waits too. Replies are never held.
"""

from collections import deque
from collections.abc import Callable
from time import perf_counter
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from .. import errors
from ..core.interfaces import IClient
from ..dialects import PERSONAL, dialect_for, fallback_error
from ..errors import ChatError
from ..metrics import UNREAD
from .inbox import IInboxOwner, Inbox
from .outbox import Flusher, IOutboxOwner, Outbox

__all__ = ["Flusher", "ISessionTransport", "Session"]

_PENDING = object()


class ISessionTransport(Interface):
    """What a session asks of its transport."""

    max_frame_bytes = Attribute(
        "The transport's ordinary bound on a frame, in bytes; a frame over it (taken only from a connection"
        " that `takes_large_frames`) must be a file-transfer frame"
    )

    def write_frames(frames):
        """Send these frames (bytes each), in order, now."""

    def close(restarting=False):
        """Close after what was written. `restarting`: the server is going down for a restart; a transport
        that can tell its client to come back by itself (Socket.IO) does so."""

    def abort():
        """Close at once, dropping what was not sent."""

    def pause_reading():
        """Stop reading from the client."""

    def resume_reading():
        """Read from the client again."""


@implementer(IClient, IPushProducer, IInboxOwner, IOutboxOwner)
class Session:
    log = Logger()
    operator = False
    # An idle connection is mostly its Session, Inbox and Outbox: slots, and queues, timer sets and the like
    # made only when first needed (docs/performance.md).
    __slots__ = ("_bad_frames", "_clock", "_replies", "_timers", "_token", "_unready", "core", "dialect", "inbox",
                 "key_hash", "kind", "limits", "metrics", "open", "outbox", "peer", "transport", "user")  # fmt: skip

    def __init__(self, core, transport, flusher: Flusher, limits, clock, kind: str, peer: str, metrics=UNREAD,
                 governor=None):  # fmt: skip
        self.core = core
        self.transport = transport
        self.limits = limits
        self.metrics = metrics
        self.kind, self.peer = kind, peer
        self.user: str | None = None
        self.key_hash: str | None = None
        self.dialect: Any = None
        self.open = True
        self._clock = clock
        self.outbox = Outbox(self, flusher, limits, clock)
        self.inbox = Inbox(self, clock, limits, governor)
        self._replies: deque[list] | None = None  # reply slots, in request order: [frames or _PENDING, answer]
        self._bad_frames = 0
        self._timers: set | None = None  # pending `expires` calls of requests
        self._token = ""  # a session key given at a WebSocket handshake: logged in once the dialect is known
        self._unready: list[Deferred] | None = None  # while the dialect is not ready: who waits for writable()

    # -- login by a key given before the first frame (a WebSocket handshake)

    def start(self, token: str = "", dialect=None) -> None:
        """Log in with `token` as soon as the dialect is known: now, if `dialect` (an instance) is given."""
        self._token = token
        if dialect is not None:
            self._set_dialect(dialect)
            self._token_login()

    def _set_dialect(self, dialect) -> None:
        self.dialect = dialect
        if not dialect.ready:
            self._unready = []
            self.outbox.hold()
        for greeting in dialect.greeting():
            self.send(greeting)

    def _now_ready(self) -> None:
        """The dialect has become ready: what was kept back follows what was just answered."""
        waiting, self._unready = self._unready or [], None
        self.outbox.release()
        for d in waiting:
            self.outbox.writable().chainDeferred(d)

    def _token_login(self) -> None:
        if self._token:
            token, self._token = self._token, ""
            self.inbox.begin(self.dialect.token_login(token))

    # -- input

    def frame_received(self, raw: bytes, answer: Callable[[list[bytes]], None] | None = None) -> None:
        """One frame from the transport, in arrival order. With `answer`, the frames replying to it go there
        (in their turn) instead of to the output: a Socket.IO acknowledgement."""
        if self.open:
            self.inbox.push(raw if answer is None else (raw, answer))

    def frame_refused(self, error: ChatError) -> None:
        """A frame the transport could not take (e.g. a binary WebSocket message)."""
        self._refuse(error)

    @property
    def takes_large_frames(self) -> bool:
        """Whether frames over the transport's ordinary bound may come (up to limits.max_transfer_frame_bytes):
        once logged in, in a dialect that carries files."""
        return self.user is not None and self.dialect is not None and self.dialect.carries_files

    def frame_too_long(self) -> None:
        """A frame over the transport's bound was skipped."""
        if self.takes_large_frames:
            text = f"file-transfer frames are at most {self.limits.max_transfer_frame_bytes} bytes"
        else:
            text = f"lines are at most {self.transport.max_frame_bytes} bytes"
        self._refuse(ChatError(errors.LINE_TOO_LONG, text))

    def decode_frame(self, item):
        """A Request for this frame (raw bytes, or (raw, answer)), or None if it was answered here (a bad
        frame) or decides nothing yet."""
        raw, answer = item if isinstance(item, tuple) else (item, None)
        try:
            if self.dialect is None:
                dialect = dialect_for(raw)
                if dialect is None:
                    return None
                self._set_dialect(dialect)
                if self._token:  # log in first; this frame follows
                    self.inbox.insert(item)
                    request = dialect.token_login(self._token)
                    self._token = ""
                    return request
            self.metrics.frames_in(self.dialect)
            request = self.dialect.decode(raw)
            if not request.transfer and len(raw) > self.transport.max_frame_bytes:
                raise ChatError(
                    errors.LINE_TOO_LONG,
                    f"only file-transfer frames may be over {self.transport.max_frame_bytes} bytes",
                )
        except ChatError as e:
            if answer is not None:
                answer([self.dialect.error(e) if self.dialect else fallback_error(e)])
                return None
            self._refuse(e)
            return None
        request.answer = answer
        self._bad_frames = 0
        return request

    def start_request(self, request) -> Deferred | None:
        """Run a request; a Deferred that fires when it is done, or None if it is done already."""
        if request.expires is not None:
            self._expire_later(request.expires)
        if request.follow is not None:
            request.close = False  # a stream closes nothing
        box = [_PENDING, request.answer]
        if self._replies is None:
            self._replies = deque()
        self._replies.append(box)
        if request.command is None:
            self._answer(request.reply(None), box, request)
            if request.follow is not None:
                self._follow(request.follow)
            return None
        d = self._execute(request.command, request.each)
        self.metrics.track(self, request.command, d)
        return d.addBoth(self._finish, request, box, perf_counter())

    def _finish(self, result, request, box: list, started: float) -> None:
        """A request's outcome: its reply (or, for a refusal or a reply that could not be rendered, the
        dialect's error) takes its place in the reply order; a stream goes on."""
        if isinstance(result, Failure):
            frames = self._failed(result, request)
        else:
            self.metrics.done(request.command, started)
            try:
                frames = request.reply(result)
            except Exception:
                frames = self._failed(Failure(), request)
        self._answer(frames, box, request)
        if request.follow is not None:
            self._follow(request.follow)

    def _execute(self, command, each: bool = False) -> Deferred:
        if not isinstance(command, tuple):
            return self.core.execute(self, command)

        async def outcome(one):
            try:
                return await self.core.execute(self, one)
            except ChatError as e:
                if not each:
                    raise
                self.metrics.errors[e.code] += 1
                return e

        async def in_turn():
            return tuple([await outcome(one) for one in command])

        return Deferred.fromCoroutine(in_turn())

    def _expire_later(self, expires) -> None:
        seconds = self.limits.handshake_timeout

        def expire():
            if self._timers is not None:
                self._timers.discard(call)
            if self.open:
                for frame in expires(seconds):
                    self.send(frame)

        call = self._clock.callLater(seconds, expire)
        if self._timers is None:
            self._timers = set()
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
                self.start_request(request)

        self.outbox.writable().addCallback(next_step).addErrback(lambda f: self.log.failure("stream failed", f))

    def _failed(self, failure: Failure, request) -> list[bytes]:
        if isinstance(failure.value, ChatError):
            self.metrics.errors[failure.value.code] += 1
            return request.fail(failure.value)
        self.log.failure("request failed", failure)
        return request.fail(ChatError(errors.SERVER_ERROR))

    def _answer(self, frames: list[bytes], box: list, request=None) -> None:
        box[0] = frames
        replies = self._replies
        while replies and replies[0][0] is not _PENDING:
            frames, answer = replies.popleft()
            if answer is not None:
                if self.open:
                    answer(frames)
                continue
            for frame in frames:
                self.send(frame)
        if replies is not None and not replies:
            self._replies = None
        if self._unready is not None and not self._replies and self.dialect.ready:
            self._now_ready()
        if request is not None and request.close:
            self.close()

    def _refuse(self, error: ChatError) -> None:
        """A bad frame: answer it; close after too many in a row."""
        self._bad_frames += 1
        self.metrics.errors[error.code] += 1
        self.send(self.dialect.error(error) if self.dialect else fallback_error(error))
        if self._bad_frames >= self.limits.max_bad_frames:
            self.close(ChatError(errors.TOO_MANY_ERRORS, f"{self._bad_frames} bad frames in a row"))

    # -- output (IClient)

    def send(self, frame: bytes) -> None:
        """Queue one frame; it leaves at the end of this reactor turn."""
        if self.open:
            self.outbox.send(frame)

    # IOutboxOwner
    def write_out(self, frames: list[bytes]) -> None:
        self.metrics.frames_out(self.dialect, len(frames))
        self.transport.write_frames(frames)

    @property
    def fanout_upto(self) -> int:
        return self.core.fanout_upto

    def deliver(self, event, memo: dict) -> None:
        """An event from the core, rendered in this session's dialect (once per dialect per publish)."""
        dialect = self.dialect
        if dialect is None or not self.open:
            return
        wants = dialect.wants
        if wants is not None and not wants(event):
            return
        key = dialect.encoding or dialect.name
        frame = memo.get(key, _PENDING)
        if frame is _PENDING:
            frame = memo[key] = dialect.encode_event(event)
        if frame is PERSONAL:
            frame = dialect.encode_personal(event)
        if frame is None:
            return
        if getattr(event, "offline", False):
            message = getattr(event, "message", None)
            self.outbox.send_replayed(frame, message.id if message is not None else 0)
        else:
            self.outbox.send_live(frame)

    def hold(self) -> None:
        self.outbox.hold()

    def release(self) -> None:
        self.outbox.release()

    def writable(self) -> Deferred:
        if self._unready is not None:
            d: Deferred = Deferred()
            self._unready.append(d)
            return d
        return self.outbox.writable()

    def delivered_upto(self, fanout: int) -> int:
        return self.outbox.delivered_upto(fanout)

    @property
    def queued_bytes(self) -> int:
        return self.outbox.queued_bytes

    def notify_close(self, event) -> None:
        """Send a last notice (e.g. the server shutting down), ahead of anything held, and close with its code
        (the dialect's farewell follows, unless it would say the same thing again). If the client is not keeping
        up (the transport is paused), what is queued is given up (its messages are replayed at the next login)
        and the notice goes to the transport at once: it would never leave the queue."""
        error = ChatError(event.code, event.text)
        frame = self.dialect.encode_event(event) if self.dialect is not None else None
        if frame is PERSONAL:
            frame = self.dialect.encode_personal(event)
        farewell = self._farewell(error)
        if self.open and self.outbox.paused:
            self.outbox.discard()
            self.log.info("closing {transport} {peer}: {code} {reason} (output behind: queue given up)",
                          transport=self.kind, peer=self.peer, code=error.code, reason=error.message)  # fmt: skip
            self.write_out([frame, farewell] if frame is not None and frame != farewell else [farewell])
            self._shut()
            self.transport.close(restarting=error.code == errors.SHUTTING_DOWN)
            return
        if frame is None or frame == farewell:
            self.close(error)
            return
        self.send(frame)
        self.close(error)

    def too_slow(self, unread: int) -> None:
        error = ChatError(errors.SLOW_CONSUMER, f"more than {self.limits.outbound_buffer_bytes} bytes unread")
        self.log.warn(
            "dropping slow consumer {user} ({transport} {peer}): {n} bytes unread",
            user=self.user, transport=self.kind, peer=self.peer, n=unread, code=error.code,
        )  # fmt: skip
        self.metrics.slow_consumers += 1
        self.transport.write_frames([self._farewell(error)])
        self._shut()
        self.transport.abort()

    def _farewell(self, error: ChatError) -> bytes:
        return self.dialect.farewell(error) if self.dialect else fallback_error(error)

    # IPushProducer: the transport's buffer is full / has drained
    def pauseProducing(self) -> None:
        self.outbox.pause()

    def resumeProducing(self) -> None:
        self.outbox.resume()

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
                transport=self.kind, peer=self.peer, user=self.user, code=error.code, reason=error.message,
            )  # fmt: skip
            self.metrics.errors[error.code] += 1
            self.send(self._farewell(error))
        self.outbox.flush()
        self._shut()
        self.transport.close(restarting=error is not None and error.code == errors.SHUTTING_DOWN)

    def _shut(self) -> None:
        self.open = False
        self.outbox.close()
        self.inbox.close()
        self._cancel_timers()

    def _cancel_timers(self) -> None:
        timers, self._timers = self._timers or (), None
        for call in timers:
            if call.active():
                call.cancel()

    def connection_lost(self) -> None:
        """The transport is gone. Frames it had delivered are still carried out, in order (nothing the
        client sent is lost; the answers go nowhere); then the core hears that the client left."""
        self.open = False
        self.outbox.close()
        self.outbox.release_waiters()
        waiting, self._unready = self._unready or [], None
        for d in waiting:
            d.callback(None)
        self._cancel_timers()
        self.inbox.lost()

    # IInboxOwner (with decode_frame and start_request above)
    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def inbox_drained(self) -> None:
        self.core.disconnect(self)
