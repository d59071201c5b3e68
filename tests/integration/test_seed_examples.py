"""The seeds' own examples, replayed over real sockets: a client written only from a seed must work.

tests/seeds/*.json hold each seed's example frames (001, 002) or names (000, 003, 004), copied from
the seed documents (tests/seeds/README.md). Each test sends the seed's frames as they are (their names,
ids and timestamps unchanged) in the order of a real conversation, and checks chatd's answers against
the seed's examples: the same type or action, every field of the example in the same place with a
value of the same JSON type, and the values the seed fixes (names, status values, messages, codes).
Where an example cannot be sent as it is, the test says why at that spot and sends the closest frame
that works (the example with one field changed).
"""

import base64
import copy
import json
import os
import pathlib
import re
from collections import Counter

import orjson
import pytest
import pytest_twisted

from chatdaemon import errors
from tests.conftest import connect, make_config, start_service
from tests.wsclient import Http, ws_connect

SEEDS = pathlib.Path(__file__).parents[1] / "seeds"
MiB = 1 << 20
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
MISSING = object()


def seed(number: str) -> dict:
    return json.loads((SEEDS / f"{number}.json").read_text(encoding="utf-8"))


def json_type(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", dict: "object", list: "array", type(None): "null"}[type(value)]


def differences(got, example, where: str = "") -> list[str]:
    """How `got` departs from the shape of a seed's `example`: a key of the example missing, or a value of
    another JSON type (a time written like the seed's 2024-01-01T12:00:00Z must be written so too). Items
    of a list are each compared with the example's first item. Keys the example lacks are chatd's own."""
    if isinstance(example, dict):
        if not isinstance(got, dict):
            return [f"{where or 'the frame'}: an object in the seed, {got!r:.60} here"]
        out = []
        for key, value in example.items():
            if key not in got:
                out.append(f"{where}{key}: missing")
            else:
                out += differences(got[key], value, f"{where}{key}.")
        return out
    if json_type(got) != json_type(example):
        return [f"{where[:-1]}: a {json_type(example)} in the seed, {got!r:.60} here"]
    if isinstance(example, list) and example:
        return [problem for i, item in enumerate(got) for problem in differences(item, example[0], f"{where}{i}.")]
    if isinstance(example, str) and ISO_TIME.fullmatch(example) and not ISO_TIME.fullmatch(got):
        return [f"{where[:-1]}: a time like {example!r} in the seed, {got!r} here"]
    return []


def dig(frame, path: str):
    for part in path.split("."):
        frame = frame.get(part, MISSING) if isinstance(frame, dict) else MISSING
    return frame


def like(got: dict, example: dict, *same: str) -> dict:
    """Check `got` against a seed's `example`: its shape, and the same value at each dotted path of `same`."""
    problems = differences(got, example)
    for path in same:
        if dig(got, path) != dig(example, path):
            problems.append(f"{path}: the seed has {dig(example, path)!r}, chatd sent {dig(got, path)!r}")
    assert not problems, f"{orjson.dumps(got)[:300].decode()} is not like the seed's example: {problems}"
    return got


def counts_aside(example: dict) -> dict:
    """A character_count example without its letter_frequencies: a map whose letters are the text's, not the seed's."""
    frame = copy.deepcopy(example)
    del frame["data"]["letter_frequencies"]
    return frame


def changed(example: dict, **fields) -> dict:
    """A copy of a seed's example with some fields of its payload (typed) or data (action) changed."""
    frame = copy.deepcopy(example)
    (frame["payload"] if "payload" in frame else frame["data"]).update(fields)
    return frame


def send(client, frame: dict) -> None:
    client.send_raw(orjson.dumps(frame) + b"\n")


async def receive(client, key: str, value: str) -> dict:
    """The next frame whose `key` is `value`, skipping others."""
    while True:
        frame = orjson.loads(await client.line())
        if frame.get(key) == value:
            return frame


async def frames_until(client, key: str, value: str) -> list[dict]:
    """Every frame up to and including the next whose `key` is `value`."""
    out: list[dict] = []
    while not out or out[-1].get(key) != value:
        out.append(orjson.loads(await client.line()))
    return out


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def letters(text: str) -> dict[str, int]:
    return dict(Counter(ch for ch in text.lower() if ch.isalpha()))


# -- seed 001: the action dialect


@pytest_twisted.ensureDeferred
async def test_seed_001_example_frames(chatd):
    ex = seed("001")["examples"]
    act = lambda client: lambda action: receive(client, "action", action)  # noqa: E731
    a, b = await connect(chatd), await connect(chatd)
    next_a, next_b = act(a), act(b)
    # seed 001 has no registration: chatd's `register` makes the two accounts its examples use
    for client, name in ((a, "user123"), (b, "user456")):
        send(client, {"action": "register", "data": {"chatid": name, "password": "password123"}})
        assert (await act(client)("register_success"))["data"]["chatid"] == name

    send(a, ex["Request: Login"])
    like(await next_a("login_success"), ex["Response: Login Success"], "action", "status", "message", "data.chatid")
    send(a, ex["Request: Login"])  # again, on a connection logged in already
    like(await next_a("login_fail"), ex["Response: Login Fail"], "action", "status", "message")
    send(b, changed(ex["Request: Login"], chatid="user456"))
    await next_b("login_success")

    # seed 001 has no join (a room named in a request is entered): user456 names the room first with
    # chatd's join_room, so that the message below reaches them
    send(b, {"action": "join_room", "data": {"room_id": "unique_room_id"}})
    await next_b("join_room")
    send(a, ex["Request: Send Message"])
    count = await next_a("character_count")
    like(count, counts_aside(ex["Request: Character Count (C->S or S->C)"]), "action", "data.original_action")
    assert count["data"]["letter_frequencies"] == letters("Hello everyone!")
    # the transaction id is the server's: the example's "unique_transaction_id" stands for it
    tx = count["data"]["transaction_id"]
    send(a, changed(ex["Response: Confirm Count (C->S or S->C)"], transaction_id=tx))
    ack = like(await next_a("ack"), ex["Response: Ack (C->S or S->C)"], "action", "status", "message")
    assert ack["data"]["transaction_id"] == tx
    received = await next_b("receive_message")
    like(received, ex["Response: Receive Message (forwarded to other clients)"], "action", "status", "message",
         "data.room_id", "data.sender_chatid", "data.content")  # fmt: skip
    # the other way (S->C count, C->S confirm): the receiver counts what it got, the server confirms, the ack follows
    got_tx = received["data"]["transaction_id"]
    send(b, changed(ex["Request: Character Count (C->S or S->C)"], transaction_id=got_tx,
                    letter_frequencies=letters("Hello everyone!")))  # fmt: skip
    confirm = await next_b("confirm_count")
    like(confirm, ex["Response: Confirm Count (C->S or S->C)"], "action", "data.confirm")
    send(b, changed(ex["Response: Ack (C->S or S->C)"], transaction_id=got_tx))  # no answer: none is due

    send(a, ex["Request: Get Messages"])
    listing = await next_a("messages_list")
    like(listing, ex["Response: Get Messages"], "action", "status", "message", "data.room_id")
    assert [m["content"] for m in listing["data"]["messages"]] == ["Hello everyone!"]

    # the file flow of the seed: 1,048,576 bytes in total_packets 1024
    send(a, ex["Request: File Send Init (Client -> Server)"])
    like(await next_a("file_send_init"), ex["Response: File Send Init Ack (Server -> Client)"], "action", "status", "message",
         "data.chat_id", "data.room_id", "data.file_path")  # fmt: skip
    # "BASE64_ENCODED_CHUNK_DATA..." is the seed's placeholder, not base64: refused in the seed's error shape
    send(a, ex["Request: File Send Data (Client -> Server)"])
    refusal = like(await next_a("error"), ex["Response: Error"], "action", "status")
    assert refusal["original_action"] == "file_send_data" and refusal["code"] == errors.BAD_CHUNK
    content = os.urandom(1048576)
    for seq in range(1024):
        send(a, changed(ex["Request: File Send Data (Client -> Server)"], sequence_number=seq,
                        file_data=b64(content[seq * 1024 : (seq + 1) * 1024])))  # fmt: skip
    acks = [await next_a("file_send_data") for _ in range(1024)]
    assert [ack["data"]["sequence_number"] for ack in acks] == list(range(1024))
    like(acks[5], ex["Response: File Send Data Ack (Server -> Client)"], "action", "status", "message", "data.chat_id", "data.room_id",
         "data.file_path", "data.sequence_number")  # fmt: skip
    send(a, ex["Request: File Send Fin (Client -> Server)"])
    like(await next_a("file_send_fin"), ex["Response: File Send Fin Ack (Server -> Client)"], "action", "status", "message",
         "data.chat_id", "data.room_id", "data.file_path")  # fmt: skip
    notice = await next_b("receive_file")
    like(notice, ex["Notification: Receive File (forwarded to other clients)"], "action", "status", "message",
         "data.room_id", "data.sender_chatid")  # fmt: skip
    assert (notice["data"]["file_path"], notice["data"]["file_size"]) == ("my_document.pdf", 1048576)
    assert notice["data"]["file_type"] == "application/pdf"

    send(a, ex["Request: File List Request (Client -> Server)"])
    listed = like(
        await next_a("file_list_req"),
        ex["Response: File List Response (Server -> Client)"],
        "action",
        "status",
        "message",
    )
    assert listed["data"]["file_list"] == "my_document.pdf"

    send(b, ex["Request: File Download Request (Client -> Server)"])
    meta = await next_b("file_down_meta")
    like(meta, ex["Response: File Download Meta (Server -> Client)"], "action", "status", "message", "data.room_id", "data.file_path",
         "data.file_size")  # fmt: skip
    data = bytearray()
    for frame in await frames_until(b, "action", "file_down_fin"):
        if frame["action"] == "file_down_data":
            like(
                frame, ex["Response: File Download Data (Server -> Client)"], "action", "data.room_id", "data.file_path"
            )
            assert frame["data"]["sequence_number"] * 32768 == len(data)  # (files.chunk_bytes each)
            data += base64.b64decode(frame["data"]["file_data"])
        else:
            like(frame, ex["Response: File Download Fin (Server -> Client)"], "action", "status", "message", "data.room_id",
                 "data.file_path")  # fmt: skip
    assert bytes(data) == content
    await a.close()
    await b.close()


# -- seed 002: the typed dialect


async def no_error_until_pong(client) -> None:
    """PING, and every frame before its PONG is no ERROR (a connection keeps order: what was sent before
    the PING has been handled)."""
    send(client, {"type": "PING", "timestamp": 1630000000, "payload": {}})
    frames = await frames_until(client, "type", "PONG")
    assert not [f for f in frames if f["type"] == "ERROR"], frames


@pytest_twisted.ensureDeferred
async def test_seed_002_example_frames(chatd):
    ex = {name.removeprefix("Message Type: "): frame for name, frame in seed("002")["examples"].items()}
    u1, u4, u7 = await connect(chatd), await connect(chatd), await connect(chatd)
    got = lambda client: lambda kind: receive(client, "type", kind)  # noqa: E731
    of1, of4, of7 = got(u1), got(u4), got(u7)

    send(u1, ex["REGISTER_REQUEST"])
    like(await of1("REGISTER_RESPONSE"), ex["REGISTER_RESPONSE"], "type", "payload.success", "payload.code")
    send(u1, ex["LOGIN_REQUEST"])
    like(await of1("LOGIN_RESPONSE"), ex["LOGIN_RESPONSE"], "type", "payload.success", "payload.code")
    for client, name in ((u4, "user456"), (u7, "user789")):  # the seed's other users, by its own frames
        send(client, changed(ex["REGISTER_REQUEST"], username=name))
        assert (await got(client)("REGISTER_RESPONSE"))["payload"]["code"] == 0
        send(client, changed(ex["LOGIN_REQUEST"], username=name))
        assert (await got(client)("LOGIN_RESPONSE"))["payload"]["code"] == 0

    # friends
    send(u1, ex["FRIEND_REQUEST"])
    like(await of1("FRIEND_REQUEST_ACK"), ex["FRIEND_REQUEST_ACK"], "type", "payload.sender", "payload.receiver",
         "payload.code")  # fmt: skip
    like(await of4("FRIEND_REQUEST"), ex["FRIEND_REQUEST"], "type", "payload.sender", "payload.receiver")
    send(u4, ex["FRIEND_REQUEST_RESPONSE"])
    like(await of1("FRIEND_REQUEST_RESPONSE"), ex["FRIEND_REQUEST_RESPONSE"], "type", "payload.sender",
         "payload.receiver", "payload.code")  # fmt: skip

    # a group with a member who is not a friend: the seed's failure, by its own frame
    send(u1, ex["GROUP_CREATE"])
    like(await of1("GROUP_CREATE_ACK"), ex["GROUP_CREATE_ACK (Failure)"], "type", "payload.sender",
         "payload.not-friends", "payload.name", "payload.code")  # fmt: skip
    send(u1, changed(ex["FRIEND_REQUEST"], receiver="user789"))
    await of7("FRIEND_REQUEST")
    send(u7, changed(ex["FRIEND_REQUEST_RESPONSE"], receiver="user789"))
    assert (await of1("FRIEND_REQUEST_RESPONSE"))["payload"]["code"] == 0
    send(u1, ex["GROUP_CREATE"])
    like(await of1("GROUP_CREATE_ACK"), ex["GROUP_CREATE_ACK (Success)"], "type", "payload.sender", "payload.members",
         "payload.name", "payload.code")  # fmt: skip
    like(await of4("GROUP_INVITE"), ex["GROUP_INVITE"], "type", "payload.sender", "payload.receiver", "payload.group")
    like(await of7("GROUP_INVITE"), ex["GROUP_INVITE"], "type", "payload.sender", "payload.group")
    send(u4, ex["GROUP_INVITE_RESPONSE (Accept)"])
    like(await of1("GROUP_INVITE_RESPONSE"), ex["GROUP_INVITE_RESPONSE (Accept)"], "type", "payload.sender",
         "payload.receiver", "payload.group", "payload.code")  # fmt: skip
    # the seed's rejection names user456 as its receiver; the one who answers is the user who sends it (user789)
    send(u7, ex["GROUP_INVITE_RESPONSE (Reject)"])
    rejected = await of1("GROUP_INVITE_RESPONSE")
    like(rejected, ex["GROUP_INVITE_RESPONSE (Reject)"], "type", "payload.sender", "payload.group", "payload.code")
    assert rejected["payload"]["receiver"] == "user789"

    # the seed lists leave, remove and leader change, each by user123; in that order its leader would be gone
    # before the remove and the change. Replayed in an order where each succeeds: change, leave, then remove a
    # second "Group Chat 1" made with the seed's GROUP_CREATE again.
    send(u1, ex["GROUP_LEADER_CHANGE"])
    like(await of1("GROUP_LEADER_CHANGE_ACK"), ex["GROUP_LEADER_CHANGE_ACK"], "type", "payload.sender",
         "payload.group", "payload.newLeader", "payload.code")  # fmt: skip
    like(await of4("GROUP_LEADER_CHANGE"), ex["GROUP_LEADER_CHANGE"], "type", "payload.sender", "payload.group",
         "payload.newLeader")  # fmt: skip
    send(u1, ex["GROUP_LEAVE"])
    like(await of1("GROUP_LEAVE_ACK"), ex["GROUP_LEAVE_ACK"], "type", "payload.sender", "payload.group",
         "payload.code")  # fmt: skip
    like(await of4("GROUP_LEAVE"), ex["GROUP_LEAVE"], "type", "payload.sender", "payload.group")
    send(u1, ex["GROUP_CREATE"])
    assert (await of1("GROUP_CREATE_ACK"))["payload"]["code"] == 0
    send(u1, ex["GROUP_REMOVE"])
    like(await of1("GROUP_REMOVE_ACK"), ex["GROUP_REMOVE_ACK"], "type", "payload.sender", "payload.group",
         "payload.code")  # fmt: skip

    # text
    send(u1, ex["TEXT_MESSAGE"])
    like(await of4("TEXT_MESSAGE"), ex["TEXT_MESSAGE"], "type", "payload.sender", "payload.receiver", "payload.content")
    assert (await of1("MESSAGE_ACK"))["payload"]["code"] == 0

    # media, in the seed's own sizes: 10,485,760 bytes in totalChunks 10, so chunks of 1 MiB
    send(u1, ex["MEDIA_MESSAGE"])
    like(await of1("MEDIA_MESSAGE_ACK"), ex["MEDIA_MESSAGE_ACK"], "type", "payload.sender", "payload.receiver",
         "payload.mediaId", "payload.code")  # fmt: skip
    # "base64_encoded_chunk" is the seed's placeholder, not base64: refused, and the upload goes on
    send(u1, ex["MEDIA_MESSAGE_DATA"])
    refusal = await of1("ERROR")
    assert (refusal["payload"]["code"], refusal["payload"]["originalType"]) == (errors.BAD_CHUNK, "MEDIA_MESSAGE_DATA")
    content = os.urandom(10 * MiB)
    for i in range(10):
        send(u1, changed(ex["MEDIA_MESSAGE_DATA"], chunkIndex=i + 1, data=b64(content[i * MiB : (i + 1) * MiB])))
    for i in range(10):
        ack = await of1("MEDIA_MESSAGE_DATA_ACK")
        like(ack, ex["MEDIA_MESSAGE_DATA_ACK"], "type", "payload.sender", "payload.receiver", "payload.mediaId",
             "payload.code")  # fmt: skip
        assert ack["payload"]["chunkIndex"] == i + 1
    like(await of1("MEDIA_MESSAGE_COMPLETE"), ex["MEDIA_MESSAGE_COMPLETE"], "type", "payload.sender",
         "payload.receiver", "payload.mediaId", "payload.code")  # fmt: skip
    send(u1, ex["MEDIA_MESSAGE_COMPLETE_ACK"])
    await no_error_until_pong(u1)
    # the recipient's side: "the same flow between sender - server and server - recipient", the server sending
    offer = await of4("MEDIA_MESSAGE")
    like(offer, ex["MEDIA_MESSAGE"], "type", "payload.sender", "payload.receiver", "payload.mediaType",
         "payload.mediaSize")  # fmt: skip
    # its mediaId is the server's id of the stored file ("media123" was the sender's name for its upload, and
    # two senders may both pick it); the recipient's frames are the seed's with that id
    file_id = offer["payload"]["mediaId"]
    send(u4, changed(ex["MEDIA_MESSAGE_ACK"], mediaId=file_id))
    data = bytearray()
    while True:
        chunk = await of4("MEDIA_MESSAGE_DATA")
        like(chunk, ex["MEDIA_MESSAGE_DATA"], "type", "payload.sender", "payload.receiver")
        data += base64.b64decode(chunk["payload"]["data"])
        index, total = chunk["payload"]["chunkIndex"], chunk["payload"]["totalChunks"]
        send(u4, changed(ex["MEDIA_MESSAGE_DATA_ACK"], mediaId=file_id, chunkIndex=index))
        if index == total:
            break
    assert bytes(data) == content
    send(u4, changed(ex["MEDIA_MESSAGE_COMPLETE"], mediaId=file_id))
    done = await of4("MEDIA_MESSAGE_COMPLETE_ACK")
    like(done, ex["MEDIA_MESSAGE_COMPLETE_ACK"], "type", "payload.sender", "payload.receiver", "payload.code")
    assert done["payload"]["mediaId"] == file_id

    # presence, to friends
    send(u1, ex["USER_STATUS_UPDATE"])
    like(await of4("USER_STATUS_UPDATE"), ex["USER_STATUS_UPDATE"], "type", "payload.username", "payload.status")
    send(u1, ex["USER_LOGOUT"])
    like(await of4("USER_LOGOUT"), ex["USER_LOGOUT"], "type", "payload.username")
    like(await of7("USER_LOGOUT"), ex["USER_LOGOUT"], "type", "payload.username")

    # history: the client acknowledges each step with the frame it got (the seed does not say how; chatd takes that)
    send(u1, ex["LOGIN_REQUEST"])
    await of1("LOGIN_RESPONSE")
    send(u1, ex["MESSAGE_HISTORY_REQUEST"])
    like(await of1("MESSAGE_HISTORY_RESPONSE"), ex["MESSAGE_HISTORY_RESPONSE (Success)"], "type", "payload.username",
         "payload.code")  # fmt: skip
    like(await of1("MESSAGE_HISTORY_BEGIN"), ex["MESSAGE_HISTORY_BEGIN"], "type", "payload.username", "payload.code")
    send(u1, ex["MESSAGE_HISTORY_BEGIN"])
    history = await of1("MESSAGE_HISTORY_DATA")
    texts = [m for m in history["payload"]["messages"] if "content" in m]  # (the media message has no content)
    like(history | {"payload": history["payload"] | {"messages": texts}}, ex["MESSAGE_HISTORY_DATA"], "type",
         "payload.username")  # fmt: skip
    assert [m["content"] for m in texts] == ["Hello, how are you?"]
    send(u1, ex["MESSAGE_HISTORY_DATA"])
    like(await of1("MESSAGE_HISTORY_COMPLETE"), ex["MESSAGE_HISTORY_COMPLETE"], "type", "payload.username",
         "payload.code")  # fmt: skip
    send(u1, ex["MESSAGE_HISTORY_COMPLETE"])
    await no_error_until_pong(u1)
    send(u7, ex["MESSAGE_HISTORY_REQUEST"])  # user789 has no messages (its payload's username is not read)
    empty = await of7("MESSAGE_HISTORY_RESPONSE")
    like(empty, ex["MESSAGE_HISTORY_RESPONSE (Failure)"], "type", "payload.code")
    assert empty["payload"]["username"] == "user789"

    # friend removal, last: the flows above need the friendship
    send(u1, ex["FRIEND_REMOVE"])
    like(await of1("FRIEND_REMOVE_ACK"), ex["FRIEND_REMOVE_ACK"], "type", "payload.sender", "payload.receiver",
         "payload.code")  # fmt: skip
    like(await of4("FRIEND_REMOVE"), ex["FRIEND_REMOVE"], "type", "payload.sender", "payload.receiver")
    for client in (u1, u4, u7):
        await client.close()


# -- file-transfer frames: seed 002's 1 MiB chunks on both transports, in both dialects with chunked uploads


class Conn:
    """One JSON frame per line or per WebSocket message, the same to the test."""

    def __init__(self, client, over: str):
        self.client, self.over = client, over

    def send(self, frame: dict) -> None:
        if self.over == "ws":
            self.client.send(frame)
        else:
            send(self.client, frame)

    async def next(self, key: str, value: str) -> dict:
        if self.over == "ws":
            return await self.client.next(**{key: value})
        return await receive(self.client, key, value)

    async def close(self) -> None:
        await self.client.close()


async def open_conn(service, over: str) -> Conn:
    return Conn(await ws_connect(service) if over == "ws" else await connect(service), over)


@pytest.mark.parametrize("over", ["line", "ws"])
@pytest_twisted.ensureDeferred
async def test_1_mib_chunks_go_up_and_a_1_mib_chat_frame_is_refused_typed(chatd, over):
    c = await open_conn(chatd, over)
    typed = lambda kind, **p: {"type": kind, "timestamp": 1630000000, "payload": p}  # noqa: E731
    c.send(typed("REGISTER_REQUEST", username="big", passwordHash="pw"))
    await c.next("type", "REGISTER_RESPONSE")
    c.send(typed("LOGIN_REQUEST", username="big", passwordHash="pw"))
    await c.next("type", "LOGIN_RESPONSE")
    c.send(typed("USER_JOIN", room="files"))
    await c.next("type", "USER_JOIN")
    content = os.urandom(2 * MiB)
    c.send(typed("MEDIA_MESSAGE", receiver="files", mediaId="m", mediaType="image/jpeg", mediaSize=len(content)))
    assert (await c.next("type", "MEDIA_MESSAGE_ACK"))["payload"]["code"] == 0
    for i in range(2):
        c.send(typed("MEDIA_MESSAGE_DATA", receiver="files", mediaId="m", chunkIndex=i + 1, totalChunks=2,
                     data=b64(content[i * MiB : (i + 1) * MiB])))  # fmt: skip
    for _ in range(2):
        assert (await c.next("type", "MEDIA_MESSAGE_DATA_ACK"))["payload"]["code"] == 0
    assert (await c.next("type", "MEDIA_MESSAGE_COMPLETE"))["payload"]["code"] == 0
    # a chat flood of 1 MiB lines is still refused, one by one, and the connection goes on
    for _ in range(3):
        c.send(typed("TEXT_MESSAGE", receiver="files", content="x" * MiB))
        refused = await c.next("type", "ERROR")
        assert refused["payload"]["code"] == errors.LINE_TOO_LONG
    c.send(typed("PING"))
    await c.next("type", "PONG")
    assert not chatd.connections.large_frames.holders
    await c.close()


@pytest.mark.parametrize("over", ["line", "ws"])
@pytest_twisted.ensureDeferred
async def test_1_mib_chunks_go_up_and_a_1_mib_chat_frame_is_refused_action(chatd, over):
    c = await open_conn(chatd, over)
    act = lambda action, **d: {"action": action, "data": d}  # noqa: E731
    c.send(act("register", chatid="big", password="pw"))
    await c.next("action", "register_success")
    c.send(act("login", chatid="big", password="pw"))
    await c.next("action", "login_success")
    content = os.urandom(2 * MiB)
    where = {"room_id": "files", "file_path": "big.bin"}
    c.send(act("file_send_init", **where, file_size=len(content), total_packets=2))
    await c.next("action", "file_send_init")
    for seq in range(2):
        c.send(act("file_send_data", **where, sequence_number=seq, file_data=b64(content[seq * MiB : (seq + 1) * MiB])))
    for _ in range(2):
        assert (await c.next("action", "file_send_data"))["status"] == "success"
    c.send(act("file_send_fin", **where, total_packets=2))
    assert (await c.next("action", "file_send_fin"))["data"]["file_size"] == 2 * MiB
    c.send(act("get_messages", room_id="files", pad="x" * MiB))
    refused = await c.next("action", "error")
    assert refused["code"] == errors.LINE_TOO_LONG
    c.send(act("get_messages", room_id="files"))
    assert (await c.next("action", "messages_list"))["data"]["messages"][0]["file_size"] == 2 * MiB
    await c.close()


# -- seed 000: every action code accepted or produced


class Recorder:
    """A typed client that notes every type it sends and every type it gets."""

    def __init__(self, client):
        self.client, self.sent, self.got, self.unknown = client, set(), set(), set()

    def send(self, kind: str, **payload) -> None:
        self.sent.add(kind)
        send(self.client, {"type": kind, "timestamp": 1630000000, "payload": payload})

    async def next(self, kind: str) -> dict:
        while True:
            frame = orjson.loads(await self.client.line())
            self.got.add(frame["type"])
            if frame["type"] == "ERROR" and frame["payload"]["code"] == errors.UNKNOWN_TYPE:
                self.unknown.add(frame["payload"].get("originalType"))
            if frame["type"] == kind:
                return frame["payload"]


@pytest_twisted.ensureDeferred
async def test_seed_000_every_code_is_accepted_or_produced_as_the_seed_says(data_dir):
    service = await start_service(make_config(data_dir))
    a, b, c = [Recorder(await connect(service)) for _ in range(3)]
    for r, name in ((a, "ann0"), (b, "bob0"), (c, "cat0")):
        r.send("REGISTER_REQUEST", username=name, passwordHash="pw")
        await r.next("REGISTER_RESPONSE")
    a.send("AUTH_REQUEST", username="ann0", passwordHash="wrong")
    assert (await a.next("AUTH_ERROR"))["code"] == errors.INVALID_CREDENTIALS
    a.send("AUTH_REQUEST", username="ann0", passwordHash="pw")
    await a.next("AUTH_RESPONSE")
    for r, name in ((b, "bob0"), (c, "cat0")):
        r.send("AUTH_REQUEST", username=name, passwordHash="pw")
        await r.next("AUTH_RESPONSE")
    a.send("PING", n=1)
    await a.next("PONG")
    a.send("PROTOCOL_VERSION", version="1.0")
    await a.next("PROTOCOL_VERSION")
    # presence, rooms, typing, messages, receipts
    a.send("FRIEND_REQUEST", receiver="bob0")
    await b.next("FRIEND_REQUEST")
    b.send("FRIEND_REQUEST_RESPONSE", sender="ann0", code=0)
    await a.next("FRIEND_REQUEST_RESPONSE")
    b.send("USER_STATUS_UPDATE", status="away")
    await a.next("USER_STATUS_UPDATE")
    a.send("USER_JOIN", room="hall")
    await a.next("USER_JOIN")
    b.send("USER_JOIN", room="hall")
    await a.next("USER_JOIN")
    b.send("USER_TYPING", receiver="hall")
    await a.next("USER_TYPING")
    a.send("TEXT_MESSAGE", receiver="hall", content="hello hall")
    message_id = (await a.next("MESSAGE_ACK"))["messageId"]
    await b.next("TEXT_MESSAGE")
    b.send("READ_RECEIPT", messageId=message_id)
    await a.next("READ_RECEIPT")
    a.send("TEXT_MESSAGE", receiver="nobody-here", content="?")
    await a.next("MESSAGE_NACK")
    a.send("ENCRYPTED_MESSAGE", receiver="bob0", ciphertext="c2VjcmV0", nonce="bm9uY2U=")
    await a.next("MESSAGE_ACK")
    await b.next("ENCRYPTED_MESSAGE")
    a.send("METADATA_UPDATE", key="color", value="blue")
    await a.next("METADATA_UPDATE")
    await b.next("METADATA_UPDATE")
    a.send("REQUEST_USER_INFO", username="bob0")
    await a.next("RESPONSE_USER_INFO")
    a.send("FEEDBACK", content="works", rating=5)
    await a.next("FEEDBACK")
    a.send("BLOCK_USER", username="cat0")
    await a.next("BLOCK_USER")
    a.send("UNBLOCK_USER", username="cat0")
    await a.next("UNBLOCK_USER")
    # files
    a.send("FILE_REQUEST", transferId="t1", fileName="a.txt", fileSize=5, receiver="hall")
    await a.next("FILE_RESPONSE")
    a.send("FILE_TRANSFER", transferId="t1", chunkIndex=1, totalChunks=1, data=b64(b"hello"))
    await a.next("FILE_RESPONSE")
    file_id = (await b.next("MEDIA_MESSAGE"))["mediaId"]
    b.send("FILE_REQUEST", fileId=file_id, chunkIndex=1)
    assert base64.b64decode((await b.next("FILE_TRANSFER"))["data"]) == b"hello"
    # groups
    a.send("GROUP_CREATE", name="club", members=["bob0"])
    await a.next("GROUP_CREATE_ACK")
    await b.next("GROUP_INVITE")
    b.send("GROUP_INVITE_RESPONSE", group="club", code=0)
    await a.next("GROUP_INVITE_RESPONSE")
    a.send("GROUP_MESSAGE", group="club", content="hi club")
    await a.next("MESSAGE_ACK")
    await b.next("GROUP_MESSAGE")
    b.send("USER_LEAVE", room="hall")
    await a.next("USER_LEAVE")
    # offline: a message to bob while away, then his return
    b.send("CONNECTION_CLOSED", reason="bye")
    await b.next("CONNECTION_CLOSED")
    await b.client.closed
    await a.next("USER_LOGOUT")
    a.send("TEXT_MESSAGE", receiver="bob0", content="while you were out")
    await a.next("MESSAGE_ACK")
    back = Recorder(await connect(service))
    back.send("LOGIN_REQUEST", username="bob0", passwordHash="pw")
    await back.next("OFFLINE_MESSAGE")
    await back.next("SYSTEM_MESSAGE")
    a.send("NO_SUCH_TYPE")  # a name no seed has: the ERROR frame
    await a.next("ERROR")
    # the server stopping tells everyone
    stopping = service.stopService()
    await a.next("SERVER_NOTIFICATION")
    await a.next("CONNECTION_CLOSED")
    await stopping

    accepted = (a.sent | b.sent | c.sent | back.sent) - (a.unknown | b.unknown | c.unknown | back.unknown)
    produced = a.got | b.got | c.got | back.got
    wrong = []
    for section, codes in seed("000")["codes"].items():
        for name, description in codes.items():
            if description.startswith("Client"):  # "Client requests ...", "Client sends ...", "Client blocks ..."
                ok = name in accepted
            elif description.startswith("Server"):  # "Server responds ..."
                ok = name in produced
            else:
                ok = name in accepted | produced
            if not ok:
                wrong.append(f"{section}: {name} ({description})")
    assert not wrong, wrong
    assert a.unknown == {"NO_SUCH_TYPE"}


# -- seed 003: every event name, and the sequence of its diagram


def ev(name: str, **data) -> dict:
    return {"event": name, "data": data}


@pytest_twisted.ensureDeferred
async def test_seed_003_every_event_and_the_diagram(chatd):
    names = seed("003")
    http = Http(chatd)
    sent: set[str] = set()
    got: set[str] = set()

    async def events_user(name):
        client = await ws_connect(chatd)
        client.send(ev("CLIENT_REGISTER", username=name, password="pw"))
        await client.next(event="SERVER_REGISTERED")
        client.send(ev("CLIENT_AUTH", username=name, password="pw"))
        client.token = (await client.next(event="SERVER_AUTH_OK"))["data"]["token"]
        return client

    def send_ev(client, name, **data):
        sent.add(name)
        client.send(ev(name, **data))

    async def wait(client, name, **match):
        """The next `name` event whose data has `match`, noting every event on the way."""
        while True:
            frame = await client.next()
            got.add(frame["event"])
            assert not (frame["event"] == "SERVER_ERROR" and frame["data"]["code"] == errors.UNKNOWN_TYPE), frame
            if frame["event"] == name and all(frame["data"].get(k) == v for k, v in match.items()):
                return frame["data"]

    ben = await events_user("ben3")
    ann = await events_user("ann3")
    for client in (ann, ben):
        send_ev(client, "CLIENT_CHAT_JOIN", cid="c123")
        await wait(client, "SERVER_CHAT_JOINED")
    await ann.close()

    # Open App: GET /conversations, list of conversations
    code, body = await http.json("GET", "/conversations", token=ann.token)
    assert code == 200 and [c["cid"] for c in body["conversations"]] == ["c123"]
    # Socket Connect: SERVER_USER_ONLINE / SERVER_USER_OFFLINE, before the client says anything
    token = ann.token
    ann = await ws_connect(chatd, f"?token={token}&dialect=events")
    await wait(ann, "SERVER_AUTH_OK")
    assert await wait(ann, "SERVER_USER_ONLINE") == {"user": "ben3", "status": "online", "friend": False}
    # Click conversation: CLIENT_CHAT_LEAVE (of the one open before), CLIENT_CHAT_JOIN, GET /messages?cid=
    send_ev(ann, "CLIENT_CHAT_LEAVE", cid="c123")
    await wait(ann, "SERVER_CHAT_LEFT")
    send_ev(ann, "CLIENT_CHAT_JOIN", cid="c123")
    await wait(ann, "SERVER_CHAT_JOINED")
    code, body = await http.json("GET", "/messages?cid=c123", token=token)
    assert code == 200 and body["messages"] == []
    # live: SERVER_CHAT_RECEIVE, SERVER_CHAT_TYPING / STOP_TYPING, SERVER_CHAT_REACTION_ADD / REMOVE
    send_ev(ben, "CLIENT_CHAT_SEND", cid="c123", text="hi ann")
    message_id = (await wait(ann, "SERVER_CHAT_RECEIVE"))["message"]["id"]
    send_ev(ben, "CLIENT_CHAT_TYPING", cid="c123")
    await wait(ann, "SERVER_CHAT_TYPING")
    send_ev(ben, "CLIENT_CHAT_STOP_TYPING", cid="c123")
    await wait(ann, "SERVER_CHAT_STOP_TYPING")
    send_ev(ben, "CLIENT_CHAT_REACTION_ADD", id=message_id, emoji="👋")
    await wait(ann, "SERVER_CHAT_REACTION_ADD")
    send_ev(ben, "CLIENT_CHAT_REACTION_REMOVE", id=message_id, emoji="👋")
    await wait(ann, "SERVER_CHAT_REACTION_REMOVE")
    # the user types, stops, sends, views, reacts
    send_ev(ann, "CLIENT_CHAT_TYPING", cid="c123")
    await wait(ben, "SERVER_CHAT_TYPING")
    send_ev(ann, "CLIENT_CHAT_STOP_TYPING", cid="c123")
    await wait(ben, "SERVER_CHAT_STOP_TYPING")
    send_ev(ann, "CLIENT_CHAT_SEND", cid="c123", text="hello ben")
    mine = (await wait(ann, "SERVER_CHAT_RECEIVE"))["message"]["id"]
    send_ev(ann, "CLIENT_CHAT_READ", id=message_id)
    await wait(ann, "SERVER_CHAT_MESSAGE_STATUS", id=message_id, status="read")
    send_ev(ann, "CLIENT_CHAT_REACTION_ADD", id=message_id, emoji="🙂")
    await wait(ann, "SERVER_CHAT_REACTION_ADD")
    # the rest of the seed's list: edit, delete, members joining and leaving, conversation updates, offline
    send_ev(ann, "CLIENT_CHAT_EDIT", id=mine, text="hello again")
    await wait(ben, "SERVER_CHAT_MESSAGE_STATUS", id=mine, status="edited")
    send_ev(ann, "CLIENT_CHAT_DELETE", id=mine)
    await wait(ben, "SERVER_CHAT_MESSAGE_STATUS", id=mine, status="deleted")
    cleo = await connect(chatd)  # a seed-004 user makes a room that both join, then deletes it
    send(cleo, {"type": "USER:REGISTER", "data": {"username": "cleo3", "password": "pw"}})
    await receive(cleo, "type", "USER:REGISTERED")
    send(cleo, {"type": "USER:LOGIN", "data": {"username": "cleo3", "password": "pw"}})
    await receive(cleo, "type", "USER:LOGGED_IN")
    send(cleo, {"type": "GROUP:ADD_GROUP", "data": {"name": "side"}})
    await receive(cleo, "type", "GROUP:GROUP_ADDED")
    send_ev(ann, "CLIENT_CHAT_JOIN", cid="side")
    await wait(ann, "SERVER_CHAT_JOINED")
    send_ev(ben, "CLIENT_CHAT_JOIN", cid="side")
    assert (await wait(ann, "SERVER_CHAT_MEMBER_JOINED")) == {"cid": "side", "user": "ben3"}
    send_ev(ben, "CLIENT_CHAT_LEAVE", cid="side", membership=True)
    assert (await wait(ann, "SERVER_CHAT_MEMBER_LEFT")) == {"cid": "side", "user": "ben3"}
    send(cleo, {"type": "GROUP:DELETE_GROUP", "data": {"groupId": "side"}})
    assert (await wait(ann, "SERVER_CHAT_CONVERSATION_UPDATED"))["deleted"] is True
    await cleo.close()
    # Leave chat
    send_ev(ann, "CLIENT_CHAT_LEAVE", cid="c123")
    await wait(ann, "SERVER_CHAT_LEFT")
    await ben.close()
    assert await wait(ann, "SERVER_USER_OFFLINE") == {"user": "ben3", "friend": False}

    assert set(names["client"]) <= sent
    assert set(names["server"]) <= got
    await ann.close()
    await http.close()


# -- seed 004: every event type


@pytest_twisted.ensureDeferred
async def test_seed_004_every_event_type(chatd):
    names = seed("004")["events"]
    sent: set[str] = set()
    got: set[str] = set()

    async def user(name):
        client = await connect(chatd)
        put(client, "USER:REGISTER", {"username": name, "password": "pw"})
        await wait(client, "USER:REGISTERED")
        put(client, "USER:LOGIN", {"username": name, "password": "pw"})
        await wait(client, "USER:LOGGED_IN")
        return client

    def put(client, kind, data=None):
        sent.add(kind)
        send(client, {"type": kind, "data": data if data is not None else {}})

    async def wait(client, kind):
        while True:
            frame = orjson.loads(await client.line())
            got.add(frame["type"])
            assert not (frame["type"] == "ERROR" and frame["data"]["code"] == errors.UNKNOWN_TYPE), frame
            if frame["type"] == kind:
                return frame["data"]

    cleo, dan = await user("cleo4"), await user("dan4")
    put(cleo, "GROUP:ADD_GROUP", {"name": "books"})
    group = (await wait(cleo, "GROUP:GROUP_ADDED"))["id"]
    put(cleo, "GROUP:GET_ALL_GROUPS")
    await wait(cleo, "GROUP:RETURN_ALL_GROUPS")
    put(dan, "GROUP:JOIN_GROUP", {"groupId": group})
    await wait(cleo, "GROUP:USER_JOINED")
    put(dan, "GROUP:GET_INIT_DATA", {"groupId": group})
    await wait(dan, "GROUP:RETURN_INIT_DATA")
    put(dan, "CHAT:START_TYPING", {"groupId": group})
    await wait(cleo, "CHAT:USER_STARTED_TYPING")
    put(dan, "CHAT:STOP_TYPING", {"groupId": group})
    await wait(cleo, "CHAT:USER_STOPPED_TYPING")
    put(dan, "CHAT:SEND_MESSAGE_TEXT", {"groupId": group, "text": "hello"})
    await wait(cleo, "CHAT:MESSAGE_RETURN_TEXT")
    image = b64(b"\x89PNG\r\n\x1a\n" + os.urandom(200_000))  # inline media bigger than an ordinary frame
    for kind, back in (("IMAGE", "IMAGE"), ("AUDIO", "AUDIO"), ("GIF", "GIF")):
        put(dan, f"CHAT:SEND_MESSAGE_{kind}", {"groupId": group, "data": image})
        await wait(cleo, f"CHAT:MESSAGE_RETURN_{back}")
    put(cleo, "CHAT:GET_INIT_MESSAGES", {"groupId": group})
    assert len((await wait(cleo, "CHAT:RETURN_INIT_MESSAGES"))["messages"]) == 4
    put(dan, "USER:REFRESH_PROFILE")
    await wait(dan, "USER:PROFILE_REFRESHED")
    put(dan, "GROUP:LEAVE_GROUP", {"groupId": group})
    await wait(cleo, "GROUP:USER_LEFT")
    put(cleo, "GROUP:DELETE_GROUP", {"groupId": group})
    await wait(cleo, "GROUP:GROUP_DELETED")

    for area, by in names.items():
        assert set(by["client"]) <= sent, area
        assert set(by["server"]) <= got, (area, set(by["server"]) - got)
    await cleo.close()
    await dan.close()
