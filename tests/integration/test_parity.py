"""One concept, one outcome: each dialect that offers a concept performs it over a real socket, and the outcome is
checked through another interface (REST, or a client of another dialect).

The tables name, per dialect, the frame that performs the concept; every row must give the same result.
"""

import orjson
import pytest
import pytest_twisted

from tests.conftest import LineClient, connect, typed_user
from tests.wsclient import Http

PASSWORD = "secret"


def frame_of(dialect: str, kind: str, data) -> bytes:
    if dialect == "typed":
        return orjson.dumps({"type": kind, "timestamp": 1630000000, "payload": data})
    if dialect == "action":
        return orjson.dumps({"action": kind, "data": data})
    if dialect == "events":
        return orjson.dumps({"event": kind, "data": data})
    return orjson.dumps({"type": kind, "data": data})  # colon


LOGIN = {
    "typed": ("LOGIN_REQUEST", {"username": "{u}", "passwordHash": PASSWORD}),
    "action": ("login", {"chatid": "{u}", "password": PASSWORD}),
    "events": ("CLIENT_AUTH", {"username": "{u}", "password": PASSWORD}),
    "colon": ("USER:LOGIN", {"username": "{u}", "password": PASSWORD}),
}


def filled(value, **names):
    """`value` (a frame's data) with "{name}" placeholders replaced, recursively."""
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, dict):
        return {k: filled(v, **names) for k, v in value.items()}
    if isinstance(value, list):
        return [filled(v, **names) for v in value]
    return value


async def dialect_user(service, dialect: str, name: str) -> LineClient:
    """A user registered over REST and logged in over the line transport in `dialect`."""
    http = Http(service)
    try:
        code, _ = await http.json("POST", "/register", json={"username": name, "password": PASSWORD})
        assert code == 201
    finally:
        await http.close()
    client = await connect(service)
    if dialect == "text":
        client.say(f"/login {name} {PASSWORD}")
        assert (await client.text("* welcome")).startswith(f"* welcome, {name}!")
        return client
    client.dialect = dialect
    kind, data = LOGIN[dialect]
    client.send_raw(frame_of(dialect, kind, filled(data, u=name)) + b"\n")
    await client.sync()  # the login was handled (a refused one would have failed the barrier)
    return client


def send(client: LineClient, dialect: str, kind: str, data, **names) -> None:
    client.send_raw(frame_of(dialect, kind, filled(data, **names)) + b"\n")


async def room_with_messages(service, poster_name: str, readers: list[LineClient], room: str, n: int) -> list[int]:
    """A typed poster posts `n` messages in `room`, which the (already joined) readers are in; their ids."""
    poster = await typed_user(service, poster_name)
    poster.send("USER_JOIN", room=room)
    await poster.payload("USER_JOIN")
    ids = []
    for i in range(n):
        poster.send("TEXT_MESSAGE", room=room, content=f"{room} {i}")
        ids.append((await poster.payload("MESSAGE_ACK"))["messageId"])
    await poster.close()
    for reader in readers:
        await reader.sync()  # the messages reached them before anything else they send
    return ids


JOIN = {
    "typed": ("USER_JOIN", {"room": "{room}"}),
    "action": ("join_room", {"room_id": "{room}"}),
    "events": ("CLIENT_CHAT_JOIN", {"cid": "{room}"}),
    "colon": ("GROUP:JOIN_GROUP", {"groupId": "{room}"}),
}

MARK_READ = {
    "typed": ("READ_RECEIPT", {"messageId": "{id}"}),
    "action": ("ack", {"transaction_id": "msg-{id}"}),
    "events": ("CLIENT_CHAT_READ", {"id": "{id}"}),
    "colon": ("CHAT:READ_MESSAGE", {"id": "{id}"}),
}


def with_int_ids(data):
    """`{id}` placeholders that stand for a whole number become one."""
    return {k: int(v) if k in ("messageId", "id") else v for k, v in data.items()}


@pytest.mark.parametrize("dialect", sorted(MARK_READ))
@pytest_twisted.ensureDeferred
async def test_marking_read_leaves_nothing_unread_whatever_the_dialect(chatd, dialect):
    reader = await dialect_user(chatd, dialect, "reader")
    kind, data = JOIN[dialect]
    send(reader, dialect, kind, data, room="hall")
    await reader.sync()
    ids = await room_with_messages(chatd, "poster", [reader], "hall", 3)
    kind, data = MARK_READ[dialect]
    reader.send_raw(frame_of(dialect, kind, with_int_ids(filled(data, id=ids[-1]))) + b"\n")
    await reader.sync()
    http = Http(chatd)
    try:
        _, login = await http.json("POST", "/login", json={"username": "reader", "password": PASSWORD})
        _, body = await http.json("GET", "/conversations", token=login["token"])
        [hall] = [c for c in body["conversations"] if c["cid"] == "hall"]
        assert hall["unread"] == 0
        _, page = await http.json("GET", "/messages?cid=hall", token=login["token"])
        assert page["read_upto"] == ids[-1]
    finally:
        await http.close()
    await reader.close()


TYPING = {
    "typed": ("USER_TYPING", {"room": "{room}", "typing": True}),
    "events": ("CLIENT_CHAT_TYPING", {"cid": "{room}"}),
    "colon": ("CHAT:START_TYPING", {"groupId": "{room}"}),
}


@pytest.mark.parametrize("dialect", sorted(TYPING))
@pytest_twisted.ensureDeferred
async def test_typing_expires_whatever_the_dialect(chatd, dialect, monkeypatch):
    monkeypatch.setattr(chatd.core.typing, "seconds", 0.3)
    typist = await dialect_user(chatd, dialect, "typist")
    watcher = await dialect_user(chatd, "events", "watcher")
    for client, d in ((typist, dialect), (watcher, "events")):
        kind, data = JOIN[d]
        send(client, d, kind, data, room="hall")
        await client.sync()
    kind, data = TYPING[dialect]
    send(typist, dialect, kind, data, room="hall")
    await typist.sync()

    async def next_event() -> dict:
        while True:
            frame = orjson.loads(await watcher.line())
            if frame["event"] in ("SERVER_CHAT_TYPING", "SERVER_CHAT_STOP_TYPING"):
                return frame

    started, stopped = await next_event(), await next_event()  # the stop comes by itself, with nothing sent
    assert (started["event"], started["data"]) == ("SERVER_CHAT_TYPING", {"cid": "hall", "user": "typist"})
    assert (stopped["event"], stopped["data"]) == ("SERVER_CHAT_STOP_TYPING", {"cid": "hall", "user": "typist"})
    await typist.close()
    await watcher.close()


HISTORY = {
    "typed": ("MESSAGE_HISTORY_REQUEST", {"username": "{u}"}),
    "action": ("get_messages", {"room_id": "{room}"}),
    "events": ("CLIENT_CHAT_HISTORY", {"cid": "{room}", "limit": 50}),
    "colon": ("CHAT:GET_INIT_MESSAGES", {"groupId": "{room}"}),
}


async def read_history(client: LineClient, dialect: str, name: str, room: str) -> list[tuple[int, str]]:
    """(id, text) of a room's messages, oldest first, as `dialect` tells them."""
    if dialect == "text":
        client.say(f"/history {room} 50")
        lines = await client.sync()
        return [(0, line.decode().split("> ", 1)[1]) for line in lines]
    kind, data = HISTORY[dialect]
    send(client, dialect, kind, data, u=name, room=room)
    if dialect == "typed":
        messages = []
        assert (await client.payload("MESSAGE_HISTORY_BEGIN"))["code"] == 0
        client.send("MESSAGE_HISTORY_BEGIN", username=name, code=0)
        while True:
            frame = await client.frame()
            if frame["type"] == "MESSAGE_HISTORY_COMPLETE":
                return messages
            messages += [(m["messageId"], m["content"]) for m in frame["payload"]["messages"]]
            client.send("MESSAGE_HISTORY_DATA", username=name, code=0)
    frame = orjson.loads(await client.line())
    if dialect == "action":
        return [(m["message_id"], m["content"]) for m in frame["data"]["messages"]]
    return [(m["id"], m["text"]) for m in frame["data"]["messages"]]


@pytest_twisted.ensureDeferred
async def test_history_is_the_same_messages_in_the_same_order_in_every_dialect(chatd):
    dialects = ["typed", "action", "events", "colon", "text"]
    clients = {d: await dialect_user(chatd, d, f"r{d}") for d in dialects}
    for d, client in clients.items():
        if d == "text":
            client.say("/join hall")
        else:
            kind, data = JOIN[d]
            send(client, d, kind, data, room="hall")
        await client.sync()
    ids = await room_with_messages(chatd, "poster", list(clients.values()), "hall", 5)
    expected = [(i, f"hall {n}") for n, i in enumerate(ids)]
    for d, client in clients.items():
        got = await read_history(client, d, f"r{d}", "hall")
        if d == "text":  # the text dialect shows no ids
            assert [text for _, text in got] == [text for _, text in expected], d
        else:
            assert got == expected, d
    http = Http(chatd)
    try:
        _, login = await http.json("POST", "/login", json={"username": "rtyped", "password": PASSWORD})
        _, page = await http.json("GET", "/messages?cid=hall", token=login["token"])
        assert [(m["id"], m["text"]) for m in page["messages"]] == expected
    finally:
        await http.close()
    for client in clients.values():
        await client.close()
