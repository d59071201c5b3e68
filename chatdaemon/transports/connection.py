"""What every connection transport (line, WebSocket) does around its Session, in one place.

`Connections` is a service's registry of open sessions. For each new connection it builds the
Session, registers it as the streaming producer of the byte transport underneath, names the peer,
logs the opening and the closing, and enforces two deadlines with ONE periodic check for all
connections (no timer per connection):

    login_timeout  a connection not logged in this long after it opened is closed (7009)
    idle_timeout   once it has logged in, a connection from which nothing arrived this long is closed
                   (7009); "anything" is a frame, or for a WebSocket also the pong to the server's ping
"""

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


class Connections:
    log = Logger(namespace="chatdaemon.connections")

    def __init__(self, core, limits, clock, metrics=UNREAD, governor=None):
        self.core, self.limits, self.clock, self.metrics, self.governor = core, limits, clock, metrics, governor
        self.flusher = Flusher(clock)
        self.sessions: set[Session] = set()
        # session -> (when it opened, or None once it has logged in; when the client was last heard from)
        self._seen: dict[Session, tuple[float | None, float]] = {}
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
        now = self.clock.seconds()
        self._seen[session] = (now, now)
        if not idle:
            self._unwatched.add(session)
        self._watch()
        self.log.info("connection opened: {transport} {peer}", event="connection_opened", transport=kind, peer=peer)
        return session

    def heard(self, session: Session) -> None:
        """Something arrived from the client."""
        seen = self._seen.get(session)
        if seen is not None:
            self._seen[session] = (seen[0], self.clock.seconds())

    def lost(self, session: Session, detail: str = "") -> None:
        self.sessions.discard(session)
        self._seen.pop(session, None)
        self._unwatched.discard(session)
        self.log.info(
            "connection closed: {transport} {peer} ({dialect}) {user}{detail}",
            event="connection_closed", transport=session.kind, peer=session.peer,
            dialect=session.dialect.name if session.dialect else "none", user=session.user or "-", detail=detail,
        )  # fmt: skip
        session.connection_lost()
        if not self.sessions and self._check.running:
            self._check.stop()

    def use_limits(self, limits) -> None:
        """New limits (a reload): for connections opened from now on, and for the deadlines of all."""
        self.limits = limits
        if self._check.running:
            self._check.stop()
        self._watch()

    def _watch(self) -> None:
        if not self._check.running and self.sessions:
            self._tick = min(MAX_TICK, self.limits.login_timeout / 4, self.limits.idle_timeout / 4)
            self._check.start(self._tick, now=False)

    def _expire(self) -> None:
        now, limits = self.clock.seconds(), self.limits
        for session, (opened, heard) in list(self._seen.items()):
            if not session.open:
                continue
            if opened is not None and session.user is not None:
                self._seen[session] = opened, heard = None, now  # logged in: from now on, the idle rule
            if opened is not None and now - opened >= limits.login_timeout:
                reason = f"not logged in within {limits.login_timeout:g} seconds"
            elif opened is None and now - heard >= limits.idle_timeout and session not in self._unwatched:
                reason = f"nothing heard for {limits.idle_timeout:g} seconds"
            else:
                continue
            session.close(ChatError(errors.IDLE_TIMEOUT, reason))

    def stop(self) -> None:
        if self._check.running:
            self._check.stop()


def direct_writer(transport):
    """A write function for `transport` that sends at once when nothing is waiting in its buffer, or None
    if the transport is not plain TCP (TLS and wrappers keep their own write path).

    Twisted's `write` only buffers: the descriptor is registered for writability, written on the next
    reactor turn, then unregistered, three system calls for what one `send` does on a connection whose
    kernel buffer has room (nearly always, for a chat client). What the kernel does not take goes
    through `transport.write`, so Twisted's buffering, producers and errors apply as before."""
    if not isinstance(transport, tcp.Server):
        return None

    def write(data: bytes) -> None:
        if transport._tempDataLen or len(transport.dataBuffer) > transport.offset or not transport.connected:
            transport.write(data)
            return
        sent = transport.writeSomeData(data)
        if sent != len(data):  # partly sent (the rest waits in Twisted's buffer), or an error for its write path
            transport.write(data[sent:] if isinstance(sent, int) else data)

    return write
