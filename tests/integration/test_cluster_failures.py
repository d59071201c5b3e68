"""A cluster when parts fail: Redis restarted under load, PostgreSQL out of reach, a node killed with -9.

Redis is a redis-server of the test's own (tests/services.py: spare_redis), stopped and started again
on its port; PostgreSQL is the shared server, made unreachable through a TCP proxy that the test cuts
and restores (the server itself is never stopped); a killed node is a `twistd -n chatd` process.
"""

import dataclasses
import os
import signal
import time

import orjson
import pytest_twisted
from twisted.internet import reactor
from twisted.protocols.portforward import ProxyFactory

from chatdaemon import errors
from chatdaemon.config import Bus, Node, Store
from tests.conftest import make_config, start_service, typed_user
from tests.integration.test_cluster import eventually, until_pong
from tests.integration.test_twistd import FAST, Conversation, _twistd, _wait_for
from tests.services import PG_HOST, PG_PORT, pg_url, redis_bus, redis_prefix, spare_redis  # noqa: F401
from tests.wsclient import Http

HEARTBEAT, EXPIRY = 0.2, 1.0  # [bus] heartbeat and expiry of these nodes: a dead node's users go offline within both


def node(tmp_path, name, pg, redis_url, prefix, **store):
    return dataclasses.replace(
        make_config(tmp_path / name),
        store=Store(url=pg, pool_size=2, **store),
        bus=Bus(url=redis_url, prefix=prefix, heartbeat=HEARTBEAT, expiry=EXPIRY),
        node=Node(id=name),
    )


@pytest_twisted.ensureDeferred
async def test_redis_restarted_under_load_loses_nothing_acknowledged(tmp_path, pg_url, spare_redis):  # noqa: F811
    prefix = redis_prefix()
    n1 = await start_service(node(tmp_path, "n1", pg_url, spare_redis.url, prefix))
    n2 = await start_service(node(tmp_path, "n2", pg_url, spare_redis.url, prefix))
    try:
        await eventually(lambda: n1.bus._remote and n2.bus._remote)
        sender, reader = await typed_user(n1, "sender"), await typed_user(n2, "reader")
        for client in (sender, reader):
            client.send("USER_JOIN", room="load")
            await client.payload("USER_JOIN")
        acked = []

        async def send(n: int) -> None:
            for i in range(n):
                sender.send("TEXT_MESSAGE", receiver="load", content=f"m{len(acked) + i}")
            for _ in range(n):
                ack = await sender.payload("MESSAGE_ACK")  # the sender's node serves it, Redis or not
                assert ack["code"] == 0
                acked.append(ack["messageId"])

        await send(50)
        spare_redis.stop()
        await send(50)  # while Redis is down
        await eventually(lambda: not n1.bus._up and not n2.bus._up)
        await send(50)
        spare_redis.start()
        await eventually(lambda: n1.bus._up and n2.bus._up)
        await send(50)
        got = []
        while len(got) < len(acked):
            got.append((await reader.frame("TEXT_MESSAGE"))["payload"]["messageId"])
        assert got == acked  # every one, in order, once (the watermark keeps what was read from repeating)
        assert not [f for f in await until_pong(reader) if f["type"] == "TEXT_MESSAGE"]
        await sender.close()
        await reader.close()
    finally:
        await n1.stopService()
        await n2.stopService()


@pytest_twisted.ensureDeferred
async def test_a_node_serves_its_own_users_while_redis_is_down_then_others_catch_up(tmp_path, pg_url, spare_redis):  # noqa: F811
    prefix = redis_prefix()
    n1 = await start_service(node(tmp_path, "n1", pg_url, spare_redis.url, prefix))
    n2 = await start_service(node(tmp_path, "n2", pg_url, spare_redis.url, prefix))
    try:
        await eventually(lambda: n1.bus._remote and n2.bus._remote)
        ann, bob = await typed_user(n1, "ann"), await typed_user(n1, "bob")  # both on n1
        cal = await typed_user(n2, "cal")  # on the other node
        for client in (ann, bob, cal):
            client.send("USER_JOIN", room="lobby")
            await client.payload("USER_JOIN")
        await eventually(lambda: all(n.core.state.rooms["lobby"].members == {"ann", "bob", "cal"} for n in (n1, n2)))
        spare_redis.stop()
        await eventually(lambda: not n1.bus._up and not n2.bus._up)
        for_cal = []  # the ids of what cal is to get once Redis is back

        async def send(sender, to: str, content: str, receiver=None) -> int:
            sender.send("TEXT_MESSAGE", receiver=to, content=content)
            ack = await sender.payload("MESSAGE_ACK")
            assert ack["code"] == 0
            if receiver is not None:  # on the same node: live, Redis or not
                got = await receiver.payload("TEXT_MESSAGE")
                assert (got["content"], got["messageId"]) == (content, ack["messageId"])
            return ack["messageId"]

        await send(ann, "bob", "ann to bob, Redis down", bob)
        await send(bob, "ann", "bob to ann, Redis down", ann)
        for_cal.append(await send(ann, "lobby", "ann to the room", bob))
        for_cal.append(await send(bob, "lobby", "bob to the room", ann))
        for_cal.append(await send(ann, "cal", "ann to cal, on the other node"))
        for_cal.append(await send(ann, "lobby", "ann to the room again", bob))
        # nothing crosses to the other node while Redis is down
        assert not [f for f in await until_pong(cal) if f["type"] == "TEXT_MESSAGE"]
        spare_redis.start()
        await eventually(lambda: n1.bus._up and n2.bus._up)
        got = [(await cal.payload("TEXT_MESSAGE"))["messageId"] for _ in for_cal]
        assert got == for_cal  # each, in order, once (read again from PostgreSQL after its watermark)
        assert not [f for f in await until_pong(cal) if f["type"] == "TEXT_MESSAGE"]
        for client in (ann, bob):  # and nothing twice on n1's own connections either
            assert not [f for f in await until_pong(client) if f["type"] == "TEXT_MESSAGE"]
        for client in (ann, bob, cal):
            await client.close()
    finally:
        await n1.stopService()
        await n2.stopService()


@pytest_twisted.ensureDeferred
async def test_with_postgresql_out_of_reach_sends_are_refused_and_health_is_not_ready(tmp_path, pg_url, redis_bus):  # noqa: F811
    proxy_factory = CuttableProxy(PG_HOST, PG_PORT)
    port = reactor.listenTCP(0, proxy_factory, interface="127.0.0.1")
    number = port.getHost().port
    through = pg_url.replace(f"{PG_HOST}:{PG_PORT}", f"127.0.0.1:{number}")
    url, prefix = redis_bus
    service = await start_service(node(tmp_path, "n1", through, url, prefix, timeout=1.0))
    http = Http(service)
    try:
        alice = await typed_user(service, "alice")
        alice.send("USER_JOIN", room="r")
        await alice.payload("USER_JOIN")
        assert (await http.json("GET", "/health"))[0] == 200
        await port.stopListening()  # the database is out of reach: no new connection, and the old ones cut
        proxy_factory.cut()
        alice.send("TEXT_MESSAGE", receiver="r", content="lost?")
        nack = await alice.payload("MESSAGE_NACK", timeout=20)
        assert nack["code"] == errors.STORAGE_UNAVAILABLE
        code, body = await http.json("GET", "/health")
        assert (code, body) == (503, {"status": "storage unavailable", "storage": "database: out of reach"})
        port = reactor.listenTCP(number, proxy_factory, interface="127.0.0.1")  # back
        await eventually(lambda: service.store.available, timeout=15)
        assert (await http.json("GET", "/health"))[0] == 200
        alice.send("TEXT_MESSAGE", receiver="r", content="stored")
        answer = await alice.frame()
        while answer["type"] not in ("MESSAGE_ACK", "MESSAGE_NACK"):
            answer = await alice.frame()
        assert answer["type"] == "MESSAGE_ACK" and answer["payload"]["code"] == 0
        await alice.close()
    finally:
        await service.stopService()
        await port.stopListening()


class CuttableProxy(ProxyFactory):
    """A TCP proxy to PostgreSQL that remembers its connections, so that the test can cut them."""

    def __init__(self, host, port):
        super().__init__(host, port)
        self.made: list = []

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        self.made.append(protocol)
        return protocol

    def cut(self) -> None:
        for protocol in self.made:
            if protocol.transport is not None:
                protocol.transport.abortConnection()
            if getattr(protocol, "peer", None) is not None and protocol.peer.transport is not None:
                protocol.peer.transport.abortConnection()


def _node_process(tmp_path, name: str, pg: str, redis: tuple[str, str]):
    url, prefix = redis
    config = tmp_path / f"{name}.toml"
    config.write_text(
        FAST
        + f'[store]\nurl = "{pg}"\npool_size = 2\n[bus]\nurl = "{url}"\nprefix = "{prefix}"\n'
        + f"heartbeat = {HEARTBEAT}\nexpiry = {EXPIRY}\n"
        + "[storage]\ncursor_interval = 0.5\n"
    )
    process = _twistd("--config", str(config), "--data-dir", str(tmp_path / name), "--node-id", name,
                      "--line", "tcp:0:interface=127.0.0.1", "--http", "tcp:0:interface=127.0.0.1",
                      "--admin", "tcp:0:interface=127.0.0.1")  # fmt: skip
    seen: list[str] = []
    line_port = int(_wait_for(process, r"line listening on 127\.0\.0\.1:(\d+)", seen).group(1))
    _wait_for(process, r"chatd ready", seen)
    return process, line_port


def _login(port: int, name: str, register: bool) -> Conversation:
    c = Conversation(port)
    if register:
        c.send("REGISTER_REQUEST", username=name, passwordHash="pw")
        assert c.expect("REGISTER_RESPONSE")["code"] == 0
    c.send("LOGIN_REQUEST", username=name, passwordHash="pw")
    assert c.expect("LOGIN_RESPONSE")["code"] == 0
    return c


def test_a_node_killed_mid_load_its_clients_reconnect_elsewhere_and_get_everything(tmp_path, pg_url, redis_bus):  # noqa: F811
    (p1, port1), (p2, port2) = (
        _node_process(tmp_path, "k1", pg_url, redis_bus),
        _node_process(tmp_path, "k2", pg_url, redis_bus),
    )
    try:
        s1, r1 = _login(port1, "s1", True), _login(port1, "r1", True)
        s2 = _login(port2, "s2", True)
        for c in (s1, r1, s2):
            c.send("USER_JOIN", room="load")
            c.expect("USER_JOIN")
        acked: list[int] = []

        def burst(sender: Conversation, n: int, tag: str) -> None:
            for i in range(n):
                sender.send("TEXT_MESSAGE", receiver="load", content=f"{tag}{i}")
            for _ in range(n):
                ack = sender.expect("MESSAGE_ACK")
                assert ack["code"] == 0
                acked.append(ack["messageId"])

        for round_ in range(4):
            burst(s1, 25, f"a{round_}-")
            burst(s2, 25, f"b{round_}-")
        seen_before: list[int] = []
        r1.sock.settimeout(2)
        while len(seen_before) < 150:  # r1 reads part of what it was sent, then its node dies
            seen_before.append(r1.expect("TEXT_MESSAGE")["messageId"])
        os.kill(p1.pid, signal.SIGKILL)
        p1.wait(10)
        seen_before += drain(r1)  # what reached r1 before its node died, read to the end as a client would
        burst(s2, 50, "after-")  # the surviving node never stalls
        r1 = _login(port2, "r1", False)  # r1 (and s1) come back through the other node
        s1 = _login(port2, "s1", False)
        burst(s1, 20, "back-")
        burst(s2, 20, "more-")
        r1.sock.settimeout(10)
        after: list[int] = []
        while not after or after[-1] != acked[-1]:
            frame = expect_any(r1, ("OFFLINE_MESSAGE", "TEXT_MESSAGE"))
            after.append(frame["messageId"])
        assert after == sorted(after) and len(after) == len(set(after))  # in order, once on this connection
        assert set(acked) <= set(seen_before) | set(after)  # nothing acknowledged is lost
        assert set(after) - set(acked) == set()
        assert min(after) > max(seen_before) - 100  # what it sees again is at most the last unsaved stretch
    finally:
        for p in (p1, p2):
            if p.poll() is None:
                p.kill()
            p.wait()


def test_a_node_killed_takes_its_users_offline_elsewhere_within_heartbeat_and_expiry(tmp_path, pg_url, redis_bus):  # noqa: F811
    (p1, port1), (p2, port2) = (
        _node_process(tmp_path, "d1", pg_url, redis_bus),
        _node_process(tmp_path, "d2", pg_url, redis_bus),
    )
    try:
        wat = _login(port2, "wat", True)  # watches, from the node that stays
        vic = _login(port1, "vic", True)  # on the node that dies
        vic.send("FRIEND_REQUEST", sender="vic", receiver="wat")
        assert vic.expect("FRIEND_REQUEST_ACK")["code"] == 0
        assert wat.expect("FRIEND_REQUEST")["sender"] == "vic"  # after vic's presence: one node's items keep order
        wat.send("FRIEND_REQUEST_RESPONSE", sender="vic", receiver="wat", code=0)
        assert vic.expect("FRIEND_REQUEST_RESPONSE")["code"] == 0
        # wat sees vic online (a friend) and has not been told otherwise before vic's node dies
        wat.send("REQUEST_USER_INFO", username="vic")
        assert {k: v for k, v in wat.expect("RESPONSE_USER_INFO").items() if k in ("online", "friend")} == {
            "online": True, "friend": True,
        }  # fmt: skip
        assert not [f for f in until_pong_blocking(wat) if f["type"] == "USER_LOGOUT"]
        killed = time.monotonic()
        os.kill(p1.pid, signal.SIGKILL)
        p1.wait(10)
        wat.sock.settimeout(10 + EXPIRY)
        assert wat.expect("USER_LOGOUT")["username"] == "vic"
        took = time.monotonic() - killed
        # the bound: vic's node renewed its key at most HEARTBEAT before dying, the key lives EXPIRY after that,
        # and the node that stays looks every HEARTBEAT (one second more for two processes on a busy machine)
        assert took < EXPIRY + HEARTBEAT + 1.0, f"vic went offline {took:.2f} s after the node died"
        assert not [f for f in until_pong_blocking(wat) if f["type"] == "USER_LOGOUT"]  # told once
        wat.send("REQUEST_USER_INFO", username="vic")
        assert wat.expect("RESPONSE_USER_INFO")["online"] is False
    finally:
        for p in (p1, p2):
            if p.poll() is None:
                p.kill()
            p.wait()


def until_pong_blocking(conversation: Conversation) -> list[dict]:
    """Every typed frame before the answer to a PING (a connection keeps order): what was sent to it before."""
    conversation.send("PING")
    frames = []
    while (frame := orjson.loads(conversation.file.readline()))["type"] != "PONG":
        frames.append(frame)
    return frames


def drain(conversation: Conversation) -> list[int]:
    """The ids of the TEXT_MESSAGEs left on a connection whose server is gone, up to its end."""
    ids = []
    try:
        for line in conversation.file:
            frame = orjson.loads(line)
            if frame["type"] == "TEXT_MESSAGE":
                ids.append(frame["payload"]["messageId"])
    except OSError:
        pass  # reset: nothing more came
    return ids


def expect_any(conversation: Conversation, kinds) -> dict:
    """The payload of the next frame of one of these types."""
    while True:
        line = conversation.file.readline()
        assert line, f"connection closed while waiting for {kinds}"
        frame = orjson.loads(line)
        if frame["type"] in kinds:
            return frame["payload"]
