"""What every connection transport (line, WebSocket) does around its Session, in one place.

`Connections` is a service's registry of open sessions. For each new connection it builds the
Session, registers it as the streaming producer of the byte transport underneath, names the peer,
logs the opening and the closing, and enforces two deadlines with ONE periodic check for all
connections (no timer per connection):

    login_timeout  a connection not logged in this long after it opened is closed (7009)
    idle_timeout   once it has logged in, a connection from which nothing arrived this long is closed
                   (7009); "anything" is a frame, or for a WebSocket also the pong to the server's ping
    large_frame_timeout   a connection holding a large-frame slot (below) this long is closed (7050)

Large frames. A frame over the transport's ordinary bound (limits.max_line_bytes on a line,
http.max_message_bytes on a WebSocket) is taken only from a logged-in connection whose dialect
carries files, up to limits.max_transfer_frame_bytes, and only while the connection holds one of
the server's `limits.max_large_frames` slots (LargeFrames). A connection takes a slot when a frame
it is reading passes the ordinary bound, and gives it back once that frame has been handed to its
session and has left the session's inbox (the inbox resumes reading). A connection that finds no
slot free stops being read until one is (first come, first served). So large frames take at most
max_large_frames x max_transfer_frame_bytes of memory in all (plus their decoded copies while
they are handled), and a connection waiting for a slot holds no more than an ordinary frame and
one read. The session then refuses (7005) a large frame that is not a file-transfer frame.
"""

from collections import deque
from collections.abc import Callable

from twisted.internet import tcp
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from .. import errors
from ..errors import ChatError
from ..metrics import UNREAD
from ..session import Flusher, Session

MAX_TICK = 1.0  # seconds between deadline checks, at most


def peer_name(transport) -> str:
    peer = transport.getPeer()
    return f"{getattr(peer, 'host', peer)}:{getattr(peer, 'port', '')}"


class LargeFrames:
    """The server's slots for frames over the ordinary bound: at most `limits.max_large_frames` held at once."""

    def __init__(self, clock, limits):
        self.clock, self.limits = clock, limits
        self.holders: dict[FrameGate, float] = {}  # gate -> since when it holds its slot
        self._queue: deque[FrameGate] = deque()  # gates waiting for a slot, in order

    def acquire(self, gate: "FrameGate") -> bool:
        """Give `gate` a slot now (True), or queue it (False): `gate.granted()` is called when one frees."""
        if gate in self.holders:
            return True
        if len(self.holders) < self.limits.max_large_frames and not self._queue:
            self.holders[gate] = self.clock.seconds()
            return True
        if gate not in self._queue:
            self._queue.append(gate)
        return False

    def release(self, gate: "FrameGate") -> None:
        """`gate` gives its slot back, or stops waiting for one."""
        if self.holders.pop(gate, None) is None:
            if gate in self._queue:
                self._queue.remove(gate)
            return
        self._grant()

    def use_limits(self, limits) -> None:
        self.limits = limits
        self._grant()  # (there may be more slots now)

    def _grant(self) -> None:
        while self._queue and len(self.holders) < self.limits.max_large_frames:
            waiting = self._queue.popleft()
            self.holders[waiting] = self.clock.seconds()
            self.clock.callLater(0, waiting.granted)


class FrameGate:
    """The reading side of one connection: paused while its session's inbox is busy (`pause`/`resume`, from
    the session's ISessionTransport calls) or while it waits for a large-frame slot; and the slot it holds
    while a large frame is read (`reading_large`) or waits in the inbox (`handed_over`)."""

    __slots__ = ("_inbox_paused", "_on_granted", "_queued", "_reading", "_slots", "_transport", "holding", "session",
                 "waiting")  # fmt: skip

    def __init__(self, transport, slots: LargeFrames, on_granted: Callable[[], None]):
        self._transport = transport  # the byte transport: pauseProducing/resumeProducing
        self._slots = slots
        self._on_granted = on_granted  # the slot waited for is there: go on with what was held back
        self.session: Session | None = None
        self.holding = False
        self.waiting = False
        self._inbox_paused = False
        self._reading = False  # a large frame is being read
        self._queued = False  # a large frame was handed to the session and waits in its inbox

    def pause(self) -> None:
        self._inbox_paused = True
        self._transport.pauseProducing()

    def resume(self) -> None:
        self._inbox_paused = False
        if self._queued:
            self._queued = False  # the inbox has let every frame in: the large one has started
            self._release()
        if not self.waiting:
            self._transport.resumeProducing()

    def reading_large(self) -> bool:
        """A frame being read has passed the ordinary bound: True if this connection holds a slot (now),
        False if it must wait for one (reading is paused until `on_granted`)."""
        if self.holding:
            self._reading = True
            return True
        if not self.waiting:
            if self._slots.acquire(self):
                self.holding = self._reading = True
                return True
            self.waiting = True
            self._transport.pauseProducing()
        return False

    def granted(self) -> None:
        """LargeFrames gave the slot waited for."""
        if not self.waiting:
            self._slots.release(self)  # closed meanwhile
            return
        self.waiting = False
        self.holding = self._reading = True
        if not self._inbox_paused:
            self._transport.resumeProducing()
        self._on_granted()

    def handed_over(self, queued: bool) -> None:
        """The large frame went to the session; `queued`: it waits in the inbox (which has paused reading)."""
        self._reading = False
        self._queued = self._queued or queued
        self._release()

    def dropped(self) -> None:
        """The large frame being read was refused (too long for this connection)."""
        self._reading = False
        self._release()

    def _release(self) -> None:
        if self.holding and not self._reading and not self._queued:
            self.holding = False
            self._slots.release(self)

    def close(self) -> None:
        """The connection is gone: give back its slot, or its place in the queue."""
        self.waiting = self.holding = self._reading = self._queued = False
        self._slots.release(self)


class Connections:
    log = Logger(namespace="chatdaemon.connections")

    def __init__(self, core, limits, clock, metrics=UNREAD, governor=None):
        self.core, self.limits, self.clock, self.metrics, self.governor = core, limits, clock, metrics, governor
        self.flusher = Flusher(clock)
        self.large_frames = LargeFrames(clock, limits)
        self.sessions: set[Session] = set()
        self._opened: dict[Session, float] = {}  # session -> when it opened, until it has logged in
        self._heard: dict[Session, float] = {}  # session -> when the client was last heard from
        self._unwatched: set[Session] = set()  # sessions the idle rule does not apply to
        self._check = LoopingCall(self._expire)
        self._check.clock = clock
        self._tick = 0.0

    def open(self, transport, surface, kind: str) -> Session:
        """A new connection on `transport` (the byte transport) whose Session writes through `surface`."""
        secure = ISSLTransport.providedBy(transport)
        kind = {"tcp": "tls", "ws": "wss"}[kind] if secure else kind
        if getattr(transport, "producer", None) is not None:
            transport.unregisterProducer()  # e.g. the HTTPChannel whose transport a WebSocket took over
        return self.open_on(transport, surface, kind, peer_name(transport))

    def open_on(self, consumer, surface, kind: str, peer: str, idle: bool = True) -> Session:
        """A new Session writing through `surface`, the streaming producer of `consumer` (anything with
        registerProducer). Without `idle`, only the login deadline applies (a transport with its own
        heartbeat, such as Engine.IO's, closes dead connections itself)."""
        session = Session(self.core, surface, self.flusher, self.limits, self.clock, kind, peer, self.metrics,
                          self.governor)  # fmt: skip
        consumer.registerProducer(session, True)
        self.sessions.add(session)
        self._opened[session] = self._heard[session] = self.clock.seconds()
        if not idle:
            self._unwatched.add(session)
        self._watch()
        self.log.info("connection opened: {transport} {peer}", event="connection_opened", transport=kind, peer=peer)
        return session

    def heard(self, session: Session) -> None:
        """Something arrived from the client."""
        if session in self._heard:
            self._heard[session] = self.clock.seconds()

    def lost(self, session: Session, detail: str = "") -> None:
        self.sessions.discard(session)
        self._opened.pop(session, None)
        self._heard.pop(session, None)
        self._unwatched.discard(session)
        self.log.info(
            "connection closed: {transport} {peer} ({dialect}) {user}{detail}",
            event="connection_closed", transport=session.kind, peer=session.peer,
            dialect=session.dialect.name if session.dialect else "none", user=session.user or "-", detail=detail,
        )  # fmt: skip
        session.connection_lost()
        if not self.sessions and self._check.running:
            self._check.stop()

    def gate(self, transport, on_granted: Callable[[], None]) -> "FrameGate":
        """The reading gate of a new connection on `transport` (the byte transport)."""
        return FrameGate(transport, self.large_frames, on_granted)

    def use_limits(self, limits) -> None:
        """New limits (a reload): for connections opened from now on, for the deadlines of all, and for the
        large-frame slots."""
        self.limits = limits
        self.large_frames.use_limits(limits)
        if self._check.running:
            self._check.stop()
        self._watch()

    def _watch(self) -> None:
        if not self._check.running and self.sessions:
            self._tick = min(MAX_TICK, self.limits.login_timeout / 4, self.limits.idle_timeout / 4)
            self._check.start(self._tick, now=False)

    def _expire(self) -> None:
        now, limits = self.clock.seconds(), self.limits
        expired = []
        for session, opened in list(self._opened.items()):
            if session.user is not None:
                del self._opened[session]  # logged in: from now on, the idle rule
                self._heard[session] = now
            elif now - opened >= limits.login_timeout:
                expired.append((session, f"not logged in within {limits.login_timeout:g} seconds"))
        idle = f"nothing heard for {limits.idle_timeout:g} seconds"
        for session, heard in self._heard.items():
            if now - heard >= limits.idle_timeout and session not in self._opened and session not in self._unwatched:
                expired.append((session, idle))
        for session, reason in expired:
            if session.open:
                session.close(ChatError(errors.IDLE_TIMEOUT, reason))
        for gate, since in list(self.large_frames.holders.items()):
            if now - since >= limits.large_frame_timeout and gate.session is not None and gate.session.open:
                reason = f"a frame over the ordinary size took over {limits.large_frame_timeout:g} seconds"
                gate.session.close(ChatError(errors.FRAME_TIMEOUT, reason))

    def stop(self) -> None:
        if self._check.running:
            self._check.stop()


def writes_directly(transport) -> bool:
    """Whether `send_now` may write to `transport`: plain TCP (TLS and wrappers keep their own write path)."""
    return isinstance(transport, tcp.Server)


def send_now(transport, data: bytes) -> None:
    """Write `data` to a plain TCP `transport` at once when nothing is waiting in its buffer.

    Twisted's `write` only buffers: the descriptor is registered for writability, written on the next
    reactor turn, then unregistered, three system calls for what one `send` does on a connection whose
    kernel buffer has room (nearly always, for a chat client). What the kernel does not take goes
    through `transport.write`, so Twisted's buffering, producers and errors apply as before."""
    if transport._tempDataLen or len(transport.dataBuffer) > transport.offset or not transport.connected:
        transport.write(data)
        return
    try:
        sent = transport.socket.send(data)
    except OSError:  # full (EAGAIN), or gone: Twisted's write path waits for room, or closes the connection
        transport.write(data)
        return
    if sent != len(data):  # partly sent: the rest waits in Twisted's buffer
        transport.write(data[sent:])
