"""The WebSocket transport at /ws: every dialect over it, token auth, Origin, size limits, WSS, the idle timeout."""

import dataclasses
import re

import orjson
import pytest
import pytest_twisted
from twisted.internet import defer, reactor, ssl

from chatdaemon import errors
from tests.conftest import TIMEOUT, _sleep, make_config, start_service, typed_user
from tests.wsclient import raw_handshake, registered_key, ws_connect


def typed(kind, **payload):
    return {"type": kind, "timestamp": 0, "payload": payload}


async def ws_typed_user(service, name, password="secret", **kw):
    client = await ws_connect(service, **kw)
    client.send(typed("REGISTER_REQUEST", username=name, passwordHash=password))
    assert (await client.next(type="REGISTER_RESPONSE"))["payload"]["code"] == 0
    client.send(typed("LOGIN_REQUEST", username=name, passwordHash=password))
    login = await client.next(type="LOGIN_RESPONSE")
    assert login["payload"]["code"] == 0
    client.key = login["payload"]["sessionKey"]
    return client


@pytest_twisted.ensureDeferred
async def test_typed_and_text_over_websocket_chat_with_a_line_user(chatd):
    ws = await ws_typed_user(chatd, "wendy")
    line = await typed_user(chatd, "larry")
    text = await ws_connect(chatd)
    text.say("/register tess pw")
    await text.text("* registered")
    text.say("/login tess pw")
    await text.text("* welcome, tess")
    for client in (ws,):
        client.send(typed("USER_JOIN", room="lobby"))
        await client.next(type="USER_JOIN")
    line.send("USER_JOIN", room="lobby")
    await line.payload("USER_JOIN")
    text.say("/join lobby")
    await text.text("* you are in #lobby")
    ws.send(typed("TEXT_MESSAGE", receiver="lobby", content="hello from ws"))
    assert (await ws.next(type="MESSAGE_ACK"))["payload"]["code"] == 0
    assert (await line.payload("TEXT_MESSAGE"))["content"] == "hello from ws"
    assert "hello from ws" in await text.text("[#lobby] <wendy>")
    text.say("hi from a browser-ish text user")
    got = await ws.next(type="TEXT_MESSAGE")
    assert got["payload"]["content"] == "hi from a browser-ish text user" and got["payload"]["sender"] == "tess"
    for client in (ws, text):
        await client.close()
    await line.close()


@pytest_twisted.ensureDeferred
async def test_token_auth_at_the_handshake_by_query_and_by_bearer(chatd):
    first = await ws_typed_user(chatd, "kim")
    key = first.key
    await first.close()
    by_query = await ws_connect(chatd, query=f"?token={key}&dialect=typed")
    assert (await by_query.next(type="CONNECTION_ESTABLISHED"))["payload"]["dialect"] == "typed"
    login = await by_query.next(type="LOGIN_RESPONSE")
    assert login["payload"]["username"] == "kim" and login["payload"]["success"] is True
    by_bearer = await ws_connect(chatd, headers={"Authorization": f"Bearer {key}"})
    by_bearer.send(typed("USER_JOIN", room="lobby"))  # the first frame: logged in first, then handled
    assert (await by_bearer.next(type="LOGIN_RESPONSE"))["payload"]["username"] == "kim"
    assert (await by_bearer.next(type="USER_JOIN"))["payload"]["code"] == 0
    await by_query.close()
    await by_bearer.close()


async def logged_in(client, dialect: str) -> str:
    """Wait for the dialect's answer to the handshake's token; the name it logged in."""
    if dialect == "text":
        return re.match(r"\* welcome, ([^!]+)!", await client.text("* welcome"))[1]
    if dialect == "typed":
        return (await client.next(type="LOGIN_RESPONSE"))["payload"]["username"]
    if dialect == "action":
        return (await client.next(action="login_success"))["data"]["chatid"]
    if dialect == "events":
        return (await client.next(event="SERVER_AUTH_OK"))["data"]["username"]
    return (await client.next(type="USER:LOGGED_IN"))["data"]["username"]


async def token_client(service, dialect: str, name: str):
    """A WebSocket of `dialect`, logged in as `name` by the session key in the handshake's query."""
    client = await ws_connect(service, f"?token={await registered_key(service, name)}&dialect={dialect}")
    client.dialect = dialect
    assert await logged_in(client, dialect) == name
    return client


DIALECTS = ["typed", "text", "action", "events", "colon"]


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest_twisted.ensureDeferred
async def test_every_dialect_logs_in_by_the_handshakes_token(chatd, dialect):
    client = await token_client(chatd, dialect, f"{dialect}-key")
    await client.sync()  # and goes on: the login left the connection in order
    await client.close()


@pytest_twisted.ensureDeferred
async def test_a_bad_token_is_refused_at_the_handshake(chatd):
    status = await raw_handshake(chatd, "/ws?token=not-a-key")
    assert status.startswith(b"HTTP/1.1 401")
    status = await raw_handshake(chatd, "/ws", {"Authorization": "Bearer nope"})
    assert status.startswith(b"HTTP/1.1 401")
    status = await raw_handshake(chatd, "/ws?dialect=klingon")
    assert status.startswith(b"HTTP/1.1 400")


@pytest_twisted.ensureDeferred
async def test_a_foreign_origin_is_refused_and_a_local_one_accepted(chatd):
    assert (await raw_handshake(chatd, "/ws", {"Origin": "https://evil.example"})).startswith(b"HTTP/1.1 400")
    assert (await raw_handshake(chatd, "/ws", {"Origin": "null"})).startswith(b"HTTP/1.1 400")
    assert (await raw_handshake(chatd, "/ws", {"Origin": "http://127.0.0.1:8080"})).startswith(b"HTTP/1.1 101")
    client = await ws_connect(chatd, origin="http://localhost:3000")
    await client.close()


@pytest_twisted.ensureDeferred
async def test_message_sizes_binary_messages_and_the_larger_bound_of_file_transfer_frames(chatd):
    client = await ws_typed_user(chatd, "big")
    client.sendMessage(b"[1]", isBinary=True)
    assert (await client.next(type="ERROR"))["payload"]["code"] == 7002
    # logged in, in a dialect that carries files: a message over http.max_message_bytes is read, and
    # refused (7005) unless it is a file-transfer frame; the connection stays
    client.send(typed("TEXT_MESSAGE", receiver="lobby", content="x" * 70000))
    assert (await client.next(type="ERROR"))["payload"]["code"] == 7005
    client.send(typed("PING", alive=True))
    assert (await client.next(type="PONG"))["payload"] == {"alive": True}
    # past limits.max_transfer_frame_bytes: closed with 1009
    limit = chatd.config.limits.max_transfer_frame_bytes
    client.send(typed("MEDIA_MESSAGE_DATA", mediaId="m", chunkIndex=1, totalChunks=1, data="A" * limit))
    assert await client.closed == 1009
    # before a login the ordinary bound holds
    anonymous = await ws_connect(chatd)
    anonymous.send(typed("PING", pad="x" * 70000))
    assert await anonymous.closed == 1009
    other = await ws_connect(chatd)  # the server is fine
    await other.close()


@pytest_twisted.ensureDeferred
async def test_wss_through_a_tls_endpoint_string(data_dir, tls_files):
    key, cert, pem = tls_files
    config = make_config(data_dir)
    from dataclasses import replace

    config = replace(config, http=(f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",))
    service = await start_service(config)
    try:
        client = await ws_typed_user(service, "secure", tls_root=ssl.Certificate.loadPEM(pem))
        client.send(typed("USER_JOIN", room="vault"))
        assert (await client.next(type="USER_JOIN"))["payload"]["code"] == 0
        await client.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_shutdown_closes_websocket_sessions(data_dir):
    service = await start_service(make_config(data_dir))
    client = await ws_typed_user(service, "last")
    await service.stopService()
    await client.closed
    assert not service.connections.sessions


def test_h2_is_not_installed():
    """twisted.web turns HTTP/2 on when h2 is importable, and WebSocketResource cannot take over an h2 stream."""
    import importlib.util

    assert importlib.util.find_spec("h2") is None


@pytest_twisted.ensureDeferred
async def test_a_websocket_client_that_stops_reading_is_dropped_and_others_keep_chatting(data_dir):
    config = make_config(data_dir, outbound_buffer_bytes=64 * 1024, slow_consumer_grace=0.5, max_message_chars=4000)
    service = await start_service(config)
    try:
        sender = await typed_user(service, "sender")
        await (await typed_user(service, "sleeper")).close()
        sender.send("USER_JOIN", room="busy")
        await sender.payload("USER_JOIN")
        sleeper = await ws_connect(service)
        sleeper.send(
            {"type": "LOGIN_REQUEST", "timestamp": 0, "payload": {"username": "sleeper", "passwordHash": "secret"}}
        )
        assert (await sleeper.next(type="LOGIN_RESPONSE"))["payload"]["code"] == 0
        sleeper.send({"type": "USER_JOIN", "timestamp": 0, "payload": {"room": "busy"}})
        await sleeper.next(type="USER_JOIN")
        sleeper.transport.pauseProducing()  # stops reading: its socket buffers fill up
        body, sent = "x" * 3900, 0
        while service.bus.online("sleeper"):
            assert sent < 20000, "the sleeping WebSocket was never dropped"
            for _ in range(50):
                sender.send("TEXT_MESSAGE", receiver="busy", content=body)
            for _ in range(50):
                assert (await sender.payload("MESSAGE_ACK"))["code"] == 0  # the sender is never stalled
            sent += 50
        assert sent < 20000 and not [s for s in service.connections.sessions if s.kind == "ws"]
        sleeper.transport.resumeProducing()
        await sleeper.closed.addTimeout(10, reactor)
        await sender.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_with_compression_on_a_message_that_inflates_past_the_limit_closes_with_1009(data_dir):
    import dataclasses

    from autobahn.twisted.websocket import WebSocketClientFactory
    from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateResponseAccept
    from twisted.internet import endpoints

    from tests.wsclient import WSClient, http_port

    config = make_config(data_dir)
    config = dataclasses.replace(config, http_options=dataclasses.replace(config.http_options, compression=True))
    service = await start_service(config)
    try:
        port = http_port(service)
        factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}/ws")
        factory.protocol = WSClient
        factory.setProtocolOptions(
            perMessageCompressionOffers=[PerMessageDeflateOffer()],
            perMessageCompressionAccept=lambda response: PerMessageDeflateResponseAccept(response),
        )
        client = await endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
        await client.opened.addTimeout(10, reactor)
        assert client._perMessageCompress is not None  # deflate was agreed
        client.send({"type": "PING", "timestamp": 0, "payload": {}})
        assert (await client.next(type="PONG"))["type"] == "PONG"  # compressed frames work
        bomb = (
            b'{"type": "PING", "payload": {"pad": "'
            + b"0" * (20 * service.config.http_options.max_message_bytes)
            + b'"}}'
        )
        client.sendMessage(bomb, isBinary=False)  # a few KiB on the wire
        await client.closed.addTimeout(10, reactor)
        assert client.close_code == 1009
    finally:
        await service.stopService()


def farewell_code(dialect: str, raw: bytes) -> int | None:
    """The code of `raw` if it is the dialect's last frame before the server closes (its farewell)."""
    if dialect == "text":
        found = re.match(rb"! (\d+) ", raw)
        return int(found[1]) if found else None
    frame = orjson.loads(raw)
    if dialect == "typed":
        return frame["payload"]["code"] if frame.get("type") == "CONNECTION_CLOSED" else None
    if dialect == "action":
        return frame.get("code") if frame.get("action") == "error" else None
    if dialect == "events":
        return frame["data"]["code"] if frame.get("event") == "SERVER_ERROR" and frame["data"].get("closing") else None
    return frame["data"]["code"] if frame.get("type") == "ERROR" and frame["data"].get("closing") else None


IDLE = 1.0  # limits.idle_timeout in these tests, seconds


@pytest_twisted.ensureDeferred
async def test_a_logged_in_websocket_that_says_nothing_is_closed_with_its_dialects_notice(data_dir):
    service = await start_service(make_config(data_dir, idle_timeout=IDLE))
    try:
        clients = {dialect: await token_client(service, dialect, f"silent-{dialect}") for dialect in DIALECTS}
        for client in clients.values():
            await client.sync()  # the last thing each one says
        quiet_since = reactor.seconds()
        await defer.gatherResults([c.closed.addTimeout(TIMEOUT, reactor) for c in clients.values()])
        assert reactor.seconds() - quiet_since >= IDLE * 0.9  # not before the timeout (the check ticks at IDLE / 4)
        for dialect, client in clients.items():
            last = list(client.messages)[-1:]
            assert last and farewell_code(dialect, last[0]) == errors.IDLE_TIMEOUT, (dialect, last)
        assert not [s for s in service.connections.sessions if s.kind == "ws"]
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_websocket_that_pings_is_not_idle_while_a_silent_one_beside_it_is_closed(data_dir):
    service = await start_service(make_config(data_dir, idle_timeout=IDLE))
    try:
        pinger = await token_client(service, "events", "pinger")
        silent = await token_client(service, "typed", "silent")
        start = reactor.seconds()
        while reactor.seconds() - start < 3 * IDLE:  # a ping every quarter of the timeout, for three timeouts
            await pinger.sync()
            await _sleep(IDLE / 4)
        await silent.closed.addTimeout(TIMEOUT, reactor)
        assert farewell_code("typed", list(silent.messages)[-1]) == errors.IDLE_TIMEOUT
        assert not pinger.closed.called
        await pinger.sync()
        await pinger.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_websocket_that_only_answers_the_servers_pings_is_not_idle(data_dir):
    """Its pongs (every WebSocket library answers pings by itself) are heard: a page left open stays."""
    config = make_config(data_dir, idle_timeout=IDLE)
    http = dataclasses.replace(config.http_options, auto_ping_interval=IDLE / 4, auto_ping_timeout=IDLE)
    service = await start_service(dataclasses.replace(config, http_options=http))
    try:
        ponger = await token_client(service, "colon", "ponger")
        await _sleep(3 * IDLE)  # says nothing for three timeouts
        assert not ponger.closed.called
        await ponger.sync()
        await ponger.close()
    finally:
        await service.stopService()
