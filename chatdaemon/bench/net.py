"""The load generator's client loop: raw non-blocking sockets on epoll, one thread, no Twisted.

Reading is built for a few million frames a second in one Python thread: each readable socket is
read once per wakeup into one shared 1 MiB buffer (after the connection's leftover partial frame),
and the scenario's handler gets the region of complete frames (up to the last b"\\n" on a line
transport; up to the end of the last whole frame on a WebSocket) to count its markers over with
bytes.count, without splitting it into frames. Only set-up replies are split and classified one by
one (`frames`).

A Conn goes CONNECTING -> (WS: HANDSHAKE ->) OPEN -> CLOSED. Writes go out at once when nothing is
queued; what the kernel does not take waits for EPOLLOUT.
"""

import contextlib
import errno
import select
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import cast

from . import wsframe

CONNECTING, HANDSHAKE, OPEN, CLOSED = 0, 1, 2, 3
IN, OUT = select.EPOLLIN, select.EPOLLOUT
BUFFER = 1 << 20
MAX_PARTIAL = BUFFER // 2


class Conn:
    __slots__ = (
        "accept",
        "acks",
        "closed_why",
        "connected_at",
        "deliveries",
        "fd",
        "idx",
        "key",
        "name",
        "out",
        "own",
        "partial",
        "pending",
        "refusals",
        "room",
        "sent",
        "sock",
        "started_at",
        "state",
        "step",
        "target",
        "ws",
        "ws_path",
    )

    def __init__(self, idx: int, name: str, key: str) -> None:
        self.idx, self.name, self.key = idx, name, key
        self.sock: socket.socket = cast(socket.socket, None)  # set by Loop.connect
        self.fd = -1
        self.state = CONNECTING
        self.ws = False
        self.ws_path = ""
        self.accept = b""
        self.partial = b""
        self.out = bytearray()
        self.step = ""  # set-up step: "login", "join", "ready", "failed"
        self.room = ""
        self.target = ""  # where this connection sends (a room, or a user for direct messages)
        self.own = b""  # own marker prefix
        self.sent = self.acks = self.deliveries = self.refusals = 0
        self.pending: deque[int] = deque()  # send times (ns) awaiting their ack, in order
        self.started_at = self.connected_at = 0
        self.closed_why = ""


Handler = Callable[[Conn, bytearray, int, int], None]


class Loop:
    def __init__(self, host: str, port: int, ws: bool = False, ws_port: int | None = None) -> None:
        self.host, self.port = host, port
        self.ws = ws
        self.ws_port = ws_port
        self.ep = select.epoll()
        self.conns: dict[int, Conn] = {}
        self.buf = bytearray(BUFFER)
        self.view = memoryview(self.buf)
        self.on_data: Handler = lambda c, buf, stop, now: None
        self.on_open: Callable[[Conn], None] = lambda c: None
        self.on_close: Callable[[Conn], None] = lambda c: None
        self.closed = 0
        self.errors: list[str] = []
        self.quickack = False  # re-arm TCP_QUICKACK after every read (see docs/performance.md, "Nagle")

    # -- connections

    def connect(self, conn: Conn, ws_path: str = "") -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sock, conn.fd = sock, sock.fileno()
        conn.ws = self.ws
        conn.ws_path = ws_path
        conn.state = CONNECTING
        conn.started_at = time.monotonic_ns()
        port = self.ws_port if self.ws else self.port
        err = sock.connect_ex((self.host, port))
        self.conns[conn.fd] = conn
        if err not in (0, errno.EINPROGRESS):
            self._fail(conn, f"connect: {errno.errorcode.get(err, err)}")
            return
        self.ep.register(conn.fd, IN | OUT)

    def _connected(self, conn: Conn) -> None:
        err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            self._fail(conn, f"connect: {errno.errorcode.get(err, err)}")
            return
        conn.connected_at = time.monotonic_ns()
        if conn.ws:
            request, conn.accept = wsframe.handshake_request(self.host, self.ws_port or 0, conn.ws_path)
            conn.state = HANDSHAKE
            self._write_raw(conn, request)
        else:
            conn.state = OPEN
            self.on_open(conn)
        if not conn.out and conn.state != CLOSED:
            self.ep.modify(conn.fd, IN)

    def close(self, conn: Conn, why: str = "") -> None:
        if conn.state == CLOSED:
            return
        conn.state = CLOSED
        conn.closed_why = conn.closed_why or why
        self.closed += 1
        with contextlib.suppress(OSError, ValueError):
            self.ep.unregister(conn.fd)
        self.conns.pop(conn.fd, None)
        with contextlib.suppress(OSError):
            conn.sock.close()
        self.on_close(conn)

    def _fail(self, conn: Conn, why: str) -> None:
        conn.step = "failed"
        conn.closed_why = why
        if len(self.errors) < 20:
            self.errors.append(f"{conn.name}: {why}")
        self.close(conn, why)

    def close_all(self) -> None:
        for conn in list(self.conns.values()):
            self.close(conn, "done")
        self.ep.close()

    # -- writing

    def send(self, conn: Conn, data: bytes) -> None:
        """Send one frame (a WebSocket frame, or a line: b"\\n" is added)."""
        if conn.state == CLOSED:
            return
        self._write_raw(conn, wsframe.encode_frame(data) if conn.ws else data + b"\n")

    def send_raw(self, conn: Conn, data: bytes) -> None:
        """Send bytes as they are (several lines at once, IRC's CRLF lines)."""
        if conn.state != CLOSED:
            self._write_raw(conn, data)

    def _write_raw(self, conn: Conn, data: bytes) -> None:
        if conn.out or conn.state == CONNECTING:
            conn.out += data
            return
        try:
            n = conn.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError as e:
            self._fail(conn, f"send: {e}")
            return
        if n < len(data):
            conn.out += data[n:]
            self.ep.modify(conn.fd, IN | OUT)

    def _flush(self, conn: Conn) -> None:
        if conn.out:
            try:
                n = conn.sock.send(conn.out)
            except BlockingIOError:
                return
            except OSError as e:
                self._fail(conn, f"send: {e}")
                return
            del conn.out[:n]
        if not conn.out:
            self.ep.modify(conn.fd, IN)

    # -- reading

    def poll(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for events and handle them; returns how many there were."""
        try:
            events = self.ep.poll(timeout)
        except InterruptedError:
            return 0
        conns = self.conns
        for fd, ev in events:
            conn = conns.get(fd)
            if conn is None:
                continue
            if ev & OUT:
                if conn.state == CONNECTING:
                    self._connected(conn)
                if conn.state != CLOSED:
                    self._flush(conn)
            if ev & (IN | select.EPOLLHUP | select.EPOLLERR) and conn.state not in (CLOSED, CONNECTING):
                self._read(conn)
        return len(events)

    def _read(self, conn: Conn) -> None:
        buf = self.buf
        p = len(conn.partial)
        if p:
            buf[:p] = conn.partial
        try:
            n = conn.sock.recv_into(self.view[p:])
        except BlockingIOError:
            return
        except OSError as e:
            self._fail(conn, f"recv: {e}")
            return
        if n == 0:
            self._fail(conn, "closed by the server")
            return
        if self.quickack:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        now = time.monotonic_ns()
        end = p + n
        start = 0
        if conn.state == HANDSHAKE:
            consumed, _status, error = wsframe.parse_handshake_response(buf[:end], conn.accept)
            if not consumed:
                conn.partial = bytes(buf[:end])
                return
            if error:
                self._fail(conn, "websocket handshake: " + error)
                return
            conn.state = OPEN
            start = consumed
            self.on_open(conn)
            if conn.state == CLOSED:
                return
        if conn.ws:
            control: list[tuple[int, bytes]] = []
            stop = wsframe.scan(buf, start, end, control)
            for op, payload in control:
                if op == wsframe.OP_PING:
                    self._write_raw(conn, wsframe.encode_frame(payload, wsframe.OP_PONG))
                elif op == wsframe.OP_CLOSE:
                    self._fail(conn, f"websocket closed by the server {payload[:2].hex()} {payload[2:80]!r}")
                    return
        else:
            stop = buf.rfind(b"\n", max(start, p), end) + 1
            if stop == 0:
                stop = start
        if stop > start:
            if start:
                # only after a WebSocket handshake: move the frames to the front
                buf[: end - start] = buf[start:end]
                stop -= start
                end -= start
            self.on_data(conn, buf, stop, now)
        if conn.state == CLOSED:
            return
        rest = end - stop
        if rest > MAX_PARTIAL:
            self._fail(conn, f"a frame longer than {MAX_PARTIAL} bytes")
            return
        conn.partial = bytes(buf[stop:end]) if rest else b""

    def frames(self, conn: Conn, buf: bytearray, stop: int) -> list[bytes]:
        """The complete frames of a region, one by one (the slow path, for set-up replies)."""
        if conn.ws:
            return [p for op, p in wsframe.payloads(buf, 0, stop) if op in (wsframe.OP_TEXT, wsframe.OP_CONT)]
        return [line.rstrip(b"\r") for line in bytes(buf[:stop]).split(b"\n") if line]

    def run(self, until: Callable[[], bool], deadline: float, tick: Callable[[], float] | None = None) -> bool:
        """Poll until `until()` or the monotonic `deadline`; `tick()` runs after each poll and returns the
        longest the next poll may wait. Returns whether `until()` became true."""
        wait = tick() if tick is not None else 0.05
        while True:
            if until():
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            self.poll(min(wait, deadline - now))
            if tick is not None:
                wait = tick()
