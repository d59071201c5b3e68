"""Login and registration throttling on every way in, over real sockets: each dialect's login frame, IRC's PASS
and SASL, REST /login and /register, a session key at the WebSocket handshake and as a REST bearer, and Socket.IO's
auth.
Clients connect from several loopback addresses (127.0.0.0/8), which the server tells apart."""

import base64
import dataclasses
import re

import orjson
import pytest_twisted
from twisted.internet import defer

from chatdaemon import errors
from chatdaemon.config import Throttle
from tests.conftest import (
    MANY_ACCOUNTS,
    act,
    action_frame,
    connect,
    make_config,
    start_service,
    typed_user,
)
from tests.integration.test_socketio_chat import node_client
from tests.ircclient import connect_irc
from tests.wsclient import Http, raw_handshake, ws_connect

STRICT_ACCOUNT = dataclasses.replace(
    MANY_ACCOUNTS, login_failures_per_account=3, login_delay=60.0, login_failures_per_address=1000
)


async def throttled_service(data_dir, throttle: Throttle):
    irc = ("tcp:0:interface=127.0.0.1",)
    return await start_service(dataclasses.replace(make_config(data_dir), throttle=throttle, irc=irc))


async def typed_login(service, name: str, password: str, source: str | None = None) -> dict:
    client = await connect(service, source=source)
    client.send("LOGIN_REQUEST", username=name, passwordHash=password)
    payload = await client.payload("LOGIN_RESPONSE")
    await client.close()
    return payload


async def close_all(clients) -> None:
    await defer.gatherResults([defer.Deferred.fromCoroutine(c.close()) for c in clients])


def line_json(client, kind_key: str, kind: str, data) -> None:
    client.transport.write(orjson.dumps({kind_key: kind, "data": data}) + b"\n")


async def json_reply(client, key: str, *kinds: str) -> dict:
    """The next frame of one of `kinds` (errors included: they are what is awaited)."""
    while True:
        frame = orjson.loads(await client.line())
        if frame.get(key) in kinds:
            return frame


@pytest_twisted.ensureDeferred
async def test_an_account_under_attack_is_refused_on_every_way_in_without_spending_a_hash(data_dir):
    service = await throttled_service(data_dir, STRICT_ACCOUNT)
    try:
        victim = await typed_user(service, "victim", "right")
        await victim.close()
        await (await typed_user(service, "keyholder", "pw")).close()
        holder = await connect(service)
        holder.send("LOGIN_REQUEST", username="victim", passwordHash="right")
        kept_key = (await holder.payload("LOGIN_RESPONSE"))["sessionKey"]  # a key from before the attack
        await holder.close()
        for _ in range(3):
            assert (await typed_login(service, "victim", "wrong"))["code"] == errors.INVALID_CREDENTIALS
        hashes = service.passwords.hashes

        # now even the right password is refused at once, in each way in's own form, with how long to wait
        refused = await typed_login(service, "victim", "right")
        assert refused["code"] == errors.TOO_MANY_ATTEMPTS and refused["retryAfter"] == 60
        assert "try again in 60 s" in refused["message"]

        text = await connect(service)
        text.say("/login victim right")
        assert (await text.text("! ")).startswith("! 7030 too many failed logins")
        await text.close()

        action = await connect(service)
        act(action, "login", chatid="victim", password="right")
        fail = await action_frame(action, "login_fail")
        assert fail["code"] == errors.TOO_MANY_ATTEMPTS and fail["data"] == {"retry_after": 60}
        await action.close()

        events = await connect(service)
        line_json(events, "event", "CLIENT_AUTH", {"username": "victim", "password": "right"})
        error = await json_reply(events, "event", "SERVER_ERROR", "SERVER_AUTH_OK")
        assert error["data"]["code"] == errors.TOO_MANY_ATTEMPTS and error["data"]["retryAfter"] == 60
        await events.close()

        colon = await connect(service)
        line_json(colon, "type", "USER:LOGIN", {"username": "victim", "password": "right"})
        error = await json_reply(colon, "type", "ERROR", "USER:LOGGED_IN")
        assert error["data"]["code"] == errors.TOO_MANY_ATTEMPTS
        await colon.close()

        wait = r"too many failed logins: try again in (60|59|58) s \(chatd 7030\)"
        irc = await connect_irc(service)  # the server password: refused as IRC servers throttle, then closed
        irc.send("PASS right", "NICK victim", "USER victim 0 * :v")
        assert re.fullmatch(":chatd NOTICE victim :Throttled: " + wait, await irc.expect("NOTICE", "Throttled"))
        assert re.fullmatch("ERROR :Closing link: Throttled: " + wait, await irc.line())
        await irc.closed
        sasl = await connect_irc(service)
        sasl.send("CAP LS 302", "NICK victim", "USER victim 0 * :v", "CAP REQ :sasl")
        await sasl.expect("CAP", "ACK")
        sasl.send("AUTHENTICATE PLAIN")
        await sasl.expect("AUTHENTICATE", "+")
        sasl.send("AUTHENTICATE " + base64.b64encode(b"\0victim\0right").decode())
        assert re.fullmatch(":chatd 904 victim :SASL authentication failed: " + wait, await sasl.expect("904"))
        sasl.transport.loseConnection()
        await sasl.closed

        ws = await ws_connect(service, "?dialect=typed")
        ws.send({"type": "LOGIN_REQUEST", "timestamp": 1, "payload": {"username": "victim", "passwordHash": "right"}})
        assert (await ws.next(type="LOGIN_RESPONSE"))["payload"]["code"] == errors.TOO_MANY_ATTEMPTS
        await ws.close()

        http = Http(service)
        try:
            response, body = await http.call("POST", "/login", json={"username": "victim", "password": "right"})
            assert response.code == 429 and response.headers.getRawHeaders(b"Retry-After") == [b"60"]
            assert orjson.loads(body)["code"] == errors.TOO_MANY_ATTEMPTS
            # a session key from before the attack still gets in: keys are not held back by the account
            status, answer = await http.json("POST", "/login", json={"token": kept_key})
            assert status == 200 and answer["username"] == "victim"
        finally:
            await http.close()
        assert service.passwords.hashes == hashes  # not one hash was spent on the refused attempts

        by_key = await ws_connect(service, f"?token={kept_key}&dialect=typed")
        assert (await by_key.next(type="LOGIN_RESPONSE"))["payload"]["code"] == 0
        await by_key.close()
        assert (await typed_login(service, "keyholder", "pw"))["code"] == 0  # other accounts are not affected
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_socketio_auth_is_throttled_like_every_other_login(data_dir):
    service = await throttled_service(data_dir, STRICT_ACCOUNT)
    try:
        await typed_user(service, "victim", "right")
        for _ in range(3):
            assert (await typed_login(service, "victim", "wrong"))["code"] == errors.INVALID_CREDENTIALS
        app = await node_client(service, auth={"username": "victim", "password": "right"}, reconnection=False)
        refused = (await app.next(connect_error={"message": "too many failed logins: try again in 60 s",
                                                 "data": {"code": errors.TOO_MANY_ATTEMPTS, "retryAfter": 60}}))  # fmt: skip
        assert refused["connect_error"]["data"] == {"code": errors.TOO_MANY_ATTEMPTS, "retryAfter": 60}
        await app.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_an_address_that_fails_too_often_waits_and_other_addresses_do_not(data_dir):
    throttle = dataclasses.replace(MANY_ACCOUNTS, login_failures_per_address=4, login_delay=60.0)
    service = await throttled_service(data_dir, throttle)
    try:
        await typed_user(service, "alice", "pw", source="127.0.0.3")
        answers = [
            await typed_login(service, "alice", "guess1", source="127.0.0.2"),
            await typed_login(service, "nobody", "x", source="127.0.0.2"),  # unknown names count too
            await typed_login(service, "alice", "guess2", source="127.0.0.2"),
            await typed_login(service, "ghost", "x", source="127.0.0.2"),
        ]
        assert [a["code"] for a in answers] == [2001, 2003, 2001, 2003]
        refused = await typed_login(service, "alice", "pw", source="127.0.0.2")
        assert refused["code"] == errors.TOO_MANY_ATTEMPTS
        assert (await typed_login(service, "alice", "pw", source="127.0.0.3"))["code"] == 0
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_unknown_session_keys_are_throttled_on_the_websocket_and_rest_per_address(data_dir):
    throttle = dataclasses.replace(MANY_ACCOUNTS, login_failures_per_address=3, login_delay=60.0)
    service = await throttled_service(data_dir, throttle)
    try:
        http = Http(service, source="127.0.0.5")
        await http.json("POST", "/register", json={"username": "bob", "password": "pw"})
        _, login = await http.json("POST", "/login", json={"username": "bob", "password": "pw"})
        good = login["token"]
        for forged in ("forged-1", "forged-2"):
            status = await raw_handshake(service, f"/ws?token={forged}", source="127.0.0.4")
            assert status.split(b" ")[1] == b"401"
        bad = Http(service, source="127.0.0.4")
        try:
            response, _ = await bad.call("GET", "/conversations", token="forged-3")
            assert response.code == 401
            response, body = await bad.call("GET", "/conversations", token=good)  # even a good key waits now
            assert response.code == 429 and orjson.loads(body)["code"] == errors.TOO_MANY_ATTEMPTS
        finally:
            await bad.close()
        status = await raw_handshake(service, f"/ws?token={good}", source="127.0.0.4")
        assert status.split(b" ")[1] == b"429"
        # password logins from that address are another count: bob may still log in there by password
        assert (await typed_login(service, "bob", "pw", source="127.0.0.4"))["code"] == 0
        # and keys from other addresses are fine
        ws = await ws_connect(service, f"?token={good}&dialect=events", source="127.0.0.5")
        assert (await ws.next(event="SERVER_AUTH_OK"))["data"]["username"] == "bob"
        await ws.close()
        response, _ = await http.call("GET", "/conversations", token=good)
        assert response.code == 200
        await http.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_login_flood_from_one_address_spends_few_hashes_and_does_not_hold_up_another(data_dir):
    """250 wrong logins from 50 connections of one address: at most its free failures are hashed, the rest are
    refused at once (7030); meanwhile a user from another address logs in."""
    throttle = dataclasses.replace(MANY_ACCOUNTS, login_delay=60.0)  # defaults: 20 per address, 8 waiting
    service = await throttled_service(data_dir, throttle)
    try:
        for n in range(10):
            await typed_user(service, f"target{n}", "secret", source="127.0.0.9")
        await typed_user(service, "regular", "mine", source="127.0.0.9")
        hashes = service.passwords.hashes
        flood = [await connect(service, source="127.0.0.8") for _ in range(50)]
        for i, client in enumerate(flood):
            for j in range(5):
                client.send("LOGIN_REQUEST", username=f"target{(i + j) % 10}", passwordHash=f"guess{i}-{j}")
        regular = await connect(service, source="127.0.0.10")
        regular.send("LOGIN_REQUEST", username="regular", passwordHash="mine")
        assert (await regular.payload("LOGIN_RESPONSE"))["code"] == 0
        codes = []
        for client in flood:
            for _ in range(5):
                codes.append((await client.payload("LOGIN_RESPONSE"))["code"])
        assert len(codes) == 250 and set(codes) <= {errors.INVALID_CREDENTIALS, errors.TOO_MANY_ATTEMPTS}
        wrong = codes.count(errors.INVALID_CREDENTIALS)
        assert 1 <= wrong <= 20  # the address's free failures; per account 5 at most, 10 accounts
        assert service.passwords.hashes - hashes == wrong + 1  # + the regular user's
        await close_all([*flood, regular])
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_registrations_are_throttled_per_address_and_in_all(data_dir):
    throttle = dataclasses.replace(
        MANY_ACCOUNTS, registrations_per_address=2, registration_window=3600.0,
        registrations_per_second=0.001, registration_burst=4,
    )  # fmt: skip
    service = await throttled_service(data_dir, throttle)
    try:
        client = await connect(service, source="127.0.0.11")
        for name in ("one", "two"):
            client.send("REGISTER_REQUEST", username=name, passwordHash="pw")
            assert (await client.payload("REGISTER_RESPONSE"))["code"] == 0
        hashes = service.passwords.hashes
        client.send("REGISTER_REQUEST", username="three", passwordHash="pw")
        refused = await client.payload("REGISTER_RESPONSE")
        assert refused["code"] == errors.TOO_MANY_REGISTRATIONS and refused["retryAfter"] == 1800
        client.send("REGISTER_REQUEST", username="one", passwordHash="pw")  # a taken name is still told as such
        assert (await client.payload("REGISTER_RESPONSE"))["code"] == errors.USER_EXISTS
        http = Http(service, source="127.0.0.11")
        try:
            response, body = await http.call("POST", "/register", json={"username": "four", "password": "pw"})
            assert response.code == 429 and response.headers.getRawHeaders(b"Retry-After") == [b"1800"]
            assert orjson.loads(body)["code"] == errors.TOO_MANY_REGISTRATIONS
        finally:
            await http.close()
        other = await connect(service, source="127.0.0.12")
        other.say("/register five pw")
        assert await other.text("* registered five")
        action = await connect(service, source="127.0.0.13")
        act(action, "register", chatid="six", password="pw")
        assert (await action_frame(action))["action"] == "register_success"
        act(action, "register", chatid="seven", password="pw")  # the global burst of 4 is spent
        fail = await action_frame(action, "register_fail")
        assert fail["code"] == errors.TOO_MANY_REGISTRATIONS and fail["data"]["retry_after"] >= 900
        assert service.passwords.hashes == hashes + 2
        await close_all([client, other, action])
    finally:
        await service.stopService()
