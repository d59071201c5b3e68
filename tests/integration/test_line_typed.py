"""The typed dialect over the plain TCP line transport: real sockets, real frames."""

import orjson
import pytest_twisted

from chatdaemon import errors
from tests.conftest import connect, typed_user


@pytest_twisted.ensureDeferred
async def test_register_login_and_connection_established(chatd):
    client = await connect(chatd)
    client.send("REGISTER_REQUEST", username="alice", passwordHash="pw")
    first = await client.frame()
    assert first["type"] == "CONNECTION_ESTABLISHED"
    assert first["payload"]["dialect"] == "typed"
    assert await client.payload("REGISTER_RESPONSE") == {"success": True, "code": 0, "username": "alice"}
    client.send("LOGIN_REQUEST", username="alice", passwordHash="pw")
    login = await client.payload("LOGIN_RESPONSE")
    assert login["success"] is True and login["code"] == 0
    assert len(login["sessionKey"]) >= 32
    await client.close()


@pytest_twisted.ensureDeferred
async def test_register_twice_and_login_failures(chatd):
    client = await typed_user(chatd, "alice", "right")
    other = await connect(chatd)
    other.send("REGISTER_REQUEST", username="alice", passwordHash="x")
    assert (await other.payload("REGISTER_RESPONSE"))["code"] == errors.USER_EXISTS
    other.send("LOGIN_REQUEST", username="alice", passwordHash="wrong")
    failed = await other.payload("LOGIN_RESPONSE")
    assert failed["success"] is False and failed["code"] == errors.INVALID_CREDENTIALS
    other.send("LOGIN_REQUEST", username="nobody", passwordHash="x")
    assert (await other.payload("LOGIN_RESPONSE"))["code"] == errors.USER_NOT_FOUND
    other.send("REGISTER_REQUEST", username="bad name!", passwordHash="x")
    assert (await other.payload("REGISTER_RESPONSE"))["code"] == errors.BAD_NAME
    # the connection that is logged in cannot log in again
    client.send("LOGIN_REQUEST", username="alice", passwordHash="right")
    assert (await client.payload("LOGIN_RESPONSE"))["code"] == errors.ALREADY_LOGGED_IN
    await client.close()
    await other.close()


@pytest_twisted.ensureDeferred
async def test_auth_request_is_the_login_flow_of_seed_000(chatd):
    await (await typed_user(chatd, "alice", "pw")).close()
    client = await connect(chatd)
    client.send("AUTH_REQUEST", username="alice", password="nope")
    assert (await client.payload("AUTH_ERROR"))["code"] == errors.INVALID_CREDENTIALS
    client.send("AUTH_REQUEST", username="alice", password="pw")
    ok = await client.payload("AUTH_RESPONSE")
    assert ok["success"] is True and ok["sessionKey"]
    # the session key logs another connection in
    second = await connect(chatd)
    second.send("LOGIN_REQUEST", sessionKey=ok["sessionKey"])
    assert (await second.payload("LOGIN_RESPONSE"))["username"] == "alice"
    await client.close()
    await second.close()


@pytest_twisted.ensureDeferred
async def test_direct_message_live_with_ack(chatd):
    alice = await typed_user(chatd, "alice")
    bob = await typed_user(chatd, "bob")
    alice.send("TEXT_MESSAGE", sender="alice", receiver="bob", content="hi bob", clientMessageId="c1")
    ack = await alice.payload("MESSAGE_ACK")
    assert ack["code"] == 0 and ack["receiver"] == "bob" and ack["clientMessageId"] == "c1"
    got = await bob.payload("TEXT_MESSAGE")
    assert got["sender"] == "alice" and got["receiver"] == "bob" and got["content"] == "hi bob"
    assert got["messageId"] == ack["messageId"]
    await alice.close()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_direct_message_to_offline_user_arrives_at_login_in_order_once(chatd):
    await (await typed_user(chatd, "bob")).close()
    alice = await typed_user(chatd, "alice")
    for n in range(3):
        alice.send("TEXT_MESSAGE", receiver="bob", content=f"while you were out {n}")
        assert (await alice.payload("MESSAGE_ACK"))["code"] == 0
    bob = await typed_user(chatd, "bob", register=False)
    offline = [await bob.payload("OFFLINE_MESSAGE") for _ in range(3)]
    assert [m["content"] for m in offline] == [f"while you were out {n}" for n in range(3)]
    assert all(m["sender"] == "alice" for m in offline)
    await bob.close()
    # once: the next login replays nothing
    again = await typed_user(chatd, "bob", register=False)
    assert not [line for line in await again.sync() if b"OFFLINE_MESSAGE" in line]
    await again.close()
    await alice.close()


@pytest_twisted.ensureDeferred
async def test_nack_for_unknown_user_and_for_a_room_one_is_not_in(chatd):
    alice = await typed_user(chatd, "alice")
    bob = await typed_user(chatd, "bob")
    alice.send("TEXT_MESSAGE", receiver="nobody", content="hello?")
    assert (await alice.payload("MESSAGE_NACK"))["code"] == errors.NO_SUCH_USER
    bob.send("USER_JOIN", room="club")
    assert (await bob.payload("USER_JOIN"))["code"] == 0
    alice.send("TEXT_MESSAGE", receiver="club", content="let me in")
    assert (await alice.payload("MESSAGE_NACK"))["code"] == errors.NOT_A_MEMBER
    alice.send("TEXT_MESSAGE", sender="mallory", receiver="bob", content="spoofed")
    assert (await alice.payload("MESSAGE_NACK"))["code"] == errors.BAD_FIELD
    assert not [line for line in await bob.sync() if b"TEXT_MESSAGE" in line]
    await alice.close()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_room_message_reaches_every_member_but_the_sender(chatd):
    users = {name: await typed_user(chatd, name) for name in ("ann", "ben", "cy", "dee")}
    for client in users.values():
        client.send("USER_JOIN", room="lobby")
        assert (await client.payload("USER_JOIN"))["room"] == "lobby"
    users["ann"].send("TEXT_MESSAGE", receiver="lobby", content="hello all")
    assert (await users["ann"].payload("MESSAGE_ACK"))["receiver"] == "lobby"
    for name in ("ben", "cy", "dee"):
        got = await users[name].payload("TEXT_MESSAGE")
        assert (got["sender"], got["room"], got["content"]) == ("ann", "lobby", "hello all")
    assert not [line for line in await users["ann"].sync() if b"TEXT_MESSAGE" in line]
    for client in users.values():
        await client.close()


@pytest_twisted.ensureDeferred
async def test_ping_and_protocol_version(chatd):
    client = await connect(chatd)
    client.send("PING", nonce=42)
    assert await client.payload("PONG") == {"nonce": 42}
    client.send("PROTOCOL_VERSION", version="1.0")
    version = await client.payload("PROTOCOL_VERSION")
    assert version["compatible"] is True and version["version"] == "1.0"
    await client.close()


@pytest_twisted.ensureDeferred
async def test_bad_frames_get_errors_and_the_connection_keeps_working(chatd):
    client = await typed_user(chatd, "alice")
    client.send_raw(b"{this is not json\n")
    assert (await client.payload("ERROR"))["code"] == errors.BAD_JSON
    client.send("NO_SUCH_TYPE", x=1)
    unknown = await client.payload("ERROR")
    assert unknown["code"] == errors.UNKNOWN_TYPE and unknown["originalType"] == "NO_SUCH_TYPE"
    client.send("TEXT_MESSAGE", receiver="alice")
    assert (await client.payload("ERROR"))["code"] == errors.BAD_FIELD
    client.send_raw(b'{"type": "TEXT_MESSAGE", "payload": {"receiver": 7, "content": "x"}}\n')
    assert (await client.payload("ERROR"))["code"] == errors.BAD_FIELD
    client.send_raw(b"[1, 2, 3]\n")
    assert (await client.payload("ERROR"))["code"] == errors.BAD_FRAME
    client.send_raw(b"\xff\xfe\n")
    assert (await client.payload("ERROR"))["code"] == errors.BAD_JSON
    limit = chatd.config.limits.max_line_bytes
    client.send_raw(b'{"type": "PING", "payload": {"pad": "' + b"x" * limit + b'"}}\n')
    assert (await client.payload("ERROR"))["code"] == errors.LINE_TOO_LONG
    client.send("PING", still="alive")
    assert await client.payload("PONG") == {"still": "alive"}
    await client.close()


@pytest_twisted.ensureDeferred
async def test_a_line_split_across_writes_and_crlf_endings(chatd):
    client = await connect(chatd)
    frame = orjson.dumps({"type": "PING", "timestamp": 1, "payload": {"n": "é"}})
    for piece in (frame[:5], frame[5:20], frame[20:] + b"\r", b"\n"):
        client.send_raw(piece)
    assert await client.payload("PONG") == {"n": "é"}
    await client.close()


@pytest_twisted.ensureDeferred
async def test_too_many_bad_frames_close_the_connection_with_a_final_error(chatd):
    client = await connect(chatd)
    client.send_raw(b"{nope\n" * chatd.config.limits.max_bad_frames)
    codes = []
    while not client.closed.called or client.lines:
        try:
            codes.append((await client.payload("ERROR"))["code"])
        except ConnectionError:
            break
    assert codes[-1] == errors.TOO_MANY_ERRORS
    assert codes.count(errors.BAD_JSON) == chatd.config.limits.max_bad_frames
    await client.closed
