"""What an operator watches and changes while chatd serves: /metrics, /health, connections per IP,
and a reload of limits and TLS certificates that drops no connection."""

import dataclasses

import pytest_twisted
import treq
from twisted.internet import ssl

from chatdaemon.config import TLS, Source
from tests.conftest import LineClient, connect, make_certificate, make_config, start_service, text_user, typed_user


async def http_get(service, path: str):
    port = service.listeners.address("http").port
    response = await treq.get(f"http://127.0.0.1:{port}{path}")
    return response.code, (await response.text())


def sample(text: str, name: str) -> float:
    """The value of one sample line (`name` with its labels, as exposed) of a Prometheus text page."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no {name} in:\n{text}")


async def test_metrics_count_connections_logins_messages_and_latencies(chatd):
    code, text = await http_get(chatd, "/metrics")
    assert code == 200 and "chatd_users_online 0.0" in text
    alice = await typed_user(chatd, "alice")
    bob = await text_user(chatd, "bob")
    wrong = await connect(chatd)
    wrong.send("LOGIN_REQUEST", username="alice", passwordHash="nope")
    await wrong.payload("LOGIN_RESPONSE")
    alice.send("TEXT_MESSAGE", receiver="bob", content="hi")
    await alice.payload("MESSAGE_ACK")
    await bob.text("[private] <alice>")
    code, text = await http_get(chatd, "/metrics")
    assert sample(text, 'chatd_connections{dialect="typed",transport="tcp"}') == 2
    assert sample(text, 'chatd_connections{dialect="text",transport="tcp"}') == 1
    assert sample(text, "chatd_users_online") == 2
    assert sample(text, 'chatd_logins_total{dialect="typed",result="ok"}') == 1
    assert sample(text, 'chatd_logins_total{dialect="typed",result="2001"}') == 1
    assert sample(text, 'chatd_logins_total{dialect="text",result="ok"}') == 1
    assert sample(text, 'chatd_messages_received_total{dialect="typed"}') >= 4
    assert sample(text, 'chatd_messages_sent_total{dialect="text"}') >= 3
    assert sample(text, "chatd_chat_messages_total") == 1
    assert sample(text, "chatd_delivery_latency_seconds_count") == 1
    assert sample(text, "chatd_store_commit_seconds_count") >= 1
    assert sample(text, 'chatd_rooms{kind="direct"}') == 1
    assert sample(text, "chatd_slow_consumers_dropped_total") == 0
    for client in (alice, bob, wrong):
        await client.close()


async def test_two_services_in_one_process_keep_their_own_metrics(chatd, tmp_path):
    other = await start_service(make_config(tmp_path / "other"))
    try:
        alice = await typed_user(chatd, "alice")
        _, mine = await http_get(chatd, "/metrics")
        _, theirs = await http_get(other, "/metrics")
        assert sample(mine, "chatd_users_online") == 1 and sample(theirs, "chatd_users_online") == 0
        await alice.close()
    finally:
        await other.stopService()


async def test_health_says_ok_while_serving(chatd):
    assert await http_get(chatd, "/health") == (200, '{"status":"ok"}')
    chatd.state = "stopping"  # what _stop sets first
    assert await http_get(chatd, "/health") == (503, '{"status":"stopping"}')
    chatd.state = "ok"


@pytest_twisted.async_yield_fixture
async def small(data_dir):
    service = await start_service(make_config(data_dir, max_connections_per_ip=2))
    yield service
    await service.stopService()


async def test_connections_past_the_per_ip_limit_are_refused_with_a_reason(small):
    first, second = await connect(small), await connect(small)
    third = await connect(small)
    assert (await third.frame("ERROR"))["payload"]["code"] == 7015
    await third.closed
    _, text = await http_get(small, "/metrics")
    assert sample(text, 'chatd_connections_refused_total{reason="per_ip"}') == 1
    await first.close()
    again = await connect(small)  # a slot is free again
    again.send("PING", n=1)
    assert (await again.payload("PONG")) == {"n": 1}
    for client in (second, again):
        await client.close()


async def test_a_reload_applies_new_limits_and_keeps_every_connection(small, tmp_path):
    config_file = tmp_path / "chatd.toml"
    config_file.write_text("[limits]\nmax_connections_per_ip = 3\nmax_line_bytes = 100\n")
    c = small.config  # what a command line would give: the test's data dir, ports and cheap passwords
    overrides = {"data_dir": c.data_dir, "line": c.line, "http": c.http, "admin": c.admin, "passwords": c.passwords}
    small.source = Source(str(config_file), overrides)
    before = await typed_user(small, "alice")
    report = small.reload()
    assert "limits.max_line_bytes changed" in report and "limits.max_connections_per_ip changed" in report
    assert not [line for line in report if "restart" in line]
    after, third = await connect(small), await connect(small)  # 3 per IP now
    after.send_raw(b"x" * 200 + b"\n")
    assert (await after.frame("ERROR"))["payload"]["code"] == 7005  # the new limit, on a new connection
    before.send("PING", pad="y" * 150)  # an open connection keeps the limits it started with
    assert (await before.payload("PONG"))["pad"] == "y" * 150
    config_file.write_text('data_dir = "/elsewhere"\n[limits]\nnope = 1\n')
    assert small.reload() == ["config file not reloaded: limits.nope: unknown key"]
    for client in (before, after, third):
        await client.close()


@pytest_twisted.async_yield_fixture
async def tls_service(data_dir, tmp_path):
    key, cert, _ = make_certificate(tmp_path / "live")
    config = make_config(data_dir, line=("tls:tcp:0:interface=127.0.0.1",))
    service = await start_service(dataclasses.replace(config, tls=TLS(str(cert), str(key))))
    yield service
    await service.stopService()


async def tls_client(service, pem: bytes) -> LineClient:
    """A TLS client trusting only `pem`, that has had one answer (so the handshake is done)."""
    client = await connect(service, tls_root=ssl.Certificate.loadPEM(pem))
    client.send("PING", n=1)
    await client.payload("PONG")
    return client


async def test_a_reload_serves_a_renewed_certificate_to_new_connections_only(tls_service, tmp_path):
    old_pem = (tmp_path / "live" / "cert.pem").read_bytes()
    old = await tls_client(tls_service, old_pem)
    assert old.transport.getPeerCertificate() is not None
    _, _, new_pem = make_certificate(tmp_path / "renewed")
    for name in ("key.pem", "cert.pem"):
        (tmp_path / "live" / name).write_bytes((tmp_path / "renewed" / name).read_bytes())
    report = tls_service.reload()
    assert any(line.startswith("TLS certificate read from") for line in report)
    new = await tls_client(tls_service, new_pem)
    old.send("PING", n=2)  # the connection made before the reload is still there
    assert (await old.payload("PONG")) == {"n": 2}
    (tmp_path / "live" / "key.pem").write_text("not a key")
    assert any("TLS certificate not reloaded, the current one stays" in line for line in tls_service.reload())
    await (await tls_client(tls_service, new_pem)).close()
    for client in (old, new):
        await client.close()


@pytest_twisted.ensureDeferred
async def test_websocket_connections_count_in_the_metrics_too(chatd):
    from tests.wsclient import ws_connect

    client = await ws_connect(chatd)
    client.say("/register wendy pw")
    await client.text("* registered")
    client.say("/login wendy pw")
    await client.text("* welcome")
    _, text = await http_get(chatd, "/metrics")
    assert sample(text, 'chatd_connections{dialect="text",transport="ws"}') == 1
    assert sample(text, 'chatd_logins_total{dialect="text",result="ok"}') == 1
    await client.close()


async def test_http_and_websocket_connections_past_the_per_ip_limit_get_503(small):
    from tests.wsclient import ws_connect

    url = f"http://127.0.0.1:{small.listeners.address('http').port}/health"
    first, second = await ws_connect(small), await ws_connect(small)  # WebSockets keep their places
    response = await treq.get(url, persistent=False)
    assert response.code == 503 and (await response.json())["code"] == 7015
    try:
        await ws_connect(small)
        raise AssertionError("a third WebSocket got in")
    except ConnectionError:
        pass
    await first.close()
    for _ in range(100):  # the server lets go of the closed WebSocket's place
        response = await treq.get(url, persistent=False)
        if response.code == 200:
            break
    assert response.code == 200 and (await response.json()) == {"status": "ok"}
    await second.close()
