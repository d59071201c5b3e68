"""Test clients for the HTTP listener: an Autobahn WebSocket client, a raw handshake, and treq helpers."""

from collections import deque

import orjson
import treq
import treq.client
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, endpoints, reactor, ssl
from twisted.internet.protocol import Protocol
from twisted.web.client import Agent, HTTPConnectionPool

from tests.conftest import TIMEOUT, Arrival, UnexpectedError, _nonces, _sleep, is_error, is_pong, ping_frame


def http_port(service, index: int = 0) -> int:
    """The HTTP port of an in-process service, or `service` itself if it is a port (a twistd process's)."""
    if isinstance(service, int):
        return service
    return service.listeners.address("http", index).port


def dialect_of(frame: dict) -> str:
    """The dialect a client frame speaks (CONTRACT.md's detection)."""
    if "action" in frame:
        return "action"
    if "type" in frame and "payload" in frame:
        return "typed"
    if ":" in str(frame.get("type", "")):
        return "colon"
    return "events"


class WSClient(WebSocketClientProtocol):
    """Send JSON frames; await the ones you expect (any dialect: match on any fields).

    As LineClient: waiting skips other frames but fails on an error frame (unless one is awaited), and
    `sync()` is the ping barrier."""

    dialect: str | None = None

    def __init__(self):
        super().__init__()
        self.messages: deque[bytes] = deque()
        self.arrival = Arrival()
        self.opened = defer.Deferred()
        self.closed = defer.Deferred()
        self.close_code = None

    def onOpen(self):
        self.opened.callback(self)

    def onMessage(self, payload, isBinary):
        self.messages.append(payload)
        self.arrival.wake()

    def onClose(self, wasClean, code, reason):
        self.close_code = code
        if not self.opened.called:
            self.opened.errback(ConnectionError(f"handshake failed: {reason}"))
        if not self.closed.called:
            self.closed.callback(code)
        self.arrival.wake()

    def send(self, obj) -> None:
        if isinstance(obj, dict):
            self.dialect = self.dialect or dialect_of(obj)
        self.sendMessage(obj if isinstance(obj, bytes) else orjson.dumps(obj))

    def say(self, line: str) -> None:
        self.dialect = self.dialect or "text"
        self.sendMessage(line.encode("utf-8"))

    async def raw(self, timeout: float = TIMEOUT) -> bytes:
        while not self.messages:
            if self.closed.called:
                raise ConnectionError(f"closed by the server ({self.close_code})")
            await self.arrival.wait(timeout)
        return self.messages.popleft()

    async def next(self, timeout: float = TIMEOUT, **fields) -> dict:
        """The next JSON frame whose top-level fields include `fields`, skipping others (but not errors)."""
        while True:
            raw = await self.raw(timeout)
            frame = orjson.loads(raw)
            if all(frame.get(k) == v for k, v in fields.items()):
                return frame
            if is_error(self.dialect, raw) and not is_error(self.dialect, orjson.dumps(fields)):
                raise UnexpectedError(f"waiting for {fields}, got an error: {raw[:500]!r}")

    async def text(self, startswith: str = "", timeout: float = TIMEOUT) -> str:
        while True:
            raw = await self.raw(timeout)
            line = raw.decode("utf-8")
            if line.startswith(startswith):
                return line
            if not startswith.startswith("!") and is_error("text", raw):
                raise UnexpectedError(f"waiting for {startswith!r}, got an error: {line[:500]!r}")

    async def sync(self, timeout: float = TIMEOUT) -> list[bytes]:
        """Send a ping and wait for its answer; the raw frames that arrived before it."""
        nonce = f"sync-{next(_nonces)}"
        self.sendMessage(ping_frame(self.dialect or "typed", nonce))
        got = []
        while True:
            raw = await self.raw(timeout)
            if is_pong(self.dialect or "typed", raw, nonce):
                return got
            got.append(raw)

    async def close(self):
        if not self.closed.called:
            self.sendClose(1000)
        await self.closed.addTimeout(TIMEOUT, reactor)


async def ws_connect(
    service,
    query: str = "",
    headers: dict | None = None,
    origin: str | None = None,
    tls_root=None,
    index: int = 0,
    source: str | None = None,
) -> WSClient:
    port = http_port(service, index)
    scheme = "wss" if tls_root is not None else "ws"
    factory = WebSocketClientFactory(f"{scheme}://127.0.0.1:{port}/ws{query}", origin=origin, headers=headers or {})
    factory.protocol = WSClient
    if tls_root is None:
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port, bindAddress=(source, 0) if source else None)
    else:
        endpoint = endpoints.SSL4ClientEndpoint(
            reactor, "127.0.0.1", port, ssl.optionsForClientTLS("localhost", trustRoot=tls_root)
        )
    client = await endpoint.connect(factory)
    await client.opened.addTimeout(TIMEOUT, reactor)
    return client


class _Raw(Protocol):
    def __init__(self):
        self.data = b""
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.done.callback(self.data)


async def raw_handshake(service, path: str = "/ws", headers: dict | None = None, source: str | None = None) -> bytes:
    """Send a WebSocket upgrade by hand (from `source`, a loopback address); return the response's status line."""
    bind = (source, 0) if source else None
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", http_port(service), bindAddress=bind)
    proto = await endpoints.connectProtocol(endpoint, _Raw())
    headers = {"Host": f"127.0.0.1:{http_port(service)}", **(headers or {})}  # a test may name another Host
    lines = [
        f"GET {path} HTTP/1.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ] + [f"{k}: {v}" for k, v in headers.items()]
    proto.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    for _ in range(100):
        if b"\r\n" in proto.data or proto.done.called:
            break
        await _sleep(0.05)
    proto.transport.loseConnection()
    await proto.done
    return proto.data.split(b"\r\n", 1)[0]


class Http:
    """treq against the service's HTTP port, with a non-persistent pool (nothing left open after a test)."""

    def __init__(self, service, source: str | None = None):
        """`source`: the loopback address to connect from."""
        self.base = f"http://127.0.0.1:{http_port(service)}"
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.client = treq.client.HTTPClient(
            Agent(reactor, pool=self.pool, bindAddress=(source, 0) if source else None)
        )

    async def call(
        self, method: str, path: str, json=None, token: str = "", data: bytes | None = None, headers: dict | None = None
    ):
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        kwargs: dict = {"headers": hdrs}
        if json is not None:
            kwargs["data"] = orjson.dumps(json)
            hdrs["Content-Type"] = "application/json"
        elif data is not None:
            kwargs["data"] = data
        response = await self.client.request(method, self.base + path, **kwargs)
        body = await treq.content(response)
        return response, body

    async def json(self, method: str, path: str, **kwargs):
        response, body = await self.call(method, path, **kwargs)
        return response.code, orjson.loads(body) if body else None

    async def close(self):
        await self.pool.closeCachedConnections()


async def registered_key(service, name: str, password: str = "pw") -> str:
    """Register `name` over REST and log in: its session key."""
    http = Http(service)
    try:
        await http.json("POST", "/register", json={"username": name, "password": password})
        _, login = await http.json("POST", "/login", json={"username": name, "password": password})
        return login["token"]
    finally:
        await http.close()
