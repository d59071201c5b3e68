"""Seed 002 friends and presence, over real sockets."""

import pytest_twisted

from chatdaemon import errors
from tests.conftest import make_config, of_type, start_service, typed_friends, typed_user


@pytest_twisted.ensureDeferred
async def test_a_friend_request_is_acked_forwarded_accepted_and_presence_follows(chatd):
    alice, bob, carol = [await typed_user(chatd, n) for n in ("alice", "bob", "carol")]
    for client in (bob, carol):  # carol shares a room with bob, but is not his friend
        client.send("USER_JOIN", room="lobby")
        await client.payload("USER_JOIN")
    alice.send("FRIEND_REQUEST", sender="alice", receiver="bob")
    assert await alice.payload("FRIEND_REQUEST_ACK") == {"sender": "alice", "receiver": "bob", "code": 0}
    assert await bob.payload("FRIEND_REQUEST") == {"sender": "alice", "receiver": "bob"}
    bob.send("FRIEND_REQUEST_RESPONSE", sender="alice", receiver="bob", code=0)
    assert await alice.payload("FRIEND_REQUEST_RESPONSE") == {"sender": "alice", "receiver": "bob", "code": 0}
    bob.send("USER_STATUS_UPDATE", username="bob", status="away")
    assert (await bob.payload("USER_STATUS_UPDATE"))["code"] == 0
    assert await alice.payload("USER_STATUS_UPDATE") == {"username": "bob", "status": "away"}
    bob.send("USER_LOGOUT", username="bob")
    assert (await bob.payload("USER_LOGOUT"))["code"] == 0
    assert await alice.payload("USER_LOGOUT") == {"username": "bob"}
    assert not of_type("USER_STATUS_UPDATE", await carol.sync())
    # back online: friends see it
    bob.send("LOGIN_REQUEST", username="bob", passwordHash="secret")
    await bob.payload("LOGIN_RESPONSE")
    assert await alice.payload("USER_STATUS_UPDATE") == {"username": "bob", "status": "away"}
    for client in (alice, bob, carol):
        await client.close()


@pytest_twisted.ensureDeferred
async def test_requests_and_answers_wait_for_offline_users_across_a_restart(data_dir):
    service = await start_service(make_config(data_dir))
    await (await typed_user(service, "bob")).close()
    alice = await typed_user(service, "alice")
    alice.send("FRIEND_REQUEST", sender="alice", receiver="bob")
    assert (await alice.payload("FRIEND_REQUEST_ACK"))["code"] == 0
    await alice.close()
    await service.stopService()

    service = await start_service(make_config(data_dir))
    try:
        bob = await typed_user(service, "bob", register=False)
        assert await bob.payload("FRIEND_REQUEST") == {"sender": "alice", "receiver": "bob", "offline": True}
        bob.send("FRIEND_REQUEST_RESPONSE", sender="alice", receiver="bob", code=errors.FRIEND_REJECTED)
        # The answer has no reply; a PONG, answered in order, shows it was handled. (Closing at once
        # raced it: the session drops frames still queued when the connection goes.)
        bob.send("PING")
        await bob.payload("PONG")
        await bob.close()
        alice = await typed_user(service, "alice", register=False)
        answer = await alice.payload("FRIEND_REQUEST_RESPONSE")
        assert answer == {"sender": "alice", "receiver": "bob", "code": errors.FRIEND_REJECTED, "offline": True}
        summary = await alice.payload("SYSTEM_MESSAGE")
        assert summary["notices"] == 1
        alice.send("REQUEST_USER_INFO", username="bob")
        assert (await alice.payload("RESPONSE_USER_INFO"))["friend"] is False
        await alice.close()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_friend_request_refusals_have_codes(chatd):
    alice, bob = await typed_user(chatd, "alice"), await typed_user(chatd, "bob")
    alice.send("FRIEND_REQUEST", sender="alice", receiver="ghost")
    assert (await alice.payload("FRIEND_REQUEST_ACK"))["code"] == errors.FRIEND_USER_NOT_FOUND
    alice.send("FRIEND_REQUEST", sender="alice", receiver="alice")
    assert (await alice.payload("FRIEND_REQUEST_ACK"))["code"] == errors.SELF_MESSAGE
    bob.send("FRIEND_REQUEST_RESPONSE", sender="alice", receiver="bob", code=0)
    assert (await bob.payload("ERROR"))["code"] == errors.NO_FRIEND_REQUEST
    bob.send("FRIEND_REQUEST_RESPONSE", sender="alice", receiver="bob", code=7)
    assert (await bob.payload("ERROR"))["code"] == errors.BAD_FIELD
    await typed_friends(alice, "alice", bob, "bob")
    alice.send("FRIEND_REQUEST", sender="alice", receiver="bob")
    assert (await alice.payload("FRIEND_REQUEST_ACK"))["code"] == errors.ALREADY_FRIENDS
    await alice.close()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_crossed_requests_make_friends_at_once(chatd):
    alice, bob = await typed_user(chatd, "alice"), await typed_user(chatd, "bob")
    alice.send("FRIEND_REQUEST", sender="alice", receiver="bob")
    await alice.payload("FRIEND_REQUEST_ACK")
    await bob.payload("FRIEND_REQUEST")
    bob.send("FRIEND_REQUEST", sender="bob", receiver="alice")  # bob asks instead of answering
    assert (await bob.payload("FRIEND_REQUEST_ACK"))["code"] == 0
    assert (await alice.payload("FRIEND_REQUEST_RESPONSE"))["code"] == 0
    assert chatd.core.state.friends["alice"] == {"bob"}
    await alice.close()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_friend_remove_is_acked_told_and_kept(chatd):
    alice, bob = await typed_user(chatd, "alice"), await typed_user(chatd, "bob")
    await typed_friends(alice, "alice", bob, "bob")
    alice.send("FRIEND_REMOVE", sender="alice", receiver="bob")
    assert await alice.payload("FRIEND_REMOVE_ACK") == {"sender": "alice", "receiver": "bob", "code": 0}
    assert await bob.payload("FRIEND_REMOVE") == {"sender": "alice", "receiver": "bob"}
    alice.send("FRIEND_REMOVE", sender="alice", receiver="bob")
    assert (await alice.payload("FRIEND_REMOVE_ACK"))["code"] == errors.NOT_FRIENDS
    # no longer friends: no more presence
    alice.send("USER_STATUS_UPDATE", username="alice", status="busy")
    await alice.payload("USER_STATUS_UPDATE")
    assert not of_type("USER_STATUS_UPDATE", await bob.sync())
    await alice.close()
    await bob.close()
    # and the removal reaches a friend who is offline, at their next login
    carol, dave = await typed_user(chatd, "carol"), await typed_user(chatd, "dave")
    await typed_friends(carol, "carol", dave, "dave")
    await dave.close()
    carol.send("FRIEND_REMOVE", sender="carol", receiver="dave")
    await carol.payload("FRIEND_REMOVE_ACK")
    dave = await typed_user(chatd, "dave", register=False)
    assert await dave.payload("FRIEND_REMOVE") == {"sender": "carol", "receiver": "dave", "offline": True}
    await carol.close()
    await dave.close()
