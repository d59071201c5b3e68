"""HTTP deadlines over raw sockets: a request's line and headers must arrive within http.headers_timeout of its
first byte, its body within http.body_timeout; slowloris connections are answered 408 and closed, while
WebSocket upgrades, Socket.IO long polls and kept-alive connections are not cut."""

import dataclasses

import orjson
import pytest_twisted
from twisted.internet import defer, endpoints, reactor, task
from twisted.internet.protocol import Protocol

from chatdaemon import errors
from chatdaemon.config import Http, SocketIO
from tests.conftest import TIMEOUT, Arrival, make_config, start_service
from tests.wsclient import Http as HttpClient
from tests.wsclient import http_port, ws_connect

DEADLINES = Http(headers_timeout=1.0, body_timeout=1.0)


class Trickler(Protocol):
    """A raw HTTP client: what it wrote, what it got, and when the server closed."""

    def __init__(self):
        self.data = b""
        self.closed = defer.Deferred()
        self.arrival = Arrival()

    def dataReceived(self, data: bytes) -> None:
        self.data += data
        self.arrival.wake()

    def connectionLost(self, reason) -> None:
        self.closed.callback(self.data)
        self.arrival.wake()

    async def until_size(self, size: int) -> bytes:
        """Wait until `size` bytes arrived in all."""
        while len(self.data) < size:
            await self._next()
        return self.data

    async def _next(self) -> None:
        if self.closed.called:
            raise ConnectionError(f"closed: {self.data!r}")
        await self.arrival.wait(TIMEOUT)

    async def until(self, needle: bytes) -> bytes:
        """Wait until what arrived contains `needle`; all of it."""
        while needle not in self.data:
            if self.closed.called:
                raise ConnectionError(f"closed before {needle!r}: {self.data!r}")
            await self.arrival.wait(TIMEOUT)
        return self.data

    def trickle(self, data: bytes, every: float) -> task.LoopingCall:
        """Send `data` one byte every `every` seconds (the attack), until closed or done."""
        rest = iter(data)

        def one() -> None:
            byte = next(rest, None)
            if byte is None or self.closed.called:
                loop.stop()
            else:
                self.transport.write(bytes([byte]))

        def stop(result):
            if loop.running:
                loop.stop()
            return result

        loop = task.LoopingCall(one)
        loop.start(every, now=True)
        self.closed.addBoth(stop)
        return loop


async def raw(service) -> Trickler:
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", http_port(service))
    return await endpoints.connectProtocol(endpoint, Trickler())


async def deadline_service(data_dir, http=DEADLINES, **socketio):
    config = make_config(data_dir)
    config = dataclasses.replace(config, http_options=http, socketio=SocketIO(**socketio))
    return await start_service(config)


def status_and_json(data: bytes) -> tuple[bytes, dict]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], orjson.loads(body)


@pytest_twisted.ensureDeferred
async def test_slowloris_headers_are_cut_off_with_408(data_dir):
    service = await deadline_service(data_dir)
    try:
        clients = [await raw(service) for _ in range(100)]
        for client in clients:
            client.transport.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            client.trickle(b"X-Slow: " + b"a" * 1000 + b"\r\n\r\n", every=0.2)
        answers = await defer.gatherResults([c.closed.addTimeout(TIMEOUT, reactor) for c in clients])
        for answer in answers:
            status, body = status_and_json(answer)
            assert status == b"HTTP/1.1 408 Request Timeout"
            assert body["code"] == errors.REQUEST_TIMEOUT
            assert "line and headers did not arrive within 1 seconds" in body["message"]
        assert service.metrics.refused["http_deadline"] == 100
        http = HttpClient(service)
        try:
            assert (await http.json("GET", "/health")) == (200, {"status": "ok"})  # others are served meanwhile
        finally:
            await http.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_body_that_trickles_is_cut_off_and_a_request_line_alone_too(data_dir):
    service = await deadline_service(data_dir)
    try:
        body_client = await raw(service)
        body_client.transport.write(
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        body_client.trickle(b'"username": "a", "password": "b"' + b" " * 100, every=0.2)
        status, body = status_and_json(await body_client.closed.addTimeout(TIMEOUT, reactor))
        assert status == b"HTTP/1.1 408 Request Timeout" and "body did not arrive" in body["message"]
        line_client = await raw(service)
        line_client.transport.write(b"GE")  # two bytes, then nothing: the deadline runs from the first byte
        status, _ = status_and_json(await line_client.closed.addTimeout(TIMEOUT, reactor))
        assert status == b"HTTP/1.1 408 Request Timeout"
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_kept_alive_requests_are_each_timed_from_their_own_first_byte(data_dir):
    service = await deadline_service(data_dir)
    try:
        client = await raw(service)
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(3):
            client.data = b""
            client.transport.write(request)
            await client.until(b'{"status":"ok"}')
            # idle between requests for longer than headers_timeout: the idle time is not the request's
            await task.deferLater(reactor, 1.3, lambda: None)
        assert not client.closed.called
        client.transport.loseConnection()
        await client.closed
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_websocket_and_a_socketio_long_poll_outlive_the_deadlines(data_dir):
    service = await deadline_service(data_dir, ping_interval=2.5, ping_timeout=5.0)
    try:
        ws = await ws_connect(service, "?dialect=typed")
        await task.deferLater(reactor, 1.5, lambda: None)  # longer than both deadlines, with nothing sent
        assert await ws.sync() is not None  # still open and answering
        await ws.close()

        client = await raw(service)
        client.transport.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n")
        await client.until(b'"sid"')
        await client.until(b"}")
        sid = orjson.loads(client.data[client.data.index(b'{"sid"') :].split(b"\x1e")[0])["sid"]
        client.data = b""
        # the long poll: its headers arrive at once, then it waits on purpose for the server's ping at 2.5 s
        client.transport.write(
            f"GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        data = await client.until(b"\r\n0\r\n\r\n")  # the end of the chunked reply
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and body == b"1\r\n2\r\n0\r\n\r\n"  # the ping, not a 408
        client.transport.loseConnection()
        await client.closed
    finally:
        await service.stopService()
