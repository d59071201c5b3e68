"""Exactly-once sends over real sockets: a message resent under its client id (typed clientMessageId, events and
colon tempId, action client_message_id) on the same connection, after a reconnect, or after a daemon restart, is
answered with the original message's id and time; nothing is stored or delivered twice. Over Socket.IO too, with
the real npm socket.io-client."""

import signal
import subprocess
import urllib.request

import orjson
import pytest
import pytest_twisted

from tests.conftest import act, action_frame, make_config, start_service, typed_user
from tests.integration.test_parity import dialect_user, frame_of
from tests.integration.test_socketio_chat import node_client
from tests.integration.test_twistd import FAST, Conversation, _twistd, _wait_for
from tests.wsclient import Http, registered_key


async def joined(service, name: str, room: str = "lobby", register: bool = True):
    client = await typed_user(service, name, register=register)
    client.send("USER_JOIN", room=room)
    await client.payload("USER_JOIN")
    return client


async def texts_in(service, token_user: str, room: str = "lobby") -> list[str]:
    """The room's history, read over REST by `token_user` (password "secret")."""
    http = Http(service)
    try:
        _, login = await http.json("POST", "/login", json={"username": token_user, "password": "secret"})
        _, page = await http.json("GET", f"/messages?cid={room}&limit=100", token=login["token"])
        return [m["text"] for m in page["messages"]]
    finally:
        await http.close()


def received(lines: list[bytes]) -> list[str]:
    return [f["payload"]["content"] for f in map(orjson.loads, lines) if f["type"] == "TEXT_MESSAGE"]


@pytest_twisted.ensureDeferred
async def test_a_resend_on_the_same_connection_is_answered_with_the_original_and_stored_once(chatd):
    alice, bob = await joined(chatd, "alice"), await joined(chatd, "bob")
    alice.send("TEXT_MESSAGE", room="lobby", content="only once", clientMessageId="c-1")
    first = await alice.payload("MESSAGE_ACK")
    alice.send("TEXT_MESSAGE", room="lobby", content="only once", clientMessageId="c-1")
    again = await alice.payload("MESSAGE_ACK")
    assert (again["messageId"], again["timestamp"], again["clientMessageId"]) == (
        first["messageId"], first["timestamp"], "c-1",
    )  # fmt: skip
    assert received(await bob.sync()) == ["only once"]  # delivered once: the barrier proves nothing else came
    assert await texts_in(chatd, "bob") == ["only once"]
    assert chatd.core.messages.resends == 1


@pytest_twisted.ensureDeferred
async def test_a_message_whose_ack_was_lost_is_resent_after_a_reconnect_and_kept_once(chatd):
    bob = await joined(chatd, "bob")
    alice = await joined(chatd, "alice")
    alice.send("TEXT_MESSAGE", room="lobby", content="did it arrive?", clientMessageId="c-2")
    alice.transport.loseConnection()  # gone before the ack: the server still carries the message out
    await alice.closed
    alice = await joined(chatd, "alice", register=False)
    alice.send("TEXT_MESSAGE", room="lobby", content="did it arrive?", clientMessageId="c-2")
    ack = await alice.payload("MESSAGE_ACK")
    assert await texts_in(chatd, "bob") == ["did it arrive?"]
    assert received(await bob.sync()) == ["did it arrive?"]
    history = await texts_in(chatd, "alice")
    assert history == ["did it arrive?"] and ack["code"] == 0


@pytest_twisted.ensureDeferred
async def test_after_a_daemon_restart_a_resend_gets_the_original_id_and_time(data_dir):
    service = await start_service(make_config(data_dir))
    try:
        alice = await joined(service, "alice")
        await (await joined(service, "bob")).close()
        alice.send("TEXT_MESSAGE", room="lobby", content="before the restart", clientMessageId="c-3")
        first = await alice.payload("MESSAGE_ACK")
        await alice.close()
    finally:
        await service.stopService()
    service = await start_service(make_config(data_dir))
    try:
        assert not service.core.messages.sent_ids  # nothing in memory: the database answers
        bob = await joined(service, "bob", register=False)
        alice = await joined(service, "alice", register=False)
        alice.send("TEXT_MESSAGE", room="lobby", content="before the restart", clientMessageId="c-3")
        again = await alice.payload("MESSAGE_ACK")
        assert (again["messageId"], again["timestamp"]) == (first["messageId"], first["timestamp"])
        assert received(await bob.sync()) == []
        assert await texts_in(service, "bob") == ["before the restart"]
        # the next new message is not held back by the resend
        alice.send("TEXT_MESSAGE", room="lobby", content="after", clientMessageId="c-4")
        assert (await alice.payload("MESSAGE_ACK"))["messageId"] > first["messageId"]
        assert received(await bob.sync()) == ["after"]
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_an_id_reused_for_another_message_is_a_new_message(chatd):
    alice, bob = await joined(chatd, "alice"), await joined(chatd, "bob")
    alice.send("TEXT_MESSAGE", room="lobby", content="first page load", clientMessageId=1)
    first = await alice.payload("MESSAGE_ACK")
    alice.send("TEXT_MESSAGE", room="lobby", content="after a reload, counting from 1 again", clientMessageId=1)
    second = await alice.payload("MESSAGE_ACK")
    assert second["messageId"] > first["messageId"]
    alice.send("TEXT_MESSAGE", room="lobby", content="after a reload, counting from 1 again", clientMessageId=1)
    assert (await alice.payload("MESSAGE_ACK"))["messageId"] == second["messageId"]  # the id now names the new one
    bob.send("TEXT_MESSAGE", room="lobby", content="first page load", clientMessageId=1)  # ids are per sender
    assert (await bob.payload("MESSAGE_ACK"))["messageId"] > second["messageId"]
    assert received(await alice.sync()) == ["first page load"]
    assert await texts_in(chatd, "bob") == [
        "first page load", "after a reload, counting from 1 again", "first page load",
    ]  # fmt: skip


@pytest_twisted.ensureDeferred
async def test_every_dialect_that_carries_a_client_id_gets_the_original_back(chatd):
    watcher = await joined(chatd, "watcher")
    answers = {}
    for dialect in ("typed", "events", "colon", "action"):
        client = await dialect_user(chatd, dialect, f"{dialect}-user")
        ids = []
        for _ in range(2):
            if dialect == "action":
                act(client, "send_message", room_id="lobby", content="from action", client_message_id="a-1")
                count = await action_frame(client, "character_count")
                act(client, "confirm_count", transaction_id=count["data"]["transaction_id"], confirm=True)
                ack = await action_frame(client, "ack")
                assert ack["data"]["client_message_id"] == "a-1"
                ids.append(ack["data"]["message_id"])
                continue
            if dialect == "typed":
                client.send_raw(frame_of(dialect, "USER_JOIN", {"room": "lobby"}) + b"\n")
                frame = frame_of(dialect, "TEXT_MESSAGE", {"room": "lobby", "content": "from typed",
                                                           "clientMessageId": "t-1"})  # fmt: skip
            elif dialect == "events":
                client.send_raw(frame_of(dialect, "CLIENT_CHAT_JOIN", {"cid": "lobby"}) + b"\n")
                frame = frame_of(dialect, "CLIENT_CHAT_SEND", {"cid": "lobby", "text": "from events", "tempId": 7})
            else:
                client.send_raw(frame_of(dialect, "GROUP:JOIN_GROUP", "lobby") + b"\n")
                frame = frame_of(dialect, "CHAT:SEND_MESSAGE_TEXT", {"groupId": "lobby", "text": "from colon",
                                                                     "tempId": "k-1"})  # fmt: skip
            client.send_raw(frame + b"\n")
            for line in await client.sync():
                reply = orjson.loads(line)
                if reply.get("type") == "MESSAGE_ACK":
                    ids.append(reply["payload"]["messageId"])
                elif reply.get("event") == "SERVER_CHAT_MESSAGE_STATUS" and reply["data"]["status"] == "sent":
                    assert reply["data"]["tempId"] == 7
                    ids.append(reply["data"]["id"])
                elif reply.get("type") == "CHAT:MESSAGE_RETURN_TEXT" and reply["data"].get("tempId") == "k-1":
                    ids.append(reply["data"]["id"])
        answers[dialect] = ids
        await client.close()
    assert all(len(ids) == 2 and ids[0] == ids[1] for ids in answers.values()), answers
    assert received(await watcher.sync()) == ["from typed", "from events", "from colon", "from action"]


@pytest_twisted.ensureDeferred
async def test_typed_group_and_encrypted_messages_resent_under_their_client_id_are_kept_once(chatd):
    alice, bob = await joined(chatd, "alice"), await joined(chatd, "bob")
    sealed = {"ciphertext": "q83vEjRWeJA=", "algorithm": "x25519-aes256gcm", "iv": "AAECAwQFBgc="}
    sends = [
        ("GROUP_MESSAGE", {"group": "lobby", "content": "to the group"}, "g-1"),
        ("ENCRYPTED_MESSAGE", {"receiver": "bob", **sealed}, 42),
    ]
    for kind, payload, client_id in sends:
        answers = []
        for attempt in range(3):
            if attempt == 2:  # the third time after a reconnect
                await alice.close()
                alice = await joined(chatd, "alice", register=False)
            alice.send(kind, clientMessageId=client_id, **payload)
            ack = await alice.payload("MESSAGE_ACK")
            assert ack["clientMessageId"] == client_id and ack["code"] == 0
            answers.append((ack["messageId"], ack["timestamp"]))
        assert len(set(answers)) == 1, (kind, answers)
    kinds = ("TEXT_MESSAGE", "GROUP_MESSAGE", "ENCRYPTED_MESSAGE")
    got = [f for f in map(orjson.loads, await bob.sync()) if f["type"] in kinds]
    assert len(got) == 2 and got[-1]["type"] == "ENCRYPTED_MESSAGE", got  # each delivered once
    assert got[-1]["payload"]["ciphertext"] == sealed["ciphertext"]
    assert await texts_in(chatd, "bob") == ["to the group"]
    http = Http(chatd)
    try:
        _, login = await http.json("POST", "/login", json={"username": "bob", "password": "secret"})
        _, page = await http.json("GET", "/messages?cid=dm:alice:bob&limit=100", token=login["token"])
        assert len(page["messages"]) == 1
    finally:
        await http.close()


SOCKETIO_SENDS = {  # dialect: (its login event, its join, its send with a tempId, the reply frame naming the message)
    "events": ("SERVER_AUTH_OK", ("CLIENT_CHAT_JOIN", {"cid": "lobby"}),
               ("CLIENT_CHAT_SEND", {"cid": "lobby", "text": "over socket.io", "tempId": "s-1"}), "SERVER_CHAT_RECEIVE"),
    "colon": ("USER:LOGGED_IN", ("GROUP:JOIN_GROUP", "lobby"),
              ("CHAT:SEND_MESSAGE_TEXT", {"groupId": "lobby", "text": "over socket.io", "tempId": 9}),
              "CHAT:MESSAGE_RETURN_TEXT"),
}  # fmt: skip


@pytest.mark.parametrize("dialect", sorted(SOCKETIO_SENDS))
@pytest_twisted.ensureDeferred
async def test_a_socketio_resend_after_a_reconnect_gets_the_original_message_and_is_stored_once(chatd, dialect):
    """The npm socket.io-client sends with a tempId (its ack callback gets the reply), disconnects, connects again
    (a new Engine.IO session and socket) and sends the same again: the reply names the first message, its id and
    time, and the room holds it once."""
    login, join, send, reply_kind = SOCKETIO_SENDS[dialect]
    bob = await joined(chatd, "bob")
    key = await registered_key(chatd, "sio")
    app = await node_client(chatd, auth={"token": key, "dialect": dialect})
    try:
        await app.event(login)
        await app.ask(*join)
        replies = []
        for attempt in range(2):
            if attempt:
                app.command(disconnect=True)
                await app.next(disconnect="io client disconnect")
                app.command(connect=True)
                await app.event(login)  # logged in again, on a new socket
            reply = await app.ask(*send)
            assert isinstance(reply, list), reply  # not {"error": ...}
            (message,) = [frame["data"] for frame in reply if frame.get("event", frame.get("type")) == reply_kind]
            assert message["tempId"] == send[1]["tempId"]
            replies.append(message)
        first, again = replies
        assert again == first  # the same id and time: the original message
        assert received(await bob.sync()) == ["over socket.io"]  # delivered once
        assert await texts_in(chatd, "bob") == ["over socket.io"]  # stored once
    finally:
        await app.close()


def test_after_a_kill_9_every_resend_is_answered_once_whether_or_not_its_ack_was_read(tmp_path):
    """A client sends 60 messages with client ids and reads only some acks; the daemon is killed with SIGKILL
    mid-way; after the restart the client sends all 60 again: those committed (acked or not) get their first
    id back, the others are stored now; each text is in the history exactly once."""
    config = tmp_path / "chatd.toml"
    config.write_text(FAST)
    data = str(tmp_path / "data")

    def start() -> tuple[subprocess.Popen, int, int]:
        process = _twistd("--config", str(config), "--data-dir", data, "--line", "tcp:0:interface=127.0.0.1",
                          "--http", "tcp:0:interface=127.0.0.1")  # fmt: skip
        seen: list[str] = []
        line = int(_wait_for(process, r"line listening on 127\.0\.0\.1:(\d+)", seen).group(1))
        http = int(_wait_for(process, r"http listening on 127\.0\.0\.1:(\d+)", seen).group(1))
        _wait_for(process, r"chatd ready", seen)
        return process, line, http

    process, port, _ = start()
    try:
        alice = Conversation(port)
        for name in ("alice", "bob"):
            alice.send("REGISTER_REQUEST", username=name, passwordHash="pw")
            assert alice.expect("REGISTER_RESPONSE")["code"] == 0
        alice.send("LOGIN_REQUEST", username="alice", passwordHash="pw")
        assert alice.expect("LOGIN_RESPONSE")["code"] == 0
        for n in range(60):
            alice.send("TEXT_MESSAGE", receiver="bob", content=f"text {n}", clientMessageId=f"id-{n}")
        first = {n: alice.expect("MESSAGE_ACK")["messageId"] for n in range(20)}  # the rest are never read
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    process, port, http = start()
    try:
        alice = Conversation(port)
        alice.send("LOGIN_REQUEST", username="alice", passwordHash="pw")
        assert alice.expect("LOGIN_RESPONSE")["code"] == 0
        again = {}
        for n in range(60):
            alice.send("TEXT_MESSAGE", receiver="bob", content=f"text {n}", clientMessageId=f"id-{n}")
            again[n] = alice.expect("MESSAGE_ACK")["messageId"]
        assert all(again[n] == first[n] for n in first)
        assert len(set(again.values())) == 60
        login = urllib.request.Request(
            f"http://127.0.0.1:{http}/login", data=orjson.dumps({"username": "bob", "password": "pw"}), method="POST"
        )
        token = orjson.loads(urllib.request.urlopen(login, timeout=10).read())["token"]
        page = urllib.request.Request(
            f"http://127.0.0.1:{http}/messages?cid=dm:alice:bob&after=0&limit=100",
            headers={"Authorization": f"Bearer {token}"},
        )
        texts = [m["text"] for m in orjson.loads(urllib.request.urlopen(page, timeout=10).read())["messages"]]
        assert sorted(texts) == sorted(f"text {n}" for n in range(60))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
