"""The line transport: one frame per line over TCP or TLS (any stream endpoint).

Lines end in "\\n" ("\\r\\n" is accepted). A line longer than the limit is skipped up to its end and
answered with an error; the connection goes on. Output is written at once when the socket has room
(`direct_writer`), with Nagle off (TCP_NODELAY): a chat frame should not wait for an ACK. Each peer
address may hold at most `max_connections_per_ip` connections; one more is told so and closed.
Sessions, deadlines and logging: connection.py.
"""

from collections.abc import Callable

from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from ..listeners import AddressCounter, Refused
from ..session import ISessionTransport, Session
from . import IStreamTransport
from .connection import Connections, direct_writer


@implementer(ISessionTransport)
class LineProtocol(Protocol):
    transport: IStreamTransport

    def __init__(self, factory: "LineFactory", host: str | None):
        self.factory = factory
        self.connections = factory.connections
        self.host = host
        self.session: Session | None = None
        self._buffer = b""
        self._skipping = False  # inside an over-long line
        self._send: Callable[[bytes], None] | None = None

    def connectionMade(self) -> None:
        self.session = self.connections.open(self.transport, self, "tcp")
        self._send = direct_writer(self.transport)
        if self._send is not None:
            self.transport.setTcpNoDelay(True)
        else:
            self._send = self.transport.write

    def dataReceived(self, data: bytes) -> None:
        session = self.session
        assert session is not None  # connectionMade came first
        self.connections.heard(session)
        buffer, start, limit = self._buffer + data, 0, session.limits.max_line_bytes
        while session.open:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line, start = buffer[start:end], end + 1
            if self._skipping:
                self._skipping = False
            elif len(line) > limit:
                session.frame_too_long()
            else:
                session.frame_received(line[:-1] if line.endswith(b"\r") else line)
        rest = buffer[start:]
        if len(rest) > limit:
            if not self._skipping:
                self._skipping = True
                session.frame_too_long()
            rest = b""
        self._buffer = rest

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.factory.release(self.host)
        if self.session is not None:
            self.connections.lost(self.session)

    # ISessionTransport
    def write_frames(self, frames: list[bytes]) -> None:
        frames.append(b"")
        assert self._send is not None
        self._send(b"\n".join(frames))

    def close(self, restarting: bool = False) -> None:
        self.transport.loseConnection()

    def abort(self) -> None:
        self.transport.abortConnection()

    def pause_reading(self) -> None:
        self.transport.pauseProducing()

    def resume_reading(self) -> None:
        self.transport.resumeProducing()


class LineFactory(Factory):
    noisy = False  # no "Starting factory <...>" lines: the listeners log what they bind

    def __init__(self, connections: Connections, addresses: AddressCounter | None = None, farewell: bytes = b"",
                 on_refused: Callable[[], None] = lambda: None):  # fmt: skip
        self.connections = connections
        self.addresses, self.farewell, self.on_refused = addresses, farewell, on_refused

    def buildProtocol(self, addr) -> Protocol:
        host = getattr(addr, "host", None)
        if self.addresses is not None and not self.addresses.acquire(host):
            self.on_refused()
            return Refused(self.farewell)
        return LineProtocol(self, host)

    def release(self, host: str | None) -> None:
        if self.addresses is not None:
            self.addresses.release(host)
