"""The line transport: one frame per line over TCP or TLS (any stream endpoint).

Lines end in "\\n" ("\\r\\n" is accepted). A line longer than the limit is
skipped up to its end and answered with an error; the connection goes on.
A connection that has not logged in within `login_timeout` seconds of
connecting is closed, and so is a logged-in one silent for `idle_timeout`.
"""

from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin

from .. import errors
from ..errors import ChatError
from ..metrics import UNREAD
from ..session import Session


class LineProtocol(Protocol, TimeoutMixin):
    log = Logger()

    def __init__(self, factory: "LineFactory"):
        self.factory = factory
        self.limits = factory.limits
        self.session: Session | None = None
        self._buffer = b""
        self._skipping = False  # inside an over-long line
        self.callLater = factory.clock.callLater  # TimeoutMixin's clock

    def connectionMade(self) -> None:
        kind = "tls" if ISSLTransport.providedBy(self.transport) else "tcp"
        peer = self.transport.getPeer()
        peer = f"{getattr(peer, 'host', peer)}:{getattr(peer, 'port', '')}"
        self.session = Session(
            self.factory.core,
            self,
            self.factory.flusher,
            self.limits,
            self.factory.clock,
            kind,
            peer,
            self.factory.metrics,
        )
        self.transport.registerProducer(self.session, True)
        self.factory.sessions.add(self.session)
        self.setTimeout(self.limits.login_timeout)
        self.log.info("connection opened: {transport} {peer}", event="connection_opened", transport=kind, peer=peer)

    def dataReceived(self, data: bytes) -> None:
        if self.timeOut == self.limits.idle_timeout:
            self.resetTimeout()
        elif self.session.user:
            self.setTimeout(self.limits.idle_timeout)
        buffer, start, limit = self._buffer + data, 0, self.limits.max_line_bytes
        while self.session.open:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line, start = buffer[start:end], end + 1
            if self._skipping:
                self._skipping = False
            elif len(line) > limit:
                self.session.frame_too_long()
            else:
                self.session.frame_received(line[:-1] if line.endswith(b"\r") else line)
        rest = buffer[start:]
        if len(rest) > limit:
            if not self._skipping:
                self._skipping = True
                self.session.frame_too_long()
            rest = b""
        self._buffer = rest

    def timeoutConnection(self) -> None:
        if self.timeOut == self.limits.login_timeout:
            if self.session.user:  # logged in since the last line: from now on, the idle timeout
                self.setTimeout(self.limits.idle_timeout)
                return
            reason = f"not logged in within {self.timeOut:g} seconds"
        else:
            reason = f"no line for {self.timeOut:g} seconds"
        self.session.close(ChatError(errors.IDLE_TIMEOUT, reason))

    def connectionLost(self, reason) -> None:
        self.setTimeout(None)
        self.factory.sessions.discard(self.session)
        session = self.session
        self.log.info(
            "connection closed: {transport} {peer} ({dialect}) {user}",
            event="connection_closed",
            transport=session.kind,
            peer=session.peer,
            dialect=session.dialect.name if session.dialect else "none",
            user=session.user or "-",
        )
        self.session.connection_lost()

    # the surface a Session uses
    def write_frames(self, frames: list[bytes]) -> None:
        frames.append(b"")
        self.transport.write(b"\n".join(frames))

    def close(self) -> None:
        self.transport.loseConnection()

    def abort(self) -> None:
        self.transport.abortConnection()

    def pause_reading(self) -> None:
        self.transport.pauseProducing()

    def resume_reading(self) -> None:
        self.transport.resumeProducing()


class LineFactory(Factory):
    def __init__(self, core, limits, clock, flusher, metrics=UNREAD):
        self.core, self.limits, self.clock, self.flusher, self.metrics = core, limits, clock, flusher, metrics
        self.sessions: set[Session] = set()

    def buildProtocol(self, addr) -> LineProtocol:
        return LineProtocol(self)
