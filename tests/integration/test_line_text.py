"""The text dialect over TCP, and text and typed users sharing rooms."""

import pytest_twisted

from chatdaemon import errors
from tests.conftest import connect, make_config, start_service, text_friends, text_user, typed_user


@pytest_twisted.ensureDeferred
async def test_help_and_unknown_commands(chatd):
    client = await connect(chatd)
    client.say("/help")
    assert (await client.text("* chatd")).startswith("* chatd")  # the greeting comes first
    assert (await client.line()).decode().startswith("* commands:")
    client.say("/frobnicate")
    assert await client.text("!") == f"! {errors.UNKNOWN_TYPE} unknown command /frobnicate; try /help"
    for _ in range(chatd.config.limits.max_bad_frames + 1):  # a newcomer chatting too early is told, not cut off
        client.say("hello?")
        assert (await client.text("!")).startswith(f"! {errors.NOT_LOGGED_IN} log in first")
    client.say("/help")
    assert (await client.line()).decode().startswith("* commands:")
    await client.close()


@pytest_twisted.ensureDeferred
async def test_two_text_users_chat_in_a_room_and_privately(chatd):
    alice = await text_user(chatd, "alice")
    bob = await text_user(chatd, "bob")
    alice.say("/join #lobby")
    assert await alice.text("* you are in") == "* you are in #lobby (1 members); lines you type go there"
    bob.say("/join lobby")
    await bob.text("* you are in #lobby")
    assert await alice.text("* bob") == "* bob joined #lobby"
    alice.say("hello bob")
    assert await bob.text("[") == "[#lobby] <alice> hello bob"
    bob.say("/msg alice psst")
    assert await bob.text("[") == "[to alice] psst"
    assert await alice.text("[") == "[private] <bob> psst"
    bob.say("/who")
    assert await bob.text("* #lobby:") == "* #lobby: alice, bob"
    bob.say("/history lobby 5")
    assert (await bob.text("[")).endswith("<alice> hello bob")
    bob.say("/history @alice")
    assert (await bob.text("[")).endswith("<bob> psst")
    bob.say("/rooms")
    assert {await bob.text("* "), await bob.text("* ")} == {
        "* @alice (direct)",
        "* #lobby (public, 2 members, 2 online)",
    }
    await text_friends(alice, "alice", bob, "bob")  # presence goes to friends
    alice.say("/status away")
    assert await bob.text("* alice") == "* alice is now: away"
    bob.say("/quit")
    assert await bob.text("* bye") == "* bye"
    await bob.closed
    assert await alice.text("* bob") == "* bob is offline"
    await alice.close()


@pytest_twisted.ensureDeferred
async def test_a_text_user_and_a_typed_user_in_one_room(chatd):
    tina = await text_user(chatd, "tina")
    ted = await typed_user(chatd, "ted")
    tina.say("/join cafe")
    await tina.text("* you are in #cafe")
    ted.send("USER_JOIN", room="cafe")
    await ted.payload("USER_JOIN")
    assert await tina.text("* ted") == "* ted joined #cafe"
    ted.send("TEXT_MESSAGE", sender="ted", receiver="cafe", content="hi from JSON\nsecond line")
    await ted.payload("MESSAGE_ACK")
    assert await tina.text("[") == "[#cafe] <ted> hi from JSON"
    assert await tina.text("    ") == "    second line"
    tina.say("hi from telnet \x1b[31mred\x1b[0m")
    got = await ted.payload("TEXT_MESSAGE")
    assert (got["sender"], got["room"], got["content"]) == ("tina", "cafe", "hi from telnet \x1b[31mred\x1b[0m")
    # and what reaches a terminal carries no escape sequences
    ted.send("TEXT_MESSAGE", receiver="cafe", content="\x1b[2Jcleared?")
    await ted.payload("MESSAGE_ACK")
    assert await tina.text("[") == "[#cafe] <ted> \ufffd[2Jcleared?"
    await tina.close()
    await ted.close()


@pytest_twisted.ensureDeferred
async def test_private_group_by_invitation_even_when_offline(chatd):
    lead = await text_user(chatd, "lead")
    guest = await text_user(chatd, "guest")
    await text_friends(lead, "lead", guest, "guest")
    await guest.close()
    outsider = await text_user(chatd, "outsider")
    lead.say("/create Secret")
    assert (await lead.text("* created")).startswith("* created the private group #secret")
    outsider.say("/join secret")
    assert (await outsider.text("!")).startswith(f"! {errors.PRIVATE_ROOM}")
    outsider.say("/invite outsider secret")
    assert (await outsider.text("!")).startswith(f"! {errors.NOT_LEADER}")
    lead.say("/invite outsider")
    assert (await lead.text("!")).startswith(f"! {errors.NOT_FRIENDS}")  # invitations go to friends
    lead.say("/invite guest")
    assert await lead.text("* invited") == "* invited guest to #secret"
    guest = await connect(chatd)
    guest.say("/login guest secret")
    await guest.text("* welcome")
    assert (await guest.text("* lead invites")).endswith("/accept secret or /decline secret")
    guest.say("/accept secret")
    assert await guest.text("* you are in") == "* you are in #secret (2 members)"
    assert await lead.text("* guest joined") == "* guest joined #secret"
    assert await lead.text("* guest accepted") == "* guest accepted your invitation to #secret"
    guest.say("we're in")
    assert await lead.text("[") == "[#secret] <guest> we're in"
    for client in (lead, guest, outsider):
        await client.close()


@pytest_twisted.ensureDeferred
async def test_offline_room_messages_are_replayed_to_a_text_user(chatd):
    bob = await text_user(chatd, "bob")
    bob.say("/join lobby")
    await bob.text("* you are in")
    await bob.close()
    ted = await typed_user(chatd, "ted")
    ted.send("USER_JOIN", room="lobby")
    await ted.payload("USER_JOIN")
    ted.send("TEXT_MESSAGE", receiver="lobby", content="you missed this")
    await ted.payload("MESSAGE_ACK")
    back = await connect(chatd)
    back.say("/login bob secret")
    await back.text("* welcome")
    line = await back.text("[")
    assert line.startswith("[#lobby ") and line.endswith("<ted> you missed this")
    await back.close()
    await ted.close()


@pytest_twisted.ensureDeferred
async def test_a_text_user_reads_the_shutdown_notice_once(data_dir):
    service = await start_service(make_config(data_dir))
    try:
        alice = await text_user(service, "alice")
    finally:
        await service.stopService()
    await alice.closed
    lines = [line.decode() for line in alice.lines]  # everything the server sent after the welcome
    assert [line for line in lines if line.startswith("! ")] == ["! 7012 server is shutting down"], lines
