"""The line transport: one frame per line over TCP or TLS (any stream endpoint).

Lines end in "\\n" ("\\r\\n" is accepted). A line longer than the limit is skipped up to its end and
answered with an error; the connection goes on. Sessions, deadlines and logging: connection.py.

A subclass may write another line end (`newline`) and have a fixed limit (`max_line_bytes`) instead
of limits.max_line_bytes: the IRC transport does both.
"""

from typing import cast

from twisted.internet.interfaces import IConsumer
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from ..session import ISessionTransport
from .connection import Connections


@implementer(ISessionTransport)
class LineProtocol(Protocol):
    newline = b"\n"  # what the server ends its lines with
    max_line_bytes: int | None = None  # None: limits.max_line_bytes

    def __init__(self, connections: Connections):
        self.connections = connections
        self.session = None
        self._buffer = b""
        self._skipping = False  # inside an over-long line

    def connectionMade(self) -> None:
        self.session = self.connections.open(self.transport, self, "tcp")

    def dataReceived(self, data: bytes) -> None:
        session = self.session
        self.connections.heard(session)
        fixed = self.max_line_bytes
        buffer, start, limit = self._buffer + data, 0, fixed or session.limits.max_line_bytes
        while session.open:
            end = buffer.find(b"\n", start)
            if end < 0:
                break
            line, start = buffer[start:end], end + 1
            if self._skipping:
                self._skipping = False
            elif len(line) > limit + line.endswith(b"\r"):
                session.frame_too_long(fixed)
            else:
                session.frame_received(line[:-1] if line.endswith(b"\r") else line)
        rest = buffer[start:]
        if len(rest) > limit + 1:  # (+1: the "\r" of a line whose "\n" is still to come)
            if not self._skipping:
                self._skipping = True
                session.frame_too_long(fixed)
            rest = b""
        self._buffer = rest

    def connectionLost(self, reason) -> None:
        self.connections.lost(self.session)

    # ISessionTransport
    def write_frames(self, frames: list[bytes]) -> None:
        frames.append(b"")
        self.transport.write(self.newline.join(frames))

    def close(self) -> None:
        # TLS (TLSMemoryBIOProtocol) sends its close alert only once no producer is registered: without
        # this, a connection the server closes over TLS would stay open
        cast(IConsumer, self.transport).unregisterProducer()
        self.transport.loseConnection()

    def abort(self) -> None:
        self.transport.abortConnection()

    def pause_reading(self) -> None:
        self.transport.pauseProducing()

    def resume_reading(self) -> None:
        self.transport.resumeProducing()


class LineFactory(Factory):
    def __init__(self, connections: Connections):
        self.connections = connections

    def buildProtocol(self, addr) -> LineProtocol:
        return LineProtocol(self.connections)
