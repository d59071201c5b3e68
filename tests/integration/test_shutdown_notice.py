"""SIGTERM's graceful stop (ChatService.stopService) tells every connected client, in its own dialect, that the
server is going down, before the connection closes: ~200 clients of every dialect and transport, some chatting,
some in the middle of logging in, some not reading their output, some that never said which dialect they speak;
IRC clients on the IRC listener, registered or halfway through their registration."""

import re
import socket

import orjson
import pytest_twisted
from twisted.internet import defer, reactor

from chatdaemon import errors
from tests.conftest import TIMEOUT, act, connect, start_service
from tests.integration.test_parity import dialect_user
from tests.integration.test_socketio_chat import node_client
from tests.ircclient import connect_irc, irc_config, irc_user
from tests.wsclient import Http, registered_key, ws_connect

SHUTDOWN = errors.SHUTTING_DOWN


def notice_code(dialect: str | None, raw: bytes) -> int | None:
    """The code of `raw` if it is the dialect's notice (or, with no dialect yet, typed's ERROR shape)."""
    if dialect == "text":
        return SHUTDOWN if raw.startswith(f"! {SHUTDOWN} ".encode()) else None
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    kind = frame.get("type") or frame.get("action") or frame.get("event")
    expected = {"typed": "SERVER_NOTIFICATION", "action": "server_notification", "events": "SERVER_NOTICE",
                "colon": "ERROR", None: "ERROR"}[dialect]  # fmt: skip
    if kind != expected:
        return None
    return (frame.get("payload") or frame.get("data") or {}).get("code")


def irc_told(lines: list[str]) -> bool:
    """Whether an IRC client was sent dialects/irc/encode.py's closing line for the shutdown."""
    return any(re.fullmatch(rf"ERROR :Closing link: .* \(chatd {SHUTDOWN}\)", text) for text in lines)


def told(dialect: str | None, frames: list[bytes]) -> bool:
    """Whether `frames` hold the dialect's notice that the server is shutting down."""
    return any(notice_code(dialect, raw) == SHUTDOWN for raw in frames)


async def rest_login(service, name: str) -> str:
    """Register `name` (password "secret") over REST; a session key."""
    http = Http(service)
    try:
        await http.json("POST", "/register", json={"username": name, "password": "secret"})
        _, login = await http.json("POST", "/login", json={"username": name, "password": "secret"})
    finally:
        await http.close()
    return login["token"]


async def ws_user(service, dialect: str, name: str):
    client = await ws_connect(service, f"?token={await rest_login(service, name)}&dialect={dialect}")
    client.dialect = dialect
    await client.sync()
    return client


@pytest_twisted.ensureDeferred
async def test_every_client_gets_its_dialects_notice_before_the_close(data_dir):
    config = irc_config(data_dir, max_connections_per_ip=1000, outbound_buffer_bytes=16 << 20,
                        slow_consumer_grace=60.0)  # fmt: skip
    service = await start_service(config)
    line_clients, ws_clients, apps, irc_clients = [], [], [], []
    try:
        plan = {"typed": 40, "text": 30, "action": 20, "events": 20, "colon": 20}
        for dialect, count in plan.items():
            for n in range(count):
                client = await dialect_user(service, dialect, f"{dialect}{n}")
                line_clients.append((dialect, client))
        for dialect, count in {"typed": 15, "events": 15, "text": 10, "action": 5, "colon": 5}.items():
            for n in range(count):
                ws_clients.append((dialect, await ws_user(service, dialect, f"ws-{dialect}{n}")))
        for _ in range(10):  # connected, but no first line yet: no dialect
            line_clients.append((None, await connect(service)))
        for n in range(15):
            await rest_login(service, f"irc{n}")
            irc_clients.append(await irc_user(service, f"irc{n}", caps="server-time" if n % 3 else ""))
        for n in range(3):  # registering: a CAP negotiation holds it (and events wait for the welcome)
            client = await connect_irc(service)
            client.send("CAP LS 302", f"NICK half{n}", f"USER half{n} 0 * :Half")
            await client.expect("CAP", "LS")
            irc_clients.append(client)
        for n in range(4):
            key = await registered_key(service, f"sio{n}")
            app = await node_client(service, auth={"token": key}, reconnection=False,
                                    **({"transports": ["websocket"]} if n % 2 else {}))  # fmt: skip
            await app.event("SERVER_AUTH_OK")
            apps.append(app)

        # readers that stop reading while a room fills their output: the server pauses them
        sender = await dialect_user(service, "typed", "loud")
        sender.send("USER_JOIN", room="busy")
        await sender.payload("USER_JOIN")
        stalled = []
        for n in range(5):
            client = await dialect_user(service, "typed", f"stalled{n}")
            client.send("USER_JOIN", room="busy")
            await client.payload("USER_JOIN")
            stalled.append(client)
            # a small send buffer on the server's side of it (a slow path): its output backs up sooner
            (session,) = service.bus.clients(f"stalled{n}")
            session.transport.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        for client in stalled:
            client.transport.pauseProducing()
        for n in range(400):
            sender.send("TEXT_MESSAGE", room="busy", content=f"{n} " + "z" * 4000)
        for _ in range(400):
            await sender.payload("MESSAGE_ACK")
        paused = [s for s in service.connections.sessions if s.outbox._paused]
        assert len(paused) == 5, "the stalled readers' output was never paused"
        line_clients += [("typed", sender)] + [("typed", c) for c in stalled]

        # some in the middle of a login when the stop comes
        for _ in range(10):
            client = await connect(service)
            act(client, "login", chatid="typed0", password="secret")
            line_clients.append(("action", client))

        total = len(line_clients) + len(ws_clients) + len(apps) + len(irc_clients)
        assert total >= 200
        stopping = service.stopService()
        for client in stalled:  # slow readers, not dead ones: they read what is on its way, then the notice
            client.transport.resumeProducing()
        await stopping
        await defer.gatherResults([c.closed.addTimeout(TIMEOUT, reactor) for _, c in line_clients])
        await defer.gatherResults([c.closed.addTimeout(TIMEOUT, reactor) for _, c in ws_clients])
        await defer.gatherResults([c.closed.addTimeout(TIMEOUT, reactor) for c in irc_clients])
        missed = [(d, i) for i, (d, c) in enumerate(line_clients) if not told(d, list(c.lines))]
        missed += [(f"ws {d}", i) for i, (d, c) in enumerate(ws_clients) if not told(d, list(c.messages))]
        missed += [("irc", c.seen[-3:]) for c in irc_clients if not irc_told(c.seen)]
        for app in apps:
            notice = await app.event("SERVER_NOTICE")
            if notice["code"] != SHUTDOWN:
                missed.append(("socket.io", notice))
        assert not missed, f"{len(missed)} of {total} were not told: {missed[:10]}"
    finally:
        for app in apps:
            await app.close()
        if service.running:
            await service.stopService()
