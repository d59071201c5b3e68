"""IRC over real sockets: registration, rooms and direct messages shared with text and typed users, what
was missed while away, groups as channels, bad input, TLS, and the per-address limit."""

import dataclasses

import pytest_twisted
from twisted.internet import ssl

from chatdaemon.config import TLS
from tests.conftest import _sleep, start_service, text_user, typed_user
from tests.ircclient import connect_irc, irc_config, irc_user, register, start_irc_service


@pytest_twisted.ensureDeferred
async def test_irc_text_and_typed_users_share_a_room_and_talk_privately(chatd_irc):
    await register(chatd_irc, "alice")
    bob = await text_user(chatd_irc, "bob")
    ted = await typed_user(chatd_irc, "ted")
    alice = await irc_user(chatd_irc, "alice")
    alice.send("JOIN #lobby")
    assert await alice.expect("JOIN") == ":alice!alice@chatd JOIN #lobby"
    assert await alice.expect("353") == ":chatd 353 alice = #lobby :alice"
    bob.say("/join lobby")
    await bob.text("* you are in #lobby")
    assert await alice.expect("JOIN") == ":bob!bob@chatd JOIN #lobby"
    ted.send("USER_JOIN", room="lobby")
    await ted.payload("USER_JOIN")
    assert await alice.expect("JOIN") == ":ted!ted@chatd JOIN #lobby"
    assert await bob.text("* ted") == "* ted joined #lobby"

    bob.say("hi alice, from a terminal")
    assert await alice.expect("PRIVMSG") == ":bob!bob@chatd PRIVMSG #lobby :hi alice, from a terminal"
    ted.send("TEXT_MESSAGE", receiver="lobby", content="and from JSON")
    assert await alice.expect("PRIVMSG") == ":ted!ted@chatd PRIVMSG #lobby :and from JSON"
    alice.send("PRIVMSG #lobby :hello both", "PRIVMSG #lobby :\x01ACTION waves\x01")
    assert await bob.text("[#lobby] <alice>") == "[#lobby] <alice> hello both"
    assert await bob.text("[#lobby] <alice>") == "[#lobby] <alice> /me waves"
    assert (await ted.payload("TEXT_MESSAGE"))["sender"] == "bob"
    got = await ted.payload("TEXT_MESSAGE")
    assert (got["sender"], got["room"], got["content"]) == ("alice", "lobby", "hello both")
    assert (await ted.payload("TEXT_MESSAGE"))["content"] == "/me waves"

    ted.send("TEXT_MESSAGE", receiver="alice", content="psst, alice")
    assert await alice.expect("PRIVMSG") == ":ted!ted@chatd PRIVMSG alice :psst, alice"
    alice.send("PRIVMSG ted :psst back", "PRIVMSG bob :and you")
    got = await ted.payload("TEXT_MESSAGE")
    assert (got["sender"], got["receiver"], got["content"]) == ("alice", "ted", "psst back")
    assert await bob.text("[") == "[private] <alice> and you"

    alice.send("TOPIC #lobby :tea at five", "WHO #lobby")
    assert await alice.expect("TOPIC") == ":alice!alice@chatd TOPIC #lobby :tea at five"
    assert await bob.text("* alice") == "* alice set the topic of #lobby: tea at five"
    who = [await alice.expect("352") for _ in range(3)]
    assert sorted(x.split(" ")[7] for x in who) == ["alice", "bob", "ted"]
    bob.say("/leave lobby")
    assert await alice.expect("PART") == ":bob!bob@chatd PART #lobby"
    alice.send("PART #lobby :later")
    assert await alice.expect("PART") == ":alice!alice@chatd PART #lobby :later"
    assert (await ted.payload("USER_LEAVE"))["username"] == "bob"
    assert await ted.payload("USER_LEAVE") == {"username": "alice", "room": "lobby"}
    await alice.quit()
    await bob.close()
    await ted.close()


@pytest_twisted.ensureDeferred
async def test_what_was_missed_arrives_after_the_welcome_with_server_time(chatd_irc):
    await register(chatd_irc, "alice")
    alice = await irc_user(chatd_irc, "alice")
    alice.send("JOIN #lobby")
    await alice.expect("366")
    await alice.quit()
    while chatd_irc.bus.online("alice"):  # until the server has let go of alice too
        await _sleep(0.01)
    bob = await text_user(chatd_irc, "bob")
    bob.say("/join lobby")
    await bob.text("* you are in")
    bob.say("while you were out")
    bob.say("/msg alice call me")
    await bob.text("[to alice]")

    alice = await irc_user(chatd_irc, "alice", caps="sasl server-time")
    after_welcome = []  # until the replay's last line, the summary
    while not after_welcome or "while you were away" not in after_welcome[-1]:
        after_welcome.append(await alice.line())
    assert after_welcome[:3] == [
        ":alice!alice@chatd JOIN #lobby",
        ":chatd 353 alice = #lobby :alice bob",
        ":chatd 366 alice #lobby :End of /NAMES list.",
    ]
    missed = [x for x in after_welcome if "PRIVMSG" in x]
    assert [x.split(" ", 1)[1] for x in missed] == [
        ":bob!bob@chatd PRIVMSG #lobby :while you were out",
        ":bob!bob@chatd PRIVMSG alice :call me",
    ]
    assert all(x.startswith("@time=20") for x in missed)
    assert after_welcome[-1] == ":chatd NOTICE alice :while you were away: 2 messages, 0 notices"
    bob.say("live again")
    assert (await alice.expect("PRIVMSG")).endswith(":bob!bob@chatd PRIVMSG #lobby :live again")
    await alice.quit()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_a_client_without_server_time_reads_missed_lines_with_their_time(chatd_irc):
    await register(chatd_irc, "alice")
    bob = await text_user(chatd_irc, "bob")
    bob.say("/msg alice are you there?")
    await bob.text("[to alice]")
    alice = await irc_user(chatd_irc, "alice")
    line = await alice.expect("PRIVMSG")
    assert line.startswith(":bob!bob@chatd PRIVMSG alice :[20") and line.endswith("] are you there?")
    await alice.quit()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_groups_are_channels_an_irc_user_is_invited_to_and_finds_at_login(chatd_irc):
    ted = await typed_user(chatd_irc, "ted")
    bob_text = await text_user(chatd_irc, "bob")  # IRC has no friend command: bob answers ted from a terminal
    bob = await irc_user(chatd_irc, "bob")
    ted.send("FRIEND_REQUEST", sender="ted", receiver="bob")
    assert (await ted.payload("FRIEND_REQUEST_ACK"))["code"] == 0
    assert (await bob.expect("NOTICE")).startswith(":ted!ted@chatd NOTICE bob :wants to be your friend")
    await bob_text.text("* ted wants to be your friend")
    bob_text.say("/friend accept ted")
    await bob_text.text("* accepted")
    ted.send("GROUP_CREATE", name="Book Club", members=["bob"])
    group = (await ted.payload("GROUP_CREATE_ACK"))["groupId"]
    assert await bob.expect("INVITE") == f":ted!ted@chatd INVITE bob #{group}"
    bob.send(f"JOIN #{group}")
    assert await bob.expect("JOIN") == f":bob!bob@chatd JOIN #{group}"
    assert await bob.expect("353") == f":chatd 353 bob * #{group} :bob @ted"
    bob.send(f"MODE #{group}", "LIST")
    assert await bob.expect("324") == f":chatd 324 bob #{group} :+int"
    assert await bob.expect("322", f"#{group}") == f":chatd 322 bob #{group} 2 :[group: Book Club]"
    bob.send(f"PRIVMSG #{group} :hello club")
    got = await ted.payload("GROUP_MESSAGE")
    assert (got["sender"], got["groupId"], got["content"]) == ("bob", group, "hello club")
    bob.send(f"TOPIC #{group} :only the leader")
    assert await bob.expect("482") == f":chatd 482 bob #{group} :only the leader of {group} may set its topic"
    await bob.quit()
    bob = await irc_user(chatd_irc, "bob")
    assert f":bob!bob@chatd JOIN #{group}" in await bob.sync()
    await bob.quit()
    await bob_text.close()
    await ted.close()


@pytest_twisted.ensureDeferred
async def test_bad_input_gets_irc_numerics_and_a_wrong_password_closes(chatd_irc):
    await register(chatd_irc, "alice")
    client = await connect_irc(chatd_irc)
    client.send("JOIN #lobby", "PRIVMSG alice :" + "x" * 600, "PASS wrong", "NICK alice", "USER a 0 * :A")
    assert await client.expect("451") == ":chatd 451 * :You have not registered"
    assert await client.expect("417") == ":chatd 417 * :Input line was too long (512 bytes with CRLF, tags apart)"
    assert await client.expect("464") == ":chatd 464 alice :invalid credentials (chatd 2001)"
    assert await client.line() == "ERROR :Closing link: invalid credentials (chatd 2001)"
    await client.closed

    alice = await irc_user(chatd_irc, "alice")
    long_tags = "@" + ";".join(f"t{n}=v" for n in range(900))  # over 4096 bytes of tags
    alice.send("FROB", "PRIVMSG nobody :hi", "JOIN bad", "NICK someone", long_tags + " PING x")
    assert await alice.expect("421") == ":chatd 421 alice FROB :Unknown command"
    assert await alice.expect("401") == ":chatd 401 alice nobody :No such nick/channel"
    assert await alice.expect("403") == ":chatd 403 alice bad :No such channel"
    assert (await alice.expect("432")).startswith(":chatd 432 alice someone :Your nick is your chatd account")
    assert (await alice.expect("417")).startswith(":chatd 417 alice ")
    alice.send("@label=1;+x=y PING tagged")  # tags within the limit are fine
    assert await alice.expect("PONG") == ":chatd PONG chatd tagged"
    await alice.quit()


@pytest_twisted.ensureDeferred
async def test_irc_over_tls(data_dir, tls_files):
    key, cert, pem = tls_files
    config = dataclasses.replace(
        irc_config(data_dir), irc=("tls:tcp:0:interface=127.0.0.1",), tls=TLS(str(cert), str(key))
    )
    service = await start_service(config)
    try:
        await register(service, "alice")
        alice = await irc_user(service, "alice", caps="sasl", tls_root=ssl.Certificate.loadPEM(pem))
        assert [s.kind for s in service.connections.sessions if s.user == "alice"] == ["tls"]
        await alice.quit()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_too_many_connections_from_one_address(data_dir):
    service = await start_irc_service(data_dir, max_connections_per_ip=2)
    try:
        first, second = await connect_irc(service), await connect_irc(service)
        third = await connect_irc(service)
        assert await third.line() == "ERROR :Closing link: too many connections from your address (chatd 7015)"
        await third.closed
        for client in (first, second):
            await client.quit()
    finally:
        await service.stopService()
