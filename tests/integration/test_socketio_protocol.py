"""Socket.IO at /socket.io/ against the real npm socket.io-client (tests/js/client.mjs, run by Node.js), and
the HTTP edges of Engine.IO over real sockets. The server is a twisted.web Site on loopback with a small
echo application; each scenario is one `node` process that prints what it saw as a JSON line.

The client comes from `npm ci --prefix tests/js` (`make npm-deps`). Without Node or node_modules these
tests are skipped with the reason, unless CI=true: then they fail.
"""

import os
import shutil
from pathlib import Path

import orjson
import pytest
import pytest_twisted
import treq
from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet import defer, endpoints, reactor, utils
from twisted.web.client import HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer
from zope.interface.verify import verifyObject

from chatdaemon.transports.engineio import EngineIOOptions
from chatdaemon.transports.rest import bounded_request
from chatdaemon.transports.socketio import (
    ConnectRefused,
    ISocket,
    ISocketHandler,
    ISocketIOApplication,
    SocketIOOptions,
    SocketIOServer,
)
from tests.conftest import TIMEOUT, _sleep, need
from tests.wsclient import WSClient

JS = Path(__file__).resolve().parent.parent / "js"
NODE = shutil.which("node")
CLIENT_INSTALLED = (JS / "node_modules" / "socket.io-client" / "package.json").exists()
MISSING = (
    "no node on PATH"
    if NODE is None
    else "tests/js/node_modules is missing: run `make npm-deps` (npm ci --prefix tests/js)"
    if not CLIENT_INSTALLED
    else ""
)
OPTIONS = EngineIOOptions(ping_interval=0.25, ping_timeout=0.5, max_payload=100_000, max_sessions_per_address=8)


def need_node() -> None:
    need(f"SOCKET.IO CLIENT TESTS: {MISSING}" if MISSING else "")


@implementer(ISocketHandler)
class EchoHandler:
    def __init__(self, app: "EchoApp", user: str):
        self.app, self.user = app, user
        self.socket = None

    def connected(self, socket) -> None:
        verifyObject(ISocket, socket)
        self.socket = socket
        self.app.sockets.append(socket)
        socket.emit("welcome", {"user": self.user, "transport": socket.transport_name})

    def event(self, name, args, ack) -> None:
        socket = self.socket
        self.app.events.append((name, socket.transport_name))
        if name == "echo":
            socket.emit("echo", *args)
            if ack is not None:
                ack(*args)
        elif name == "fail":
            ack({"error": {"code": 4001, "message": f"refused: {args[0]}"}})
        elif name == "raise":
            raise RuntimeError("a handler that fails")
        elif name == "binary":
            meta, second = args
            data = meta["data"]
            ack({"name": meta["name"], "size": len(data), "reversed": data[::-1]})
            socket.emit("media", {"name": "back", "data": data + second})
        elif name == "kick":
            socket.disconnect()
        elif name == "drop":  # the TCP connection goes, as when a server dies: no close packet, no close frame
            socket._connection.session._ws.transport.loseConnection()

    def disconnected(self, reason) -> None:
        self.app.disconnects.append((self.user, reason))


@implementer(ISocketIOApplication)
class EchoApp:
    def __init__(self):
        self.sockets, self.events, self.disconnects = [], [], []

    def connect(self, auth, peer):
        assert peer.startswith("127.0.0.1:")
        if auth == {"token": "good-key"}:
            return defer.succeed(EchoHandler(self, "kim"))
        if auth == {"username": "ann", "password": "secret"}:
            return defer.succeed(EchoHandler(self, "ann"))
        return defer.fail(ConnectRefused("invalid session key", {"code": 4010}))


class Server:
    def __init__(self, options: EngineIOOptions = OPTIONS):
        self.app = EchoApp()
        verifyObject(ISocketIOApplication, self.app)
        self.sio = SocketIOServer(self.app, reactor, options, SocketIOOptions(connect_timeout=2.0))
        root = Resource()
        root.putChild(b"socket.io", self.sio.resource)
        site = Site(root)
        # the Site bounds every body (twisted.web has no limit of its own); above max_payload, so that the
        # resource's own limit is the one met first
        site.requestFactory = bounded_request(2 * options.max_payload)
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.url = f"http://127.0.0.1:{self.port.getHost().port}"

    async def run(self, scenario: str, **env) -> dict:
        out, err, code = await utils.getProcessOutputAndValue(
            NODE, [str(JS / "client.mjs"), scenario, self.url], env={**os.environ, **env}, path=str(JS)
        )
        lines = out.decode().strip().splitlines()
        result = orjson.loads(lines[-1]) if lines else {"error": err.decode()}
        assert code == 0 and "error" not in result, f"{scenario}: {result.get('error')}\n{err.decode()}"
        return result

    async def settle(self) -> None:
        """Wait until every session has gone (the client closed), so nothing outlives the test."""
        for _ in range(200):
            if not self.sio.engine.sessions:
                await _sleep(0)  # handlers hear disconnected() in a later turn
                return
            await _sleep(0.02)
        raise AssertionError(f"sessions still open: {list(self.sio.engine.sessions.values())}")

    async def stop(self) -> None:
        self.sio.close_all()
        await self.settle()
        await self.port.stopListening()


@pytest_twisted.async_yield_fixture
async def server():
    server = Server()
    yield server
    await server.stop()


@pytest_twisted.ensureDeferred
async def test_default_transports_poll_first_then_upgrade_to_a_websocket(server):
    need_node()
    got = await server.run("default")
    assert got["first"] == "polling" and got["upgradedTo"] == "websocket"
    assert got["hello"]["user"] == "kim"  # sent over polling or, if the upgrade was quicker, the WebSocket
    assert got["echo"] == ["over", {"the": ["websocket"]}]
    assert got["reply"] == 1  # emitWithAck resolves with the ack's first argument
    # the server saw the events arrive over the WebSocket it upgraded to
    assert ("echo", "websocket") in server.app.events
    await server.settle()
    assert server.app.disconnects == [("kim", "client namespace disconnect")]


@pytest_twisted.ensureDeferred
async def test_websocket_only_clients_never_poll(server):
    need_node()
    got = await server.run("websocket")
    assert got == {"transport": "websocket", "reply": "ws"}
    assert server.app.events == [("echo", "websocket")]


@pytest_twisted.ensureDeferred
async def test_auth_by_name_and_password_is_accepted_and_a_bad_key_gets_connect_error(server):
    need_node()
    assert (await server.run("password"))["hello"]["user"] == "ann"
    refused = await server.run("refused")
    assert refused == {"message": "invalid session key", "data": {"code": 4010}, "active": False}
    await server.settle()
    assert server.app.disconnects == [("ann", "client namespace disconnect")]


@pytest_twisted.ensureDeferred
async def test_acks_carry_the_reply_and_an_error_value(server):
    need_node()
    got = await server.run("acks")
    assert got["ok"] == {"n": 1}
    assert got["failed"] == {"error": {"code": 4001, "message": "refused: why"}}
    assert got["viaCallback"] == {"error": {"code": 4001, "message": "refused: cb"}}
    assert got["withTimeout"] == "t"
    assert got["raised"] == {"error": {"message": "server error"}}  # the handler raised: ERROR_ACK


@pytest.mark.parametrize("transport", ["polling", "websocket"])
@pytest_twisted.ensureDeferred
async def test_binary_attachments_round_trip(server, transport):
    need_node()
    got = await server.run("binary", SIO_TRANSPORT=transport)
    media = [0, 1, 2, 250, 255, 0x1E, 10]
    assert got["transport"] == transport
    assert got["reply"] == {"name": "a.png", "size": 7, "reversed": media[::-1]}
    assert got["event"] == {"name": "back", "data": media + list(b"second"), "isBuffer": True}


@pytest_twisted.ensureDeferred
async def test_a_server_disconnect_ends_the_socket_and_the_client_stays_away(server):
    need_node()
    got = await server.run("kick")
    assert got == {"reason": "io server disconnect", "connected": False, "active": False}
    await server.settle()
    assert server.app.disconnects == [("kim", "server namespace disconnect")]


@pytest_twisted.ensureDeferred
async def test_pings_keep_a_quiet_client_connected_over_several_intervals(server):
    need_node()
    got = await server.run("heartbeat", SIO_WAIT_MS="1500")
    assert got["pings"] >= 4  # every 0.25 s for 1.5 s
    assert got["disconnects"] == 0 and got["sameSid"] and got["reply"] == "still here"
    assert got["transport"] == "websocket"


@pytest_twisted.ensureDeferred
async def test_the_client_reconnects_after_the_server_drops_it(server):
    need_node()
    got = await server.run("reconnect")
    assert got["reason"] == "transport close"
    assert got["first"] != got["second"] and got["reply"] == "back"
    await server.settle()
    assert [reason for _, reason in server.app.disconnects] == ["transport close", "client namespace disconnect"]


# -- the HTTP edges, with treq (on connections that close after each request: nothing outlives a test)


def _url(server, query: str) -> str:
    return f"{server.url}/socket.io/?{query}"


class _treq:
    @staticmethod
    def get(url, **kwargs):
        return treq.get(url, pool=HTTPConnectionPool(reactor, persistent=False), **kwargs)

    @staticmethod
    def post(url, **kwargs):
        return treq.post(url, pool=HTTPConnectionPool(reactor, persistent=False), **kwargs)


async def _handshake(server) -> str:
    response = await _treq.get(_url(server, "EIO=4&transport=polling"))
    assert response.code == 200
    body = await response.text()
    assert body[0] == "0"
    return orjson.loads(body[1:])["sid"]


@pytest_twisted.ensureDeferred
async def test_the_handshake_advertises_the_options(server):
    response = await _treq.get(_url(server, "EIO=4&transport=polling&t=abc"))
    assert response.headers.getRawHeaders("content-type") == ["text/plain; charset=UTF-8"]
    assert orjson.loads((await response.text())[1:]) == {
        "sid": orjson.loads((await response.text())[1:])["sid"],
        "upgrades": ["websocket"],
        "pingInterval": 250,
        "pingTimeout": 500,
        "maxPayload": 100_000,
    }
    for query, code in [("transport=polling", 5), ("EIO=3&transport=polling", 5), ("EIO=4&transport=carrier", 0)]:
        response = await _treq.get(_url(server, query))
        assert response.code == 400 and (await response.json())["code"] == code
    response = await _treq.get(_url(server, "EIO=4&transport=polling&sid=nope"))
    assert response.code == 400 and await response.json() == {"code": 1, "message": "Session ID unknown"}
    response = await _treq.post(_url(server, "EIO=4&transport=polling"), data=b"40")
    assert response.code == 400 and (await response.json())["code"] == 2


@pytest_twisted.ensureDeferred
async def test_a_post_larger_than_max_payload_is_refused_and_ends_the_session(server):
    sid = await _handshake(server)
    response = await _treq.post(_url(server, f"EIO=4&transport=polling&sid={sid}"), data=b"4" + b"x" * 100_000)
    assert response.code == 413
    assert (await response.json())["message"] == "a payload is at most 100000 bytes"
    response = await _treq.get(_url(server, f"EIO=4&transport=polling&sid={sid}"))
    assert response.code == 400  # gone


@pytest_twisted.ensureDeferred
async def test_a_foreign_origin_is_refused(server):
    response = await _treq.get(_url(server, "EIO=4&transport=polling"), headers={"Origin": "https://evil.example"})
    assert response.code == 403 and (await response.json())["code"] == 4
    assert not server.sio.engine.sessions
    local = f"http://127.0.0.1:{server.port.getHost().port}"  # this listener's own page
    response = await _treq.get(_url(server, "EIO=4&transport=polling"), headers={"Origin": local})
    assert response.code == 200
    await response.content()


@pytest_twisted.ensureDeferred
async def test_sessions_per_address_are_bounded(server):
    sids = [await _handshake(server) for _ in range(8)]
    response = await _treq.get(_url(server, "EIO=4&transport=polling"))
    assert response.code == 429 and (await response.json())["code"] == 4
    # one ends (the client says close): a place frees up
    response = await _treq.post(_url(server, f"EIO=4&transport=polling&sid={sids[0]}"), data=b"1")
    assert response.code == 200 and await response.text() == "ok"
    await _handshake(server)


@pytest_twisted.ensureDeferred
async def test_a_session_that_stops_polling_is_closed_after_interval_plus_timeout(server):
    sid = await _handshake(server)
    assert sid in server.sio.engine.sessions
    await _sleep(0.25 + 0.5 + 0.2)
    assert sid not in server.sio.engine.sessions
    response = await _treq.get(_url(server, f"EIO=4&transport=polling&sid={sid}"))
    assert response.code == 400


# -- the WebSocket side, with Autobahn's client


async def ws_open(server: Server) -> WSClient:
    port = server.port.getHost().port
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket")
    factory.protocol = WSClient
    client = await endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    await client.opened.addTimeout(TIMEOUT, reactor)
    assert (await client.raw()).startswith(b'0{"sid":')
    client.sendMessage(b'40{"token":"good-key"}')
    assert (await client.raw()).startswith(b'40{"sid":')
    assert (await client.raw()).startswith(b'42["welcome",')
    return client


@pytest_twisted.ensureDeferred
async def test_a_websocket_message_over_max_payload_is_closed_with_1009(server):
    client = await ws_open(server)
    client.sendMessage(b'42["echo","' + b"x" * 99_980 + b'"]')  # 99 996 bytes: under maxPayload
    assert (await client.raw()).startswith(b'42["echo","xxx')
    client.sendMessage(b'42["echo","' + b"x" * 100_000 + b'"]')
    assert await client.closed.addTimeout(TIMEOUT, reactor) == 1009
    await server.settle()
    assert server.app.disconnects == [("kim", "transport close")]


@pytest_twisted.ensureDeferred
async def test_a_websocket_client_that_stops_reading_is_dropped():
    server = Server(EngineIOOptions(ping_interval=10.0, ping_timeout=5.0, max_outgoing_bytes=256 << 10))
    try:
        client = await ws_open(server)
        client.transport.pauseProducing()  # reads nothing more
        [socket] = server.app.sockets
        sent = 0
        while socket.connected and sent < 64 << 20:
            for _ in range(50):
                socket.emit("flood", "x" * 10_000)
            sent += 50 * 10_000
            await _sleep(0)
        assert not socket.connected, f"still connected after {sent} bytes"
        await server.settle()
        assert server.app.disconnects == [("kim", "slow client")]
        client.transport.resumeProducing()
        await client.closed.addTimeout(TIMEOUT, reactor)
    finally:
        await server.stop()
