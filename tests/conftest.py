"""Shared fixtures: a fast configuration, a running ChatService on loopback ports, TLS certificates,
and a line client that speaks real frames over real sockets."""

import datetime
import ipaddress
import os
from collections import deque

import orjson
import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet import defer, endpoints, reactor, ssl
from twisted.internet.protocol import Protocol

from chatdaemon.config import Config, Limits, Passwords, Throttle
from chatdaemon.service import ChatService


def need(missing: str) -> None:
    """A test that needs a system dependency: skip it loudly with `missing` (the reason) if that is not
    empty, or fail instead when CI=true, where `make test` was to install everything."""
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CANNOT RUN (CI=true): {missing}")
        pytest.skip(f"NOT RUN: {missing}")


# argon2 at its cheapest: the tests exercise the flow, not the cost.
FAST_PASSWORDS = Passwords(time_cost=1, memory_cost=8, parallelism=1)
# Every test registers its users from 127.0.0.1: new accounts are not throttled unless a test asks (the login
# throttle keeps its defaults).
MANY_ACCOUNTS = Throttle(registrations_per_address=10**6, registrations_per_second=1e6, registration_burst=10**6)
TIMEOUT = 10.0


def make_config(data_dir, line=("tcp:0:interface=127.0.0.1",), admin=(), **limits) -> Config:
    return Config(
        data_dir=str(data_dir),
        line=tuple(line),
        http=("tcp:0:interface=127.0.0.1",),
        admin=tuple(admin),
        passwords=FAST_PASSWORDS,
        throttle=MANY_ACCOUNTS,
        limits=Limits(**{"rate_per_second": 1000.0, "rate_burst": 1000, **limits}),
    )


async def start_service(config: Config) -> ChatService:
    service = ChatService(config, reactor)
    service.privilegedStartService()
    service.startService()
    await service.started
    return service


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest_twisted.async_yield_fixture
async def chatd(data_dir):
    service = await start_service(make_config(data_dir))
    yield service
    await service.stopService()


@pytest_twisted.async_yield_fixture
async def chatd_irc(data_dir):
    """A running service with an IRC listener too."""
    from tests.ircclient import start_irc_service  # (ircclient builds on this module)

    service = await start_irc_service(data_dir)
    yield service
    await service.stopService()


# What each dialect calls an error frame: a helper waiting for something else fails when it meets one.
def is_error(dialect: str | None, line: bytes) -> bool:
    if dialect == "text" or (dialect is None and not line.startswith(b"{")):
        return line.startswith(b"! ")
    try:
        frame = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(frame, dict):
        return False
    if dialect == "action":
        return frame.get("action") == "error"
    if dialect == "events":
        return frame.get("event") == "SERVER_ERROR"
    return frame.get("type") == "ERROR"  # typed, colon, and a connection whose dialect is not known yet


class UnexpectedError(AssertionError):
    """An error frame arrived while the test waited for something else."""


# A ping per dialect, and how its answer looks: sent with a nonce, the answer proves every earlier frame was handled.
def ping_frame(dialect: str, nonce: str) -> bytes:
    if dialect == "text":
        return f"/ping {nonce}".encode()
    if dialect == "action":
        return orjson.dumps({"action": "ping", "data": {"nonce": nonce}})
    if dialect == "events":
        return orjson.dumps({"event": "CLIENT_PING", "data": {"nonce": nonce}})
    if dialect == "colon":
        return orjson.dumps({"type": "SYSTEM:PING", "data": {"nonce": nonce}})
    return orjson.dumps({"type": "PING", "timestamp": 1, "payload": {"nonce": nonce}})


def is_pong(dialect: str, line: bytes, nonce: str) -> bool:
    if dialect == "text":
        return line == f"* pong {nonce}".encode()
    return nonce.encode() in line and (b"PONG" in line or b'"pong"' in line)


_nonces = iter(range(1, 1 << 62))


class Arrival:
    """Wakes a test client's reader when something arrives or the connection ends (one waiter at a time)."""

    def __init__(self) -> None:
        self._waiter: defer.Deferred | None = None

    def wake(self) -> None:
        if self._waiter is not None:
            waiter, self._waiter = self._waiter, None
            waiter.callback(None)

    async def wait(self, timeout: float = TIMEOUT) -> None:
        self._waiter = defer.Deferred()
        await self._waiter.addTimeout(timeout, reactor)


class LineClient(Protocol):
    """A client of the line transport: send frames, await the ones you expect.

    Waiting for one kind of frame skips others, but an error frame met on the way fails the test
    (UnexpectedError), unless an error is what is awaited. `sync()` is the barrier: it sends a ping and
    returns everything that arrived before the answer."""

    def __init__(self, dialect: str | None = None):
        self.lines: deque[bytes] = deque()
        self.dialect = dialect
        self._buffer = b""
        self.arrival = Arrival()
        self.closed = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        *complete, self._buffer = (self._buffer + data).split(b"\n")
        self.lines.extend(complete)
        self.arrival.wake()

    def connectionLost(self, reason) -> None:
        self.closed.callback(None)
        self.arrival.wake()

    def send_raw(self, data: bytes) -> None:
        self.transport.write(data)

    def say(self, line: str) -> None:
        self.dialect = self.dialect or "text"
        self.transport.write(line.encode("utf-8") + b"\n")

    def send(self, kind: str, **payload) -> None:
        """A typed frame."""
        self.dialect = self.dialect or "typed"
        self.transport.write(orjson.dumps({"type": kind, "timestamp": 1630000000, "payload": payload}) + b"\n")

    def _skipped(self, line: bytes, waiting_for: str) -> None:
        if is_error(self.dialect, line):
            raise UnexpectedError(f"waiting for {waiting_for}, got an error: {line[:500]!r}")

    async def line(self, timeout: float = TIMEOUT) -> bytes:
        """The next line from the server."""
        while not self.lines:
            if self.closed.called:
                raise ConnectionError("closed by the server")
            await self.arrival.wait(timeout)
        return self.lines.popleft()

    async def text(self, startswith: str = "", timeout: float = TIMEOUT) -> str:
        """The next text line starting with `startswith`, skipping others (but not error lines)."""
        while True:
            raw = await self.line(timeout)
            line = raw.decode("utf-8")
            if line.startswith(startswith):
                return line
            if not startswith.startswith("!"):
                self._skipped(raw, repr(startswith))

    async def frame(self, kind: str | None = None, timeout: float = TIMEOUT) -> dict:
        """The next typed frame of type `kind` (any type if None), skipping others (but not errors)."""
        while True:
            raw = await self.line(timeout)
            frame = orjson.loads(raw)
            assert isinstance(frame["timestamp"], int)
            if kind is None or frame["type"] == kind:
                return frame
            if kind != "ERROR":
                self._skipped(raw, kind)

    async def payload(self, kind: str, timeout: float = TIMEOUT) -> dict:
        return (await self.frame(kind, timeout))["payload"]

    async def sync(self, timeout: float = TIMEOUT) -> list[bytes]:
        """Send a ping and wait for its answer; everything that arrived before it (the connection keeps
        order, so whatever the server was to send for earlier frames is in there)."""
        nonce = f"sync-{next(_nonces)}"
        self.transport.write(ping_frame(self.dialect or "typed", nonce) + b"\n")
        got = []
        while True:
            line = await self.line(timeout)
            if is_pong(self.dialect or "typed", line, nonce):
                return got
            got.append(line)

    async def close(self) -> None:
        """Close, and wait until the server has let go of this connection too (so the user counts as offline)."""
        peer = f"127.0.0.1:{self.transport.getHost().port}"
        self.transport.loseConnection()
        await self.closed
        for _ in range(500):
            attached = [c for u in list(self.service.bus.online_users()) for c in self.service.bus.clients(u)]
            if not any(s.peer == peer for s in [*self.service.connections.sessions, *attached]):
                return
            await _sleep(0.01)
        raise AssertionError(f"the server still holds {peer}")


async def _sleep(seconds: float) -> None:
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    await d


async def connect(
    service: ChatService, tls_root=None, role: str = "line", index: int = 0, source: str | None = None
) -> LineClient:
    """A line client; `source`: the loopback address to connect from (127.0.0.0/8 all reach the server)."""
    port = service.listeners.address(role, index).port
    if tls_root is None:
        bind = (source, 0) if source else None
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port, bindAddress=bind)
    else:
        options = ssl.optionsForClientTLS("localhost", trustRoot=tls_root)
        endpoint = endpoints.SSL4ClientEndpoint(reactor, "127.0.0.1", port, options)
    client = await endpoints.connectProtocol(endpoint, LineClient())
    client.service = service
    return client


async def typed_user(
    service, name: str, password: str = "secret", register: bool = True, source: str | None = None
) -> LineClient:
    """A connected, logged-in typed-dialect client (registering the user first if asked), from `source`."""
    client = await connect(service, source=source)
    if register:
        client.send("REGISTER_REQUEST", username=name, passwordHash=password)
        assert (await client.payload("REGISTER_RESPONSE"))["code"] == 0
    client.send("LOGIN_REQUEST", username=name, passwordHash=password)
    assert (await client.payload("LOGIN_RESPONSE"))["code"] == 0
    return client


async def text_user(service, name: str, password: str = "secret") -> LineClient:
    client = await connect(service)
    client.say(f"/register {name} {password}")
    assert await client.text("* registered") == f"* registered {name}; now /login {name} PASSWORD"
    client.say(f"/login {name} {password}")
    assert (await client.text("* welcome")).startswith(f"* welcome, {name}! your session key: ")
    return client


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    return make_certificate(tmp_path_factory.mktemp("tls"))


def make_certificate(folder):
    """A self-signed certificate for localhost/127.0.0.1: (key path, cert path, PEM bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path.write_bytes(cert_pem)
    return key_path, cert_path, cert_pem


async def text_friends(a: LineClient, a_name: str, b: LineClient, b_name: str) -> None:
    """Make two logged-in text users friends."""
    a.say(f"/friend add {b_name}")
    await a.text("* friend request sent")
    await b.text(f"* {a_name} wants to be your friend")
    b.say(f"/friend accept {a_name}")
    await b.text("* accepted")
    await a.text(f"* {b_name} accepted")


async def typed_friends(a: LineClient, a_name: str, b: LineClient, b_name: str) -> None:
    """Make two logged-in typed users friends."""
    a.send("FRIEND_REQUEST", sender=a_name, receiver=b_name)
    assert (await a.payload("FRIEND_REQUEST_ACK"))["code"] == 0
    assert (await b.payload("FRIEND_REQUEST"))["sender"] == a_name
    b.send("FRIEND_REQUEST_RESPONSE", sender=a_name, receiver=b_name, code=0)
    assert (await a.payload("FRIEND_REQUEST_RESPONSE"))["code"] == 0


def of_type(kind: str, lines: list[bytes]) -> list[dict]:
    """The typed frames of type `kind` among `lines` (from LineClient.sync)."""
    return [f for f in map(orjson.loads, lines) if f.get("type") == kind]


# -- the action dialect (seed 001)


def act(client: LineClient, action: str, **data) -> None:
    """Send an action-dialect frame."""
    client.dialect = client.dialect or "action"
    client.transport.write(orjson.dumps({"action": action, "data": data}) + b"\n")


async def action_frame(client: LineClient, action: str | None = None, timeout: float = TIMEOUT) -> dict:
    """The next action-dialect frame named `action` (any if None), skipping others (but not errors)."""
    while True:
        raw = await client.line(timeout)
        frame = orjson.loads(raw)
        if action is None or frame["action"] == action:
            return frame
        if action != "error":
            client._skipped(raw, action)


async def action_user(service, name: str, password: str = "secret", register: bool = True) -> LineClient:
    """A connected, logged-in action-dialect client (registering the user first if asked)."""
    client = await connect(service)
    if register:
        act(client, "register", chatid=name, password=password)
        assert (await action_frame(client))["action"] == "register_success"
    act(client, "login", chatid=name, password=password)
    reply = await action_frame(client)
    assert reply["action"] == "login_success" and reply["data"]["chatid"] == name
    return client


async def action_send(client: LineClient, room: str, content: str, chatid: str = "") -> dict:
    """send_message, answer the character_count with confirm_count true; the ack frame."""
    act(client, "send_message", room_id=room, content=content, **({"chatid": chatid} if chatid else {}))
    count = await action_frame(client, "character_count")
    act(client, "confirm_count", transaction_id=count["data"]["transaction_id"], confirm=True)
    ack = await action_frame(client, "ack")
    assert ack["data"]["transaction_id"] == count["data"]["transaction_id"]
    return ack
