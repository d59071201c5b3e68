"""The WebSocket transport at /ws: every dialect over it, token auth, Origin, size limits, WSS."""

import pytest_twisted
from twisted.internet import ssl

from tests.conftest import make_config, start_service, typed_user
from tests.wsclient import raw_handshake, ws_connect


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
async def test_an_oversized_message_closes_with_1009_and_binary_is_refused(chatd):
    client = await ws_typed_user(chatd, "big")
    client.sendMessage(b"[1]", isBinary=True)
    assert (await client.next(type="ERROR"))["payload"]["code"] == 7002
    client.send(typed("TEXT_MESSAGE", receiver="lobby", content="x" * 70000))
    code = await client.closed
    assert code == 1009
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
    assert not service.line_factory.sessions


def test_h2_is_not_installed():
    """twisted.web turns HTTP/2 on when h2 is importable, and WebSocketResource cannot take over an h2 stream."""
    import importlib.util

    assert importlib.util.find_spec("h2") is None
