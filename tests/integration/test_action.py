"""Seed 001, the action dialect, over real sockets: every action, the character-count handshake and its
failure paths, history by time, chunked files up and down, and chat with the typed and text dialects."""

import base64
import os

import orjson
import pytest_twisted

from chatdaemon import errors
from chatdaemon.dialects.action import letter_frequencies
from tests.conftest import (
    act,
    action_frame,
    action_send,
    action_user,
    connect,
    make_config,
    start_service,
    text_user,
    typed_user,
)

PACKET = 32768  # bytes per file_send_data the test client sends


def packets(data: bytes, size: int = PACKET) -> list[str]:
    return [base64.b64encode(data[i : i + size]).decode() for i in range(0, len(data), size)] or [""]


async def reply(client) -> dict:
    """The next frame that is not a push (receive_message, receive_file)."""
    while True:
        frame = await action_frame(client)
        if not frame["action"].startswith("receive_"):
            return frame


async def upload(
    client, room: str, path: str, data: bytes, mime: str = "application/octet-stream", fin: bool = True
) -> dict:
    parts = packets(data)
    act(
        client,
        "file_send_init",
        room_id=room,
        file_path=path,
        file_size=len(data),
        file_type=mime,
        total_packets=len(parts),
    )
    init = await reply(client)
    assert init["action"] == "file_send_init" and init["status"] == "success", init
    assert init["message"] == "Server ready to receive file."
    for seq, part in enumerate(parts):  # pipelined: every chunk, then every ack
        act(client, "file_send_data", room_id=room, file_path=path, sequence_number=seq, file_data=part)
    for seq in range(len(parts)):
        ack = await reply(client)
        assert (ack["action"], ack["status"], ack["data"]["sequence_number"]) == ("file_send_data", "success", seq), ack
        assert ack["message"] == f"Chunk {seq} received."
    if not fin:
        return init
    act(client, "file_send_fin", room_id=room, file_path=path, total_packets=len(parts))
    done = await reply(client)
    assert (done["action"], done["status"], done["message"]) == (
        "file_send_fin",
        "success",
        "File assembled successfully.",
    ), done
    return done


async def download(client, room: str, path: str, **extra) -> tuple[dict, bytes]:
    act(client, "file_down_req", room_id=room, file_path=path, **extra)
    meta = await reply(client)
    assert (meta["action"], meta["status"], meta["message"]) == (
        "file_down_meta",
        "success",
        "Starting file download.",
    ), meta
    data = b""
    for seq in range(meta["data"]["total_packets"]):
        chunk = await reply(client)
        assert chunk["action"] == "file_down_data" and chunk["data"]["sequence_number"] == seq, chunk
        data += base64.b64decode(chunk["data"]["file_data"])
    fin = await reply(client)
    assert (fin["action"], fin["status"], fin["message"]) == ("file_down_fin", "success", "File download complete.")
    return meta, data


# -- accounts


@pytest_twisted.ensureDeferred
async def test_register_login_and_the_seeds_login_fail(chatd):
    client = await connect(chatd)
    act(client, "register", chatid="alice", password="pw")
    assert await action_frame(client) == {
        "action": "register_success",
        "status": "success",
        "message": "Registration successful",
        "data": {"chatid": "alice"},
    }
    act(client, "register", chatid="alice", password="pw")
    fail = await action_frame(client)
    assert (fail["action"], fail["status"], fail["code"]) == ("register_fail", "error", errors.USER_EXISTS)
    act(client, "login", chatid="alice", password="wrong")
    assert await action_frame(client) == {
        "action": "login_fail",
        "status": "error",
        "message": "Invalid credentials or user already logged in",
        "code": errors.INVALID_CREDENTIALS,
    }
    act(client, "login", chatid="alice", password="pw")
    ok = await action_frame(client)
    assert (ok["action"], ok["status"], ok["message"]) == ("login_success", "success", "Login successful")
    assert ok["data"]["chatid"] == "alice" and len(ok["data"]["session_key"]) > 20
    act(client, "login", chatid="alice", password="pw")
    assert (await action_frame(client))["action"] == "login_fail"  # already logged in here
    other = await connect(chatd)
    act(other, "login", session_key=ok["data"]["session_key"])
    assert (await action_frame(other))["action"] == "login_success"
    act(client, "logout")
    assert (await action_frame(client))["action"] == "logout_success"  # and the key is revoked
    third = await connect(chatd)
    act(third, "login", session_key=ok["data"]["session_key"])
    assert (await action_frame(third))["action"] == "login_fail"


@pytest_twisted.ensureDeferred
async def test_bad_input_gets_an_error_with_original_action_and_the_connection_stays(chatd):
    alice = await action_user(chatd, "alice")
    act(alice, "fly_to_the_moon")
    e = await action_frame(alice)
    assert (e["action"], e["original_action"], e["status"], e["code"]) == (
        "error",
        "fly_to_the_moon",
        "error",
        errors.UNKNOWN_TYPE,
    )
    act(alice, "send_message", room_id="lobby")
    e = await action_frame(alice)
    assert (e["original_action"], e["code"]) == ("send_message", errors.BAD_FIELD)
    alice.send_raw(b'{"action": "send_message", "data": [1]}\n')
    assert (await action_frame(alice))["code"] == errors.BAD_FIELD
    alice.send_raw(b"{not json\n")
    assert (await action_frame(alice))["code"] == errors.BAD_JSON
    act(alice, "send_message", chatid="mallory", room_id="lobby", content="hi")
    e = await action_frame(alice)
    assert (e["original_action"], e["code"]) == ("send_message", errors.BAD_FIELD)
    await action_send(alice, "lobby", "still here")
    anonymous = await connect(chatd)
    act(anonymous, "get_messages", room_id="lobby")
    e = await action_frame(anonymous)
    assert (e["original_action"], e["code"]) == ("get_messages", errors.NOT_LOGGED_IN)


# -- messages and the handshake


@pytest_twisted.ensureDeferred
async def test_send_message_handshake_stores_acks_and_forwards(chatd):
    alice, bob = await action_user(chatd, "alice"), await action_user(chatd, "bob")
    act(bob, "join_room", room_id="lobby")
    joined = await action_frame(bob)
    assert (joined["action"], joined["status"], joined["data"]["room_id"]) == ("join_room", "success", "lobby")
    content = "Ærø Ünïcode ß 42!"
    act(alice, "send_message", chatid="alice", room_id="lobby", content=content)
    count = await action_frame(alice)
    assert count["action"] == "character_count"
    assert count["data"]["letter_frequencies"] == letter_frequencies(content)
    assert count["data"]["letter_frequencies"]["s"] == 2 and "4" not in count["data"]["letter_frequencies"]
    assert count["data"]["original_action"] == "send_message"
    assert not await bob.sync()  # nothing is forwarded before the confirmation
    tx = count["data"]["transaction_id"]
    act(alice, "confirm_count", transaction_id=tx, confirm=True)
    ack = await action_frame(alice)
    assert (ack["action"], ack["status"], ack["message"]) == ("ack", "success", "Action processed successfully.")
    assert ack["data"]["transaction_id"] == tx
    got = await action_frame(bob, "receive_message")
    assert (got["status"], got["message"]) == ("success", "New message received.")
    data = got["data"]
    assert (data["room_id"], data["sender_chatid"], data["content"]) == ("lobby", "alice", content)
    assert data["transaction_id"] == f"msg-{ack['data']['message_id']}"
    assert data["timestamp"].endswith("Z") and data["timestamp"][10] == "T" and len(data["timestamp"]) == 20
    assert not [line for line in await alice.sync() if b"receive_message" in line]  # not echoed to the sender


@pytest_twisted.ensureDeferred
async def test_confirm_false_and_a_wrong_transaction_id_drop_the_message(chatd):
    alice = await action_user(chatd, "alice")
    act(alice, "send_message", room_id="lobby", content="never stored")
    tx = (await action_frame(alice, "character_count"))["data"]["transaction_id"]
    act(alice, "confirm_count", transaction_id=tx, confirm=False)
    e = await action_frame(alice)
    assert (e["action"], e["original_action"], e["status"], e["code"]) == (
        "error",
        "send_message",
        "error",
        errors.COUNT_NOT_CONFIRMED,
    )
    assert e["data"]["transaction_id"] == tx
    act(alice, "confirm_count", transaction_id=tx, confirm=True)  # too late: it is gone
    e = await action_frame(alice)
    assert (e["original_action"], e["code"]) == ("confirm_count", errors.NO_SUCH_TRANSACTION)
    act(alice, "confirm_count", transaction_id="made-up", confirm=True)
    assert (await action_frame(alice))["code"] == errors.NO_SUCH_TRANSACTION
    act(alice, "get_messages", room_id="lobby", from_time="2000-01-01T00:00:00Z")
    assert (await action_frame(alice))["code"] == errors.NO_SUCH_ROOM  # nothing half-done: not even the room


@pytest_twisted.ensureDeferred
async def test_no_confirm_within_the_configured_time_drops_the_message(data_dir):
    service = await start_service(make_config(data_dir, handshake_timeout=0.3))
    try:
        alice, bob = await action_user(service, "alice"), await action_user(service, "bob")
        act(bob, "join_room", room_id="lobby")
        await action_frame(bob, "join_room")
        act(alice, "send_message", room_id="lobby", content="too slow")
        tx = (await action_frame(alice, "character_count"))["data"]["transaction_id"]
        act(alice, "confirm_count", transaction_id="tx-999", confirm=True)  # a wrong id leaves it waiting
        assert (await action_frame(alice))["code"] == errors.NO_SUCH_TRANSACTION
        e = await action_frame(alice, timeout=3)
        assert (e["action"], e["original_action"], e["code"], e["data"]["transaction_id"]) == (
            "error",
            "send_message",
            errors.HANDSHAKE_TIMEOUT,
            tx,
        )
        act(alice, "confirm_count", transaction_id=tx, confirm=True)
        assert (await action_frame(alice))["code"] == errors.NO_SUCH_TRANSACTION
        assert not [line for line in await bob.sync() if b"receive_message" in line]
        # and a prompt answer still works
        await action_send(alice, "lobby", "in time")
        assert (await action_frame(bob, "receive_message"))["data"]["content"] == "in time"
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_the_receiving_side_counts_confirms_and_acks(chatd):
    alice, bob = await typed_user(chatd, "alice"), await action_user(chatd, "bob")
    alice.send("USER_JOIN", room="lobby")
    await alice.payload("USER_JOIN")
    act(bob, "join_room", room_id="lobby")
    await action_frame(bob, "join_room")
    alice.send("TEXT_MESSAGE", room="lobby", content="Hello, Wörld")
    message_id = (await alice.payload("MESSAGE_ACK"))["messageId"]
    got = (await action_frame(bob, "receive_message"))["data"]
    tx = got["transaction_id"]
    act(
        bob,
        "character_count",
        transaction_id=tx,
        letter_frequencies=letter_frequencies(got["content"]),
        original_action="receive_message",
    )
    assert await action_frame(bob) == {"action": "confirm_count", "data": {"transaction_id": tx, "confirm": True}}
    act(bob, "character_count", transaction_id=tx, letter_frequencies={"h": 1}, original_action="receive_message")
    assert (await action_frame(bob))["data"]["confirm"] is False
    act(bob, "ack", transaction_id=tx)
    receipt = await alice.payload("READ_RECEIPT")  # delivered: the sender hears of it as a read receipt
    assert (receipt["reader"], receipt["messageId"]) == ("bob", message_id)
    act(bob, "ack", transaction_id="msg-999999")
    assert (await action_frame(bob))["code"] == errors.NO_SUCH_MESSAGE
    act(bob, "character_count", transaction_id="nonsense", letter_frequencies={})
    assert (await action_frame(bob))["code"] == errors.NO_SUCH_TRANSACTION


# -- rooms


@pytest_twisted.ensureDeferred
async def test_a_private_group_is_refused_join_and_leave_work(chatd):
    carol = await typed_user(chatd, "carol")
    carol.send("GROUP_CREATE", name="secret club", members=[])
    group = (await carol.payload("GROUP_CREATE_ACK"))["groupId"]
    alice = await action_user(chatd, "alice")
    for action, extra, code in (  # posting, reading and listing as every dialect refuses them; joining as joins are
        ("send_message", {"content": "let me in"}, errors.NOT_A_MEMBER),
        ("get_messages", {}, errors.NOT_A_MEMBER),
        ("join_room", {}, errors.PRIVATE_ROOM),
        ("file_list_req", {}, errors.NOT_A_MEMBER),
        ("file_send_init", {"file_path": "f", "file_size": 1, "total_packets": 1}, errors.NOT_A_MEMBER),
    ):
        act(alice, action, room_id=group, **extra)
        e = await action_frame(alice)
        assert (e["action"], e["original_action"], e["status"], e["code"]) == ("error", action, "error", code), e
    act(alice, "get_messages", room_id="nowhere")
    assert (await action_frame(alice))["code"] == errors.NO_SUCH_ROOM
    act(alice, "join_room", room_id="cafe")
    assert (await action_frame(alice))["data"] == {"room_id": "cafe", "members": 1}
    act(alice, "leave_room", room_id="cafe")
    left = await action_frame(alice)
    assert (left["action"], left["status"], left["data"]) == ("leave_room", "success", {"room_id": "cafe"})
    act(alice, "leave_room", room_id="cafe")
    assert (await action_frame(alice))["code"] == errors.NOT_A_MEMBER


@pytest_twisted.ensureDeferred
async def test_the_first_message_to_a_public_room_joins_it(chatd):
    bob = await text_user(chatd, "bob")
    bob.say("/join plaza")
    await bob.text("* you are in #plaza")
    alice = await action_user(chatd, "alice")
    await action_send(alice, "plaza", "hello plaza")
    assert await bob.text("[#plaza]") == "[#plaza] <alice> hello plaza"
    bob.say("hi alice")
    assert (await action_frame(alice, "receive_message"))["data"]["content"] == "hi alice"


@pytest_twisted.ensureDeferred
async def test_direct_messages_by_chatid(chatd):
    alice, bob = await action_user(chatd, "alice"), await typed_user(chatd, "bob")
    ack = await action_send(alice, "bob", "psst")
    assert ack["data"]["room_id"] == "dm:alice:bob"
    got = await bob.payload("TEXT_MESSAGE")
    assert (got["sender"], got["content"]) == ("alice", "psst")
    bob.send("TEXT_MESSAGE", receiver="alice", content="yes?")
    received = (await action_frame(alice, "receive_message"))["data"]
    assert (received["room_id"], received["sender_chatid"], received["content"]) == ("dm:alice:bob", "bob", "yes?")
    await action_send(alice, received["room_id"], "answering in the same room_id")
    assert (await bob.payload("TEXT_MESSAGE"))["content"] == "answering in the same room_id"
    act(alice, "get_messages", room_id="bob")
    listing = (await action_frame(alice, "messages_list"))["data"]
    assert [m["content"] for m in listing["messages"]] == ["psst", "yes?", "answering in the same room_id"]


@pytest_twisted.ensureDeferred
async def test_an_action_user_chats_with_typed_and_text_users_both_ways(chatd):
    ann = await action_user(chatd, "ann")
    ted = await typed_user(chatd, "ted")
    tex = await text_user(chatd, "tex")
    ted.send("USER_JOIN", room="mixed")
    await ted.payload("USER_JOIN")
    tex.say("/join mixed")
    await tex.text("* you are in #mixed")
    await action_send(ann, "mixed", "from action")
    got = await ted.payload("TEXT_MESSAGE")
    assert (got["sender"], got["room"], got["content"]) == ("ann", "mixed", "from action")
    assert await tex.text("[#mixed]") == "[#mixed] <ann> from action"
    ted.send("TEXT_MESSAGE", room="mixed", content="from typed")
    assert (await action_frame(ann, "receive_message"))["data"]["content"] == "from typed"
    tex.say("from text")
    got = (await action_frame(ann, "receive_message"))["data"]
    assert (got["sender_chatid"], got["content"]) == ("tex", "from text")


# -- history


@pytest_twisted.ensureDeferred
async def test_get_messages_from_time_is_paged(data_dir):
    service = await start_service(make_config(data_dir, history_page=3))
    try:
        alice = await action_user(service, "alice")
        for n in range(7):
            await action_send(alice, "lobby", f"m{n}")
        seen, after, pages = [], 0, 0
        while True:
            act(
                alice,
                "get_messages",
                chatid="alice",
                room_id="lobby",
                from_time="2000-01-01T00:00:00Z",
                after_message_id=after,
            )
            listing = await action_frame(alice)
            assert (listing["action"], listing["status"], listing["message"]) == (
                "messages_list",
                "success",
                "Messages retrieved successfully.",
            )
            data = listing["data"]
            assert data["room_id"] == "lobby" and len(data["messages"]) <= 3
            for m in data["messages"]:
                assert set(m) == {"message_id", "sender_chatid", "content", "timestamp"}
            seen += [m["content"] for m in data["messages"]]
            pages += 1
            if not data["has_more"]:
                break
            after = data["next_after_message_id"]
        assert seen == [f"m{n}" for n in range(7)] and pages == 3
        act(alice, "get_messages", room_id="lobby", from_time="2999-01-01T00:00:00Z")
        assert (await action_frame(alice))["data"]["messages"] == []
        act(alice, "get_messages", room_id="lobby", from_time="yesterday")
        assert (await action_frame(alice))["code"] == errors.BAD_FIELD
    finally:
        await service.stopService()


# -- files


@pytest_twisted.ensureDeferred
async def test_a_5_mb_file_goes_up_and_down_byte_for_byte(chatd):
    alice, bob = await action_user(chatd, "alice"), await action_user(chatd, "bob")
    for client in (alice, bob):
        act(client, "join_room", room_id="files")
        await action_frame(client, "join_room")
    data = os.urandom(5 * 1024 * 1024 + 17)
    done = await upload(alice, "files", "big.bin", data)
    assert done["data"]["file_size"] == len(data)
    offer = await action_frame(bob, "receive_file")
    assert (offer["status"], offer["message"]) == ("success", "New file received.")
    assert {k: offer["data"][k] for k in ("room_id", "sender_chatid", "file_path", "file_size", "file_type")} == {
        "room_id": "files",
        "sender_chatid": "alice",
        "file_path": "big.bin",
        "file_size": len(data),
        "file_type": "application/octet-stream",
    }
    meta, got = await download(bob, "files", "big.bin")
    assert meta["data"]["file_size"] == len(data) and got == data
    stored = os.listdir(os.path.join(chatd.config.data_dir, "files"))
    assert done["data"]["file_id"] in stored and "big.bin" not in stored


@pytest_twisted.ensureDeferred
async def test_file_list_and_two_uploads_of_one_name_do_not_overwrite(chatd):
    alice, bob = await action_user(chatd, "alice"), await action_user(chatd, "bob")
    await upload(alice, "share", "notes.txt", b"alice's notes", "text/plain")
    await upload(bob, "share", "notes.txt", b"bob's notes, longer", "text/plain")
    await upload(alice, "share", "image.jpg", b"\xff\xd8 jpeg", "image/jpeg")
    act(alice, "file_list_req", chat_id="alice", room_id="share")
    listing = await action_frame(alice)
    assert (listing["action"], listing["status"], listing["message"]) == (
        "file_list_req",
        "success",
        "File list for room share",
    )
    assert listing["data"]["file_list"] == "notes.txt, notes.txt, image.jpg"
    files = listing["data"]["files"]
    assert [f["sender_chatid"] for f in files] == ["alice", "bob", "alice"]
    _, newest = await download(alice, "share", "notes.txt")
    assert newest == b"bob's notes, longer"  # by name: the newest of that name
    _, first = await download(alice, "share", "notes.txt", file_id=files[0]["file_id"])
    assert first == b"alice's notes"  # by the server's id: exactly that one


@pytest_twisted.ensureDeferred
async def test_client_file_paths_are_display_names_only(chatd):
    alice = await action_user(chatd, "alice")
    data_dir = chatd.config.data_dir
    names = ["../../etc/passwd", "/abs/path/x.txt", "name\x00.txt", "..\\..\\win.ini", "..", "", "%2e%2e%2f"]
    for name in names:
        await upload(alice, "vault", name, b"payload " + name.encode("utf-8", "replace"))
    act(alice, "file_list_req", room_id="vault")
    shown = [f["file_path"] for f in (await action_frame(alice, "file_list_req"))["data"]["files"]]
    assert shown == ["passwd", "x.txt", "name.txt", "win.ini", "file", "file", "%2e%2e%2f"]
    for entry in os.listdir(os.path.join(data_dir, "files")):
        assert len(entry) == 32 and all(ch in "0123456789abcdef" for ch in entry)
    assert not os.path.exists(os.path.join(data_dir, "etc"))
    _, got = await download(alice, "vault", "../../etc/passwd")
    assert got == b"payload ../../etc/passwd"
    # a 10 MB name exceeds the line limit: refused, and the connection goes on
    alice.send_raw(
        orjson.dumps(
            {
                "action": "file_send_init",
                "data": {"room_id": "vault", "file_path": "a" * 10_000_000, "file_size": 1, "total_packets": 1},
            }
        )
        + b"\n"
    )
    assert (await action_frame(alice))["code"] == errors.LINE_TOO_LONG
    long_name = "b" * 60000  # under the line limit: cut to 255 characters for display
    await upload(alice, "vault", long_name, b"x")
    act(alice, "file_list_req", room_id="vault")
    assert (await action_frame(alice, "file_list_req"))["data"]["files"][-1]["file_path"] == "b" * 255


@pytest_twisted.ensureDeferred
async def test_an_interrupted_upload_is_invisible_and_can_be_restarted(chatd):
    alice, bob = await action_user(chatd, "alice"), await action_user(chatd, "bob")
    act(bob, "join_room", room_id="share")
    await action_frame(bob, "join_room")
    data = os.urandom(5 * PACKET)
    await upload(alice, "share", "half.bin", data[: 3 * PACKET], fin=False)  # announces 3 packets only
    await alice.close()
    act(bob, "file_list_req", room_id="share")
    assert (await action_frame(bob, "file_list_req"))["data"]["file_list"] == ""
    alice = await action_user(chatd, "alice", register=False)
    # a fin with packets missing says which
    parts = packets(data)
    act(alice, "file_send_init", room_id="share", file_path="half.bin", file_size=len(data), total_packets=len(parts))
    await action_frame(alice, "file_send_init")
    for seq in (0, 2, 4):
        act(alice, "file_send_data", room_id="share", file_path="half.bin", sequence_number=seq, file_data=parts[seq])
        await action_frame(alice, "file_send_data")
    act(alice, "file_send_fin", room_id="share", file_path="half.bin", total_packets=len(parts))
    e = await action_frame(alice)
    assert (e["action"], e["original_action"], e["code"], e["data"]["missing"]) == (
        "error",
        "file_send_fin",
        errors.INCOMPLETE_MEDIA,
        [1, 3],
    )
    assert not [line for line in await bob.sync() if b"receive_file" in line]
    # restarted from the beginning: every packet again, then fin
    await upload(alice, "share", "half.bin", data)
    assert (await action_frame(bob, "receive_file"))["data"]["file_size"] == len(data)
    assert (await download(bob, "share", "half.bin"))[1] == data


@pytest_twisted.ensureDeferred
async def test_upload_refusals(data_dir):
    service = await start_service(make_config(data_dir))
    try:
        alice = await action_user(service, "alice")
        act(
            alice,
            "file_send_init",
            room_id="r",
            file_path="huge",
            file_size=service.config.files.max_upload_bytes + 1,
            total_packets=10,
        )
        e = await action_frame(alice)
        assert (e["original_action"], e["code"]) == ("file_send_init", errors.TOO_LARGE)
        act(alice, "file_send_init", room_id="r", file_path="f", file_size=4, total_packets=1)
        await action_frame(alice, "file_send_init")
        act(alice, "file_send_data", room_id="r", file_path="f", sequence_number=0, file_data="not base64!")
        e = await action_frame(alice)
        assert (e["original_action"], e["code"], e["data"]["sequence_number"]) == (
            "file_send_data",
            errors.BAD_CHUNK,
            0,
        )
        act(alice, "file_send_data", room_id="r", file_path="f", sequence_number=1, file_data="AAAA")
        assert (await action_frame(alice))["code"] == errors.BAD_CHUNK  # only 0 exists
        act(
            alice,
            "file_send_data",
            room_id="r",
            file_path="f",
            sequence_number=0,
            file_data=base64.b64encode(b"12345").decode(),
        )
        assert (await action_frame(alice))["code"] == errors.TOO_LARGE  # more than announced
        act(
            alice,
            "file_send_data",
            room_id="r",
            file_path="f",
            sequence_number=0,
            file_data=base64.b64encode(b"123").decode(),
        )
        await action_frame(alice, "file_send_data")
        act(alice, "file_send_fin", room_id="r", file_path="f", total_packets=1)
        assert (await action_frame(alice))["code"] == errors.INCOMPLETE_MEDIA  # 3 bytes of 4
        act(alice, "file_send_data", room_id="r", file_path="nothing", sequence_number=0, file_data="")
        assert (await action_frame(alice))["code"] == errors.NO_SUCH_MEDIA
        act(alice, "file_down_req", room_id="r", file_path="f")
        assert (await action_frame(alice))["code"] == errors.NO_SUCH_MEDIA
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_files_and_messages_reach_an_offline_member_at_login(chatd):
    alice, bob = await action_user(chatd, "alice"), await action_user(chatd, "bob")
    act(bob, "join_room", room_id="share")
    await action_frame(bob, "join_room")
    await bob.close()
    await action_send(alice, "share", "while you were out")
    await upload(alice, "share", "later.txt", b"read me later", "text/plain")
    bob = await action_user(chatd, "bob", register=False)
    message = await action_frame(bob, "receive_message")
    assert message["data"]["content"] == "while you were out"
    offer = await action_frame(bob, "receive_file")
    assert (offer["data"]["file_path"], offer["data"]["file_size"]) == ("later.txt", 13)
    assert (await download(bob, "share", "later.txt"))[1] == b"read me later"


@pytest_twisted.ensureDeferred
async def test_files_are_shared_with_the_typed_media_flow(chatd):
    alice, ted = await action_user(chatd, "alice"), await typed_user(chatd, "ted")
    ted.send("USER_JOIN", room="share")
    await ted.payload("USER_JOIN")
    done = await upload(alice, "share", "pic.png", b"\x89PNG...", "image/png")
    offer = await ted.payload("MEDIA_MESSAGE")
    assert (offer["sender"], offer["fileName"], offer["mediaId"]) == ("alice", "pic.png", done["data"]["file_id"])
    ted.send("FILE_REQUEST", fileId=offer["mediaId"], chunkIndex=1)
    assert base64.b64decode((await ted.payload("FILE_TRANSFER"))["data"]) == b"\x89PNG..."
