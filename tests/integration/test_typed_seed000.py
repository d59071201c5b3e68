"""Seed 000's types that seed 002 does not cover, each with its defined meaning, over real sockets."""

import sqlite3

import orjson
import pytest_twisted

from chatdaemon import errors
from chatdaemon.store.sqlite import DB_FILE
from tests.conftest import connect, make_config, of_type, start_service, text_user, typed_friends, typed_user


@pytest_twisted.ensureDeferred
async def test_user_join_and_user_leave_reach_the_room(chatd):
    alice, bob = await typed_user(chatd, "alice"), await typed_user(chatd, "bob")
    alice.send("USER_JOIN", room="lobby")
    assert (await alice.payload("USER_JOIN"))["code"] == 0
    bob.send("USER_JOIN", room="lobby")
    assert await bob.payload("USER_JOIN") == {"username": "bob", "room": "lobby", "members": 2, "code": 0}
    assert await alice.payload("USER_JOIN") == {"username": "bob", "receiver": "lobby", "room": "lobby"}
    bob.send("USER_LEAVE", room="lobby")
    assert (await bob.payload("USER_LEAVE"))["code"] == 0
    assert await alice.payload("USER_LEAVE") == {"username": "bob", "room": "lobby"}
    await alice.close()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_encrypted_messages_are_stored_and_forwarded_without_being_read(chatd):
    alice, bob = await typed_user(chatd, "alice"), await typed_user(chatd, "bob")
    tina = await text_user(chatd, "tina")
    sealed = {"ciphertext": "q83vEjRWeJA=", "algorithm": "x25519-aes256gcm", "iv": "AAECAwQFBgc=", "keyId": 7}
    alice.send("ENCRYPTED_MESSAGE", sender="alice", receiver="bob", **sealed)
    ack = await alice.payload("MESSAGE_ACK")
    got = await bob.payload("ENCRYPTED_MESSAGE")
    assert {k: got[k] for k in sealed} == sealed and got["sender"] == "alice" and got["messageId"] == ack["messageId"]
    alice.send("ENCRYPTED_MESSAGE", receiver="bob", algorithm="none")
    assert (await alice.payload("ERROR"))["code"] == errors.BAD_FIELD  # a ciphertext is required
    alice.send("ENCRYPTED_MESSAGE", receiver="bob", ciphertext="eA==", messageId=1, timestamp=1, offline=True)
    forged = await alice.payload("MESSAGE_ACK")
    got = await bob.payload("ENCRYPTED_MESSAGE")  # what the server says cannot be forged
    assert (got["messageId"], got["timestamp"], "offline" in got) == (forged["messageId"], forged["timestamp"], False)
    # a text user sees that something came, not what
    alice.send("ENCRYPTED_MESSAGE", receiver="tina", **sealed)
    await alice.payload("MESSAGE_ACK")
    assert await tina.text("[") == "[private] <alice> (an encrypted message)"
    with sqlite3.connect(f"{chatd.config.data_dir}/{DB_FILE}") as db:
        kind, body = db.execute("SELECT kind, body FROM messages WHERE id = ?", (ack["messageId"],)).fetchone()
    assert kind == "encrypted" and orjson.loads(body) == sealed
    for client in (alice, bob, tina):
        await client.close()


@pytest_twisted.ensureDeferred
async def test_typing_and_read_receipts(chatd):
    alice, bob = await typed_user(chatd, "alice"), await typed_user(chatd, "bob")
    alice.send("USER_TYPING", receiver="bob", typing=True)
    assert await bob.payload("USER_TYPING") == {"username": "alice", "receiver": "bob", "typing": True}
    alice.send("USER_TYPING", receiver="bob", typing=False)
    assert (await bob.payload("USER_TYPING"))["typing"] is False
    alice.send("TEXT_MESSAGE", receiver="bob", content="read me")
    message_id = (await alice.payload("MESSAGE_ACK"))["messageId"]
    await bob.payload("TEXT_MESSAGE")
    bob.send("READ_RECEIPT", messageId=message_id)
    assert await alice.payload("READ_RECEIPT") == {"reader": "bob", "messageId": message_id, "receiver": "alice"}
    bob.send("READ_RECEIPT", messageId=999999)
    refused = await bob.payload("ERROR")
    assert (refused["code"], refused["originalType"]) == (errors.NO_SUCH_MESSAGE, "READ_RECEIPT")
    carol = await typed_user(chatd, "carol")
    carol.send("READ_RECEIPT", messageId=message_id)  # not in that conversation
    assert (await carol.payload("ERROR"))["code"] == errors.NO_SUCH_MESSAGE
    for client in (alice, bob, carol):
        await client.close()


@pytest_twisted.ensureDeferred
async def test_metadata_of_users_and_messages_persists_and_reaches_who_should_see_it(data_dir):
    service = await start_service(make_config(data_dir))
    alice, bob = await typed_user(service, "alice"), await typed_user(service, "bob")
    await typed_friends(alice, "alice", bob, "bob")
    alice.send("METADATA_UPDATE", key="avatar", value={"url": "https://example.org/a.png"})
    assert await alice.payload("METADATA_UPDATE") == {"key": "avatar", "code": 0}
    assert await bob.payload("METADATA_UPDATE") == {
        "username": "alice",
        "key": "avatar",
        "value": {"url": "https://example.org/a.png"},
    }
    alice.send("TEXT_MESSAGE", receiver="bob", content="tag me")
    message_id = (await alice.payload("MESSAGE_ACK"))["messageId"]
    alice.send("METADATA_UPDATE", key="pinned", value=True, messageId=message_id)
    assert (await alice.payload("METADATA_UPDATE"))["messageId"] == message_id
    assert (await bob.payload("METADATA_UPDATE"))["messageId"] == message_id
    bob.send("METADATA_UPDATE", key="pinned", value=False, messageId=message_id)
    assert (await bob.payload("ERROR"))["code"] == errors.NOT_AUTHOR
    bob.send("METADATA_UPDATE", key="x" * 65, value=1)
    assert (await bob.payload("ERROR"))["code"] == errors.BAD_FIELD
    await alice.close()
    await bob.close()
    await service.stopService()
    service = await start_service(make_config(data_dir))
    try:
        bob = await typed_user(service, "bob", register=False)
        bob.send("REQUEST_USER_INFO", username="alice")
        info = await bob.payload("RESPONSE_USER_INFO")
        assert info == {
            "username": "alice",
            "online": False,
            "status": "offline",
            "friend": True,
            "blocked": False,
            "metadata": {"avatar": {"url": "https://example.org/a.png"}},
            "code": 0,
        }
        stranger = await typed_user(service, "stranger")
        stranger.send("REQUEST_USER_INFO", username="bob")  # bob is online, but presence is for friends
        assert (await stranger.payload("RESPONSE_USER_INFO"))["online"] is False
        await stranger.close()
        bob.send("REQUEST_USER_INFO", username="ghost")
        assert (await bob.payload("RESPONSE_USER_INFO"))["code"] == errors.NO_SUCH_USER
        await bob.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_blocked_user_no_longer_reaches_the_blocker_and_it_persists(data_dir):
    service = await start_service(make_config(data_dir))
    alice, mallory, _lead = [await typed_user(service, n) for n in ("alice", "mallory", "lead")]
    alice.send("BLOCK_USER", username="mallory")
    assert await alice.payload("BLOCK_USER") == {"username": "mallory", "code": 0}
    mallory.send("TEXT_MESSAGE", receiver="alice", content="hello?")
    assert (await mallory.payload("MESSAGE_ACK"))["code"] == 0  # silent: mallory is not told
    mallory.send("FRIEND_REQUEST", sender="mallory", receiver="alice")
    assert (await mallory.payload("FRIEND_REQUEST_ACK"))["code"] == 0
    assert not of_type("TEXT_MESSAGE", await alice.sync())
    await alice.close()
    mallory.send("TEXT_MESSAGE", receiver="alice", content="while you are away")
    await mallory.payload("MESSAGE_ACK")
    await service.stopService()

    service = await start_service(make_config(data_dir))
    try:
        alice = await typed_user(service, "alice", register=False)
        lines = await alice.sync()
        assert not of_type("OFFLINE_MESSAGE", lines) and not of_type("FRIEND_REQUEST", lines)
        alice.send("UNBLOCK_USER", username="mallory")
        assert (await alice.payload("UNBLOCK_USER"))["code"] == 0
        alice.send("UNBLOCK_USER", username="mallory")
        assert (await alice.payload("UNBLOCK_USER"))["code"] == errors.NOT_BLOCKED
        mallory = await typed_user(service, "mallory", register=False)
        mallory.send("TEXT_MESSAGE", receiver="alice", content="friends again?")
        assert (await alice.payload("TEXT_MESSAGE"))["content"] == "friends again?"
        await alice.close()
        await mallory.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_blocker_gets_no_group_invitation_from_the_blocked(chatd):
    lead, ann = await typed_user(chatd, "lead"), await typed_user(chatd, "ann")
    await typed_friends(lead, "lead", ann, "ann")
    ann.send("BLOCK_USER", username="lead")
    await ann.payload("BLOCK_USER")
    lead.send("GROUP_CREATE", sender="lead", members=["ann"], name="Trap")
    assert (await lead.payload("GROUP_CREATE_ACK"))["code"] == 0
    assert not of_type("GROUP_INVITE", await ann.sync())
    await lead.close()
    await ann.close()


@pytest_twisted.ensureDeferred
async def test_feedback_is_stored_for_the_operators(chatd):
    alice = await typed_user(chatd, "alice")
    alice.send("FEEDBACK", content="love the typing indicator", rating=5)
    assert await alice.payload("FEEDBACK") == {"code": 0}
    alice.send("FEEDBACK", content="meh", rating=11)
    assert (await alice.payload("FEEDBACK"))["code"] == errors.BAD_FIELD
    [(_, user, body, rating, _)] = await chatd.store.feedback(10)
    assert (user, body, rating) == ("alice", "love the typing indicator", 5)
    await alice.close()


@pytest_twisted.ensureDeferred
async def test_system_message_sums_up_what_arrived_while_away(chatd):
    bob = await typed_user(chatd, "bob")
    await bob.close()
    alice = await typed_user(chatd, "alice")
    for n in range(3):
        alice.send("TEXT_MESSAGE", receiver="bob", content=f"m{n}")
        await alice.payload("MESSAGE_ACK")
    bob = await typed_user(chatd, "bob", register=False)
    for _ in range(3):
        await bob.payload("OFFLINE_MESSAGE")
    summary = await bob.payload("SYSTEM_MESSAGE")
    assert (summary["messages"], summary["notices"]) == (3, 0)
    assert summary["content"] == "while you were away: 3 messages, 0 notices"
    await alice.close()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_connection_closed_both_ways(chatd):
    client = await connect(chatd)
    client.send("CONNECTION_CLOSED", reason="going home")
    assert (await client.frame())["type"] == "CONNECTION_ESTABLISHED"
    assert await client.payload("CONNECTION_CLOSED") == {"code": 0, "reason": "going home"}
    await client.closed
    flood = await connect(chatd)
    flood.send("PING")
    flood.send_raw(b"{bad\n" * chatd.config.limits.max_bad_frames)
    last = None
    while True:
        try:
            last = await flood.frame()
        except ConnectionError:
            break
    assert last["type"] == "CONNECTION_CLOSED" and last["payload"]["code"] == errors.TOO_MANY_ERRORS
