"""Socket.IO apps chat with everyone else: the real npm socket.io-client (tests/js/chat.mjs, driven line by
line) against the whole service, beside line and WebSocket users of other dialects."""

import base64
import dataclasses
import json
import os
from collections import deque
from pathlib import Path

import orjson
import pytest_twisted
from twisted.internet import defer, protocol, reactor

from chatdaemon.admin import Operator
from chatdaemon.core import commands as c
from tests.conftest import TIMEOUT, Arrival, make_config, need, start_service, typed_user
from tests.integration.test_socketio_protocol import MISSING, NODE
from tests.wsclient import Http, http_port, registered_key, ws_connect

CHAT = Path(__file__).resolve().parent.parent / "js" / "chat.mjs"


class NodeChat(protocol.ProcessProtocol):
    """tests/js/chat.mjs: one socket.io-client, commands in, events out (one JSON object per line)."""

    def __init__(self):
        self.got: deque[dict] = deque()
        self._buffer = b""
        self.arrival = Arrival()
        self.ended = defer.Deferred()
        self.errors = b""
        self._acks = 0

    def outReceived(self, data: bytes) -> None:
        *lines, self._buffer = (self._buffer + data).split(b"\n")
        self.got.extend(orjson.loads(line) for line in lines if line)
        self.arrival.wake()

    def errReceived(self, data: bytes) -> None:
        self.errors += data

    def processEnded(self, reason) -> None:
        self.ended.callback(None)
        self.arrival.wake()

    def command(self, **command) -> None:
        self.transport.write(orjson.dumps(command) + b"\n")

    def emit(self, name: str, data, binary: bool = False) -> None:
        self.command(emit=name, data=data, binary=binary)

    async def ask(self, name: str, data) -> object:
        """Emit with an acknowledgement callback; the value it was called with."""
        self._acks += 1
        self.command(emit=name, data=data, ack=self._acks)
        return (await self.next(ack=self._acks))["value"]

    async def next(self, **fields) -> dict:
        """The next output line whose fields include `fields` (others are skipped)."""
        while True:
            while self.got:
                line = self.got.popleft()
                if all(line.get(k) == v for k, v in fields.items()):
                    return line
            if self.ended.called:
                raise AssertionError(f"the client ended while waiting for {fields}: {self.errors.decode()}")
            await self.arrival.wait(TIMEOUT)

    async def event(self, name: str) -> dict:
        return (await self.next(event=name))["data"]

    async def close(self) -> None:
        if not self.ended.called:
            self.command(exit=True)
            await self.ended.addTimeout(TIMEOUT, reactor)


async def node_client(service, **options) -> NodeChat:
    need(f"SOCKET.IO CLIENT TESTS: {MISSING}" if MISSING else "")
    client = NodeChat()
    url = f"http://127.0.0.1:{http_port(service)}"
    reactor.spawnProcess(client, NODE, [NODE, str(CHAT), url, json.dumps(options)], env=os.environ)
    return client


@pytest_twisted.ensureDeferred
async def test_polling_then_upgrade_chats_with_a_line_user_and_a_page_user(chatd):
    await registered_key(chatd, "sio")
    page_key = await registered_key(chatd, "page")
    app = await node_client(chatd, auth={"username": "sio", "password": "pw"})
    assert await app.next(open="polling")  # socket.io-client's default: polling first ...
    await app.next(upgrade="websocket")  # ... then the upgrade
    assert (await app.event("SERVER_AUTH_OK"))["username"] == "sio"
    joined = await app.ask("CLIENT_CHAT_JOIN", {"cid": "lobby"})
    assert joined[0]["event"] == "SERVER_CHAT_JOINED" and joined[0]["data"]["conversation"]["cid"] == "lobby"
    line = await typed_user(chatd, "liner")
    line.send("USER_JOIN", room="lobby")
    await line.payload("USER_JOIN")
    page = await ws_connect(chatd, f"?token={page_key}&dialect=events")  # what the web page speaks
    page.send({"event": "CLIENT_CHAT_JOIN", "data": {"cid": "lobby"}})
    await page.next(event="SERVER_CHAT_JOINED")

    line.send("TEXT_MESSAGE", room="lobby", content="from the line")
    await line.payload("MESSAGE_ACK")
    received = await app.event("SERVER_CHAT_RECEIVE")
    assert (received["message"]["sender"], received["message"]["text"]) == ("liner", "from the line")

    reply = await app.ask("CLIENT_CHAT_SEND", {"cid": "lobby", "text": "from socket.io", "tempId": "t1"})
    sent = [r for r in reply if r["event"] == "SERVER_CHAT_MESSAGE_STATUS" and r["data"]["status"] == "sent"]
    assert sent and sent[0]["data"]["tempId"] == "t1"
    assert (await line.payload("TEXT_MESSAGE"))["content"] == "from socket.io"
    seen = [(await page.next(event="SERVER_CHAT_RECEIVE"))["data"]["message"] for _ in range(2)]
    assert [(m["sender"], m["text"]) for m in seen] == [("liner", "from the line"), ("sio", "from socket.io")]

    page.send({"event": "CLIENT_CHAT_SEND", "data": {"cid": "lobby", "text": "from the page"}})
    assert (await app.event("SERVER_CHAT_RECEIVE"))["message"]["text"] == "from the page"
    await app.close()
    await page.close()
    await line.close()


@pytest_twisted.ensureDeferred
async def test_websocket_only_colon_app_with_token_acks_errors_and_binary_media(chatd):
    key = await registered_key(chatd, "gallery")
    app = await node_client(chatd, auth={"token": key, "dialect": "colon"}, transports=["websocket"])
    assert await app.next(open="websocket")
    assert (await app.event("USER:LOGGED_IN"))["username"] == "gallery"
    assert (await app.ask("GROUP:JOIN_GROUP", "photos"))[0]["type"] == "GROUP:USER_JOINED"
    # a refusal comes back as the ack's error value
    refused = await app.ask("CHAT:SEND_MESSAGE_TEXT", {"groupId": "nowhere", "text": "hello?"})
    assert refused["error"]["code"] == 8001
    # an image as a binary attachment, stored in the one file store
    image = os.urandom(3000)
    app.emit(
        "CHAT:SEND_MESSAGE_IMAGE",
        {"groupId": "photos", "name": "pic.png", "mime": "image/png", "data": base64.b64encode(image).decode()},
        binary=True,
    )
    message = await app.event("CHAT:MESSAGE_RETURN_IMAGE")
    assert message["file"]["size"] == len(image) and message["file"]["name"] == "pic.png"
    http = Http(chatd)
    try:
        response, body = await http.call("GET", message["file"]["url"], token=key)
        assert response.code == 200 and body == image
    finally:
        await http.close()
    await app.close()


@pytest_twisted.ensureDeferred
async def test_a_refused_login_is_a_connect_error(chatd):
    await registered_key(chatd, "someone")
    app = await node_client(chatd, auth={"username": "someone", "password": "wrong"}, reconnection=False)
    error = (await app.next(connect_error={"message": "invalid credentials", "data": {"code": 2001}}))["connect_error"]
    assert error == {"message": "invalid credentials", "data": {"code": 2001}}
    await app.close()
    app = await node_client(chatd, auth={"token": "forged"}, reconnection=False)
    assert await app.next(connect_error={"message": "unknown or revoked session key", "data": {"code": 2001}})
    await app.close()


@pytest_twisted.ensureDeferred
async def test_a_kick_reaches_the_app_and_it_stays_away(chatd):
    key = await registered_key(chatd, "rowdy")
    app = await node_client(chatd, auth={"token": key})
    await app.event("SERVER_AUTH_OK")
    assert await chatd.core.execute(Operator("root"), c.Kick("rowdy", "calm down")) == 1
    assert (await app.event("SERVER_NOTICE")) == {"code": 7014, "message": "calm down"}
    assert await app.next(disconnect="io server disconnect")  # told to go: socket.io-client does not come back
    await app.close()


@pytest_twisted.ensureDeferred
async def test_after_a_daemon_restart_the_app_reconnects_and_loses_nothing(data_dir):
    service = await start_service(make_config(data_dir))
    port = http_port(service)
    config = dataclasses.replace(make_config(data_dir), http=(f"tcp:{port}:interface=127.0.0.1",))
    key = await registered_key(service, "steady")
    app = await node_client(service, auth={"token": key})
    await app.event("SERVER_AUTH_OK")
    await app.ask("CLIENT_CHAT_JOIN", {"cid": "news"})
    poster = await typed_user(service, "poster")
    poster.send("USER_JOIN", room="news")
    await poster.payload("USER_JOIN")
    poster.send("TEXT_MESSAGE", room="news", content="before")
    await poster.payload("MESSAGE_ACK")
    assert (await app.event("SERVER_CHAT_RECEIVE"))["message"]["text"] == "before"
    await service.stopService()  # every client is told, then dropped: the app goes on trying
    assert (await app.event("SERVER_NOTICE"))["code"] == 7012
    await app.next(disconnect="transport close")
    service = await start_service(config)
    try:
        poster = await typed_user(service, "poster", register=False)
        for n in range(5):  # racing the app's reconnection: live or replayed, each arrives once
            poster.send("TEXT_MESSAGE", room="news", content=f"after {n}")
            await poster.payload("MESSAGE_ACK")
        await app.next(open="polling")
        texts = []
        while len(texts) < 5:
            texts.append((await app.event("SERVER_CHAT_RECEIVE"))["message"]["text"])
        assert texts == [f"after {n}" for n in range(5)]
        history = await app.ask("CLIENT_CHAT_HISTORY", {"cid": "news"})
        assert [m["text"] for m in history[0]["data"]["messages"]] == ["before", *texts]
        await app.close()
        await poster.close()
    finally:
        await service.stopService()
