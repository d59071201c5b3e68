"""The line transport: one frame per line over TCP or TLS (any stream endpoint).

Lines end in "\\n" ("\\r\\n" is accepted). A line longer than the limit is skipped up to its end and
answered with an error (7005); the connection goes on. The limit is limits.max_line_bytes, except for
a logged-in connection whose dialect carries files: its lines may reach limits.max_transfer_frame_bytes
while it holds a large-frame slot (connection.py), and its session refuses such a line unless it is a
file-transfer frame. While it waits for a slot, the data after the line's start waits unread here.

Output is written at once when the socket has room (`send_now`), with Nagle off (TCP_NODELAY): a
chat frame should not wait for an ACK. Each peer address may hold at most `max_connections_per_ip`
connections; one more is told so and closed. Sessions, deadlines and logging: connection.py.

A subclass may write another line end (`newline`) and have a fixed bound (`max_line_bytes`) instead of
limits.max_line_bytes: the IRC transport does both.
"""

from collections.abc import Callable
from typing import cast

from twisted.internet.interfaces import IConsumer
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from zope.interface import implementer

from ..listeners import AddressCounter, Refused
from ..session import ISessionTransport, Session
from . import IStreamTransport
from .connection import Connections, FrameGate, send_now, writes_directly

_OK, _TOO_LONG, _WAIT = range(3)


@implementer(ISessionTransport)
class LineProtocol(Protocol):
    newline = b"\n"  # what the server ends its lines with
    max_line_bytes: int | None = None  # a fixed bound, or None: the session's limits.max_line_bytes

    transport: IStreamTransport
    session: Session  # the connection's, from connectionMade on
    gate: FrameGate  # its reading, likewise
    _direct = False  # output goes through send_now (plain TCP), from connectionMade on

    def __init__(self, factory: "LineFactory", host: str | None):
        self.factory, self.host = factory, host
        self.connections = factory.connections
        self._partial: list[bytes] | None = None  # the line being read, in pieces (no "\n" in them)
        self._partial_bytes = 0
        self._unread = b""  # data held back while waiting for a large-frame slot
        self._skipping = False  # inside an over-long line

    @property
    def buffered(self) -> int:
        """Bytes received and not yet handed on."""
        return self._partial_bytes + len(self._unread)

    @property
    def max_frame_bytes(self) -> int:
        """The fixed bound, or the session's own limit (a connection keeps the limits it started with)."""
        if self.max_line_bytes is not None:
            return self.max_line_bytes
        session = getattr(self, "session", None)
        return (session.limits if session is not None else self.connections.limits).max_line_bytes

    def connectionMade(self) -> None:
        self.gate = self.connections.gate(self.transport, self._go_on)
        self.session = self.connections.open(self.transport, self, "tcp")
        self.gate.session = self.session
        if writes_directly(self.transport):
            self._direct = True
            self.transport.setTcpNoDelay(True)

    def dataReceived(self, data: bytes) -> None:
        self.connections.heard(self.session)
        if self.gate.waiting:
            self._unread += data  # (reading is paused: at most what one read had in flight)
            return
        self._take(data)

    def _go_on(self) -> None:
        """The large-frame slot waited for is ours: go on with the data held back."""
        data, self._unread = self._unread, b""
        self._take(data)

    def _fits(self, size: int) -> int:
        """Whether a line of `size` bytes (so far) may go on: _OK, _TOO_LONG, or _WAIT for a slot."""
        session = self.session
        if size <= self.max_frame_bytes:
            return _OK
        if size > session.limits.max_transfer_frame_bytes or not session.takes_large_frames:
            return _TOO_LONG
        return _OK if self.gate.reading_large() else _WAIT

    def _too_long(self) -> None:
        self._partial, self._partial_bytes = None, 0
        if self.gate.holding:
            self.gate.dropped()
        self.session.frame_too_long()

    def _take(self, data: bytes) -> None:
        session, start = self.session, 0
        while session.open:
            end = data.find(b"\n", start)
            if end < 0:
                break
            piece = data[start:end]
            if self._skipping:
                self._skipping = False
                start = end + 1
                continue
            size = self._partial_bytes + len(piece)
            fits = self._fits(size)
            if fits == _WAIT:
                self._unread = data[start:]
                return
            start = end + 1
            if fits == _TOO_LONG:
                self._too_long()
                continue
            line = b"".join((*self._partial, piece)) if self._partial else piece
            self._partial, self._partial_bytes = None, 0
            session.frame_received(line[:-1] if line.endswith(b"\r") else line)
            if size > self.max_frame_bytes:
                self.gate.handed_over(session.inbox.holding)
        if not session.open or start == len(data) or self._skipping:
            return
        rest = data[start:]
        fits = self._fits(self._partial_bytes + len(rest))
        if fits == _WAIT:
            self._unread = rest
        elif fits == _TOO_LONG:
            self._skipping = True
            self._too_long()
        else:
            if self._partial is None:
                self._partial = []
            self._partial.append(rest)
            self._partial_bytes += len(rest)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.factory.release(self.host)
        self.gate.close()
        self.connections.lost(self.session)

    # ISessionTransport
    def write_frames(self, frames: list[bytes]) -> None:
        frames.append(b"")
        if self._direct:
            send_now(self.transport, self.newline.join(frames))
        else:
            self.transport.write(self.newline.join(frames))

    def close(self, restarting: bool = False) -> None:
        # TLS (TLSMemoryBIOProtocol) sends its close alert only once no producer is registered: without
        # this, a connection the server closes over TLS would stay open
        cast(IConsumer, self.transport).unregisterProducer()
        self.transport.loseConnection()

    def abort(self) -> None:
        self.transport.abortConnection()

    def pause_reading(self) -> None:
        self.gate.pause()

    def resume_reading(self) -> None:
        self.gate.resume()


class LineFactory(Factory):
    noisy = False
    protocol: Callable[..., Protocol] = LineProtocol  # built with (factory, peer host)

    def __init__(self, connections: Connections, addresses: AddressCounter | None = None, farewell: bytes = b"",
                 on_refused: Callable[[], None] = lambda: None):  # fmt: skip
        self.connections = connections
        self.addresses, self.farewell, self.on_refused = addresses, farewell, on_refused

    def buildProtocol(self, addr) -> Protocol:
        host = getattr(addr, "host", None)
        if self.addresses is not None and not self.addresses.acquire(host):
            self.on_refused()
            return Refused(self.farewell)
        return self.protocol(self, host)

    def release(self, host: str | None) -> None:
        if self.addresses is not None:
            self.addresses.release(host)
