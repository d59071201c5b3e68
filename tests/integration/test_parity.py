"""One concept, one outcome: each dialect that offers a concept performs it over a real socket, and the outcome is
checked through another interface (REST, or a client of another dialect).

The tables name, per dialect, the frame that performs the concept; every row must give the same result. The
concepts: mark read, typing, history, sending to a room and to a user, edit and delete, file upload and download,
and the refusals of a private group to a stranger. IRC takes part where it has the concept.
"""

import base64
import os

import orjson
import pytest
import pytest_twisted

from tests.conftest import LineClient, action_frame, action_send, connect, is_error, typed_user
from tests.ircclient import IrcClient, irc_user, start_irc_service
from tests.wsclient import Http

PASSWORD = "secret"


@pytest_twisted.async_yield_fixture
async def chatd(data_dir):
    """The service with every dialect's listener: the line and WebSocket ones, and IRC's."""
    service = await start_irc_service(data_dir)
    yield service
    await service.stopService()


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


async def dialect_user(service, dialect: str, name: str):
    """A user registered over REST and logged in over the line transport in `dialect` (or over IRC, asking for
    the server's message ids and for its own messages back once stored)."""
    http = Http(service)
    try:
        code, _ = await http.json("POST", "/register", json={"username": name, "password": PASSWORD})
        assert code == 201
    finally:
        await http.close()
    if dialect == "irc":
        return await irc_user(service, name, PASSWORD, caps="echo-message message-tags")
    client = await connect(service)
    if dialect == "text":
        client.say(f"/login {name} {PASSWORD}")
        assert (await client.text("* welcome")).startswith(f"* welcome, {name}!")
        return client
    client.dialect = dialect
    kind, data = LOGIN[dialect]
    client.send_raw(frame_of(dialect, kind, filled(data, u=name)) + b"\n")
    refused = [line for line in await client.sync() if is_error(dialect, line)]  # the login was handled
    assert not refused, refused
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


# -- helpers for the concepts below: every dialect, IRC included


async def done(client) -> None:
    await (client.quit() if isinstance(client, IrcClient) else client.close())


async def rest_call(service, user: str, method: str, path: str, **kwargs):
    """(response, body) of a REST call made as `user`."""
    http = Http(service)
    try:
        _, login = await http.json("POST", "/login", json={"username": user, "password": PASSWORD})
        return await http.call(method, path, token=login["token"], **kwargs)
    finally:
        await http.close()


async def rest_messages(service, user: str, cid: str) -> list[dict]:
    response, body = await rest_call(service, user, "GET", f"/messages?cid={cid}")
    assert response.code == 200, body
    return orjson.loads(body)["messages"]


def irc_error(line: str) -> str | None:
    """The numeric of an IRC error reply (400-599), if `line` is one."""
    words = line.split(" ")
    return words[1] if len(words) > 1 and words[1].isdigit() and "400" <= words[1] < "600" else None


async def join(client, dialect: str, room: str) -> None:
    if dialect == "text":
        client.say(f"/join {room}")
    elif dialect == "irc":
        client.send(f"JOIN #{room}")
    else:
        kind, data = JOIN[dialect]
        send(client, dialect, kind, data, room=room)
    lines = await client.sync()  # joined
    if dialect == "irc":
        refused = [line for line in lines if irc_error(line)]
    else:
        refused = [line for line in lines if is_error(dialect, line)]
    assert not refused, refused


async def next_line(client, dialect: str, waiting_for: str) -> str:
    """The next line from the server, as text; an error line fails the test."""
    raw = await client.line()
    line = raw if isinstance(raw, str) else raw.decode()
    if dialect != "irc" and is_error(dialect, raw):
        raise AssertionError(f"waiting for {waiting_for}, got an error: {line[:500]}")
    return line


async def json_reply(client, dialect: str, wanted) -> dict:
    """The next JSON frame for which `wanted(frame)` holds, skipping others (but not errors)."""
    while True:
        frame = orjson.loads(await next_line(client, dialect, "a reply"))
        if wanted(frame):
            return frame


def message_in(dialect: str, line: str) -> tuple[int | None, str] | None:
    """(the server's id, if the dialect shows it; the text) if `line` is a message pushed to a member."""
    if dialect == "irc":
        tags, rest = line.split(" ", 1) if line.startswith("@") else ("", line)
        words = rest.split(" ", 3)
        if len(words) < 4 or words[1] != "PRIVMSG":
            return None
        msgid = dict(t.split("=", 1) for t in tags[1:].split(";") if "=" in t).get("msgid")
        return int(msgid) if msgid else None, words[3].removeprefix(":")
    if dialect == "text":
        return (None, line.split("> ", 1)[1]) if line.startswith("[") and not line.startswith("[to ") else None
    frame = orjson.loads(line)
    if dialect == "typed" and frame["type"] in ("TEXT_MESSAGE", "GROUP_MESSAGE"):
        return frame["payload"]["messageId"], frame["payload"]["content"]
    if dialect == "action" and frame["action"] == "receive_message":
        return frame["data"]["message_id"], frame["data"]["content"]
    if dialect == "events" and frame["event"] == "SERVER_CHAT_RECEIVE":
        return frame["data"]["message"]["id"], frame["data"]["message"]["text"]
    if dialect == "colon" and frame["type"] == "CHAT:MESSAGE_RETURN_TEXT":
        return frame["data"]["id"], frame["data"]["text"]
    return None


def status(name: str):
    """Whether an events frame is a message status `name` (sent, edited, deleted, ...)."""
    return lambda f: isinstance(f.get("data"), dict) and f["data"].get("status") == name


async def next_message(client, dialect: str) -> tuple[int | None, str]:
    """The next message pushed to `client`, skipping everything else (but not errors)."""
    while True:
        got = message_in(dialect, await next_line(client, dialect, "a message"))
        if got is not None:
            return got


async def post(client, dialect: str, to: str, text: str, direct: bool = False) -> int | None:
    """Send `text` to a room (or, `direct`, to a user) the way `dialect` does; once the dialect acknowledges
    it, the server's id of the message (None for the text dialect, which has no acknowledgement)."""
    if dialect == "typed":
        client.send("TEXT_MESSAGE", content=text, **{"receiver" if direct else "room": to})
        return (await client.payload("MESSAGE_ACK"))["messageId"]
    if dialect == "action":
        return (await action_send(client, to, text))["data"]["message_id"]
    if dialect == "events":
        send(client, dialect, "CLIENT_CHAT_SEND", {"cid": to, "text": text})
        sent = await json_reply(client, dialect, status("sent"))
        return sent["data"]["id"]
    if dialect == "colon":
        send(client, dialect, "CHAT:SEND_MESSAGE_TEXT", {"to" if direct else "groupId": to, "text": text})
        return (await json_reply(client, dialect, lambda f: f["type"] == "CHAT:MESSAGE_RETURN_TEXT"))["data"]["id"]
    if dialect == "irc":
        client.send(f"PRIVMSG {to if direct else '#' + to} :{text}")
        echoed, _ = await next_message(client, dialect)  # echo-message: it comes back once stored
        return echoed
    client.say(f"/msg {to} {text}" if direct else text)
    await client.sync()
    return None


def shown(dialect: str, message_id: int) -> int | None:
    """The message id as `dialect` shows it: the text dialect shows none."""
    return None if dialect == "text" else message_id


# Who watches whom: each dialect's message is watched in another dialect, and every dialect watches once.
WATCHER = {"typed": "irc", "irc": "text", "text": "action", "action": "colon", "colon": "events", "events": "typed"}


@pytest.mark.parametrize("dialect", sorted(WATCHER))
@pytest_twisted.ensureDeferred
async def test_a_message_to_a_room_is_acknowledged_stored_once_and_seen_alike_whatever_the_dialect(chatd, dialect):
    watching = WATCHER[dialect]
    sender = await dialect_user(chatd, dialect, "sender")
    watcher = await dialect_user(chatd, watching, "watcher")
    await join(sender, dialect, "hall")
    await join(watcher, watching, "hall")
    text = f"hello from {dialect}"
    acked = await post(sender, dialect, "hall", text)
    [stored] = [m for m in await rest_messages(chatd, "watcher", "hall") if m["text"] == text]  # once, committed
    assert (stored["sender"], stored["cid"], stored["kind"]) == ("sender", "hall", "text")
    assert acked == shown(dialect, stored["id"])
    assert await next_message(watcher, watching) == (shown(watching, stored["id"]), text)
    assert [m["id"] for m in await rest_messages(chatd, "sender", "hall")] == [stored["id"]]
    await done(sender)
    await done(watcher)


@pytest.mark.parametrize("dialect", sorted(WATCHER))
@pytest_twisted.ensureDeferred
async def test_a_direct_message_reaches_the_user_in_another_dialect_and_is_stored_once(chatd, dialect):
    watching = WATCHER[dialect]
    sender = await dialect_user(chatd, dialect, "sender")
    recipient = await dialect_user(chatd, watching, "recipient")
    text = f"psst from {dialect}"
    acked = await post(sender, dialect, "recipient", text, direct=True)
    [stored] = await rest_messages(chatd, "recipient", "dm:recipient:sender")
    assert (stored["sender"], stored["text"]) == ("sender", text)
    assert acked == shown(dialect, stored["id"])
    assert await next_message(recipient, watching) == (shown(watching, stored["id"]), text)
    await done(sender)
    await done(recipient)


# Edits and deletions: only the events dialect asks for them (docs/protocols/*.md); every dialect's history
# shows the result, and the dialects that can say so live (events, IRC) tell the members.


@pytest.mark.parametrize("reader", ["action", "colon", "events", "text", "typed"])
@pytest_twisted.ensureDeferred
async def test_an_edit_and_a_delete_show_in_every_dialects_history_and_reach_irc_live(chatd, reader):
    author = await dialect_user(chatd, "events", "author")
    watcher = await dialect_user(chatd, "irc", "watcher")
    client = await dialect_user(chatd, reader, f"r{reader}")
    for c, d in ((author, "events"), (watcher, "irc"), (client, reader)):
        await join(c, d, "hall")
    kept, regretted = [await post(author, "events", "hall", text) for text in ("first draft", "regrettable")]
    send(author, "events", "CLIENT_CHAT_EDIT", {"id": kept, "text": "final words"})
    await json_reply(author, "events", status("edited"))
    send(author, "events", "CLIENT_CHAT_DELETE", {"id": regretted})
    await json_reply(author, "events", status("deleted"))
    assert await watcher.expect("NOTICE") == ":author!author@chatd NOTICE #hall :(edited) final words"
    assert await watcher.expect("NOTICE") == ":author!author@chatd NOTICE #hall :(deleted a message)"

    await client.sync()  # the messages' pushes are behind us
    texts = [text for _, text in await read_history(client, reader, f"r{reader}", "hall")]
    assert "final words" in texts and not {"first draft", "regrettable"} & set(texts), texts
    rest = {m["id"]: m for m in await rest_messages(chatd, "author", "hall")}
    assert (rest[kept]["text"], rest[kept]["edited"] is not None) == ("final words", True)
    assert (rest[regretted]["text"], rest[regretted]["deleted"]) == ("", True)
    for c in (author, watcher, client):
        await done(c)


# Files: one file store and one upload path in the core, whatever a dialect's chunking (typed chunks count from 1,
# action packets from 0, colon sends the file whole, REST puts raw chunks).

FILE = os.urandom(40000)  # more than one chunk of every chunked way
CHUNK = 20000  # what this client sends per typed chunk
UPLOADER = {"typed media": "typed", "typed file": "typed", "action": "action", "colon": "colon", "rest": "typed"}


def pieces(data: bytes, size: int) -> list[str]:
    return [base64.b64encode(data[i : i + size]).decode() for i in range(0, len(data), size)]


async def upload(service, client, way: str, room: str) -> str:
    """Upload FILE (picture.png) into `room` the way `way` does; the stored file's id."""
    name, mime, size = "picture.png", "image/png", len(FILE)
    if way == "typed media":
        client.send("MEDIA_MESSAGE", receiver=room, mediaId="up", mediaType=mime, mediaSize=size, fileName=name)
        assert (await client.payload("MEDIA_MESSAGE_ACK"))["code"] == 0
        parts = pieces(FILE, CHUNK)
        for index, part in enumerate(parts, 1):
            client.send("MEDIA_MESSAGE_DATA", mediaId="up", chunkIndex=index, totalChunks=len(parts), data=part)
        complete = await client.payload("MEDIA_MESSAGE_COMPLETE")
        assert complete["code"] == 0, complete
        return complete["fileId"]
    if way == "typed file":
        client.send("FILE_REQUEST", transferId="up", fileName=name, fileSize=size, fileType=mime, room=room)
        assert (await client.payload("FILE_RESPONSE"))["code"] == 0
        parts = pieces(FILE, CHUNK)
        for index, part in enumerate(parts, 1):
            client.send("FILE_TRANSFER", transferId="up", chunkIndex=index, totalChunks=len(parts), data=part)
        for _ in parts:
            answer = await client.payload("FILE_RESPONSE")
            assert answer["code"] == 0, answer
        assert answer["complete"] is True
        return answer["fileId"]
    if way == "action":
        parts = pieces(FILE, 32768)
        named = {"room_id": room, "file_path": name}
        init = named | {"file_size": size, "file_type": mime, "total_packets": len(parts)}
        send(client, "action", "file_send_init", init)
        await action_frame(client, "file_send_init")
        for seq, part in enumerate(parts):
            send(client, "action", "file_send_data", named | {"sequence_number": seq, "file_data": part})
        send(client, "action", "file_send_fin", named | {"total_packets": len(parts)})
        return (await action_frame(client, "file_send_fin"))["data"]["file_id"]
    if way == "colon":
        data = {"groupId": room, "data": base64.b64encode(FILE).decode(), "name": name, "mime": mime}
        send(client, "colon", "CHAT:SEND_MESSAGE_IMAGE", data)
        posted = await json_reply(client, "colon", lambda f: f["type"] == "CHAT:MESSAGE_RETURN_IMAGE")
        return posted["data"]["file"]["id"]
    http = Http(service)  # rest
    try:
        _, login = await http.json("POST", "/login", json={"username": "uploader", "password": PASSWORD})
        token = login["token"]
        announce = {"cid": room, "name": name, "size": size, "mime": mime}
        code, started = await http.json("POST", "/uploads", token=token, json=announce)
        assert code == 201, started
        step = started["chunk_bytes"]
        for index in range(1, started["chunks"] + 1):
            part = FILE[(index - 1) * step : index * step]
            code, put = await http.json("PUT", f"/uploads/{started['key']}/{index}", token=token, data=part)
        assert code == 201, put
        return put["message"]["file"]["id"]
    finally:
        await http.close()


@pytest.mark.parametrize("way", sorted(UPLOADER))
@pytest_twisted.ensureDeferred
async def test_a_file_uploaded_any_way_is_posted_once_and_downloads_byte_for_byte(chatd, way):
    uploader = await dialect_user(chatd, UPLOADER[way], "uploader")
    viewer = await dialect_user(chatd, "events", "viewer")
    await join(uploader, UPLOADER[way], "hall")
    await join(viewer, "events", "hall")
    file_id = await upload(chatd, uploader, way, "hall")
    posted = await json_reply(viewer, "events", lambda f: f["event"] == "SERVER_CHAT_RECEIVE")
    assert posted["data"]["message"]["file"]["id"] == file_id
    [message] = await rest_messages(chatd, "viewer", "hall")
    assert message["sender"] == "uploader" and message["file"] == {
        "id": file_id,
        "name": "picture.png",
        "mime": "image/png",
        "size": len(FILE),
        "url": f"/files/{file_id}",
    }
    response, body = await rest_call(chatd, "viewer", "GET", f"/files/{file_id}")
    assert response.code == 200 and body == FILE
    assert response.headers.getRawHeaders("Content-Type") == ["image/png"]
    await done(uploader)
    await done(viewer)


async def download(service, client, way: str, room: str, file_id: str) -> bytes:
    """A stored file's bytes, fetched the way `way` does."""
    if way == "typed media":
        client.send("MEDIA_MESSAGE_ACK", mediaId=file_id, code=0)
        data = b""
        while True:
            chunk = await client.payload("MEDIA_MESSAGE_DATA")
            data += base64.b64decode(chunk["data"])
            client.send("MEDIA_MESSAGE_DATA_ACK", mediaId=file_id, chunkIndex=chunk["chunkIndex"], code=0)
            if chunk["chunkIndex"] == chunk["totalChunks"]:
                client.send("MEDIA_MESSAGE_COMPLETE", mediaId=file_id, code=0)
                assert (await client.payload("MEDIA_MESSAGE_COMPLETE_ACK"))["code"] == 0
                return data
    if way == "typed file":
        data, index = b"", 1
        while True:
            client.send("FILE_REQUEST", fileId=file_id, chunkIndex=index)
            chunk = await client.payload("FILE_TRANSFER")
            data += base64.b64decode(chunk["data"])
            if index == chunk["totalChunks"]:
                return data
            index += 1
    if way == "action":
        send(client, "action", "file_down_req", {"room_id": room, "file_path": "picture.png", "file_id": file_id})
        meta = await action_frame(client, "file_down_meta")
        chunks = [await action_frame(client, "file_down_data") for _ in range(meta["data"]["total_packets"])]
        await action_frame(client, "file_down_fin")
        return b"".join(base64.b64decode(c["data"]["file_data"]) for c in chunks)
    response, body = await rest_call(service, "downloader", "GET", f"/files/{file_id}")  # rest
    assert response.code == 200
    return body


@pytest.mark.parametrize("way", ["action", "rest", "typed file", "typed media"])
@pytest_twisted.ensureDeferred
async def test_a_file_downloads_byte_for_byte_whatever_way_it_is_fetched(chatd, way):
    uploader = await dialect_user(chatd, "colon", "uploader")
    downloader = await dialect_user(chatd, UPLOADER[way], "downloader")
    await join(uploader, "colon", "hall")
    await join(downloader, UPLOADER[way], "hall")
    file_id = await upload(chatd, uploader, "colon", "hall")
    await downloader.sync()  # the file's push is behind us
    assert await download(chatd, downloader, way, "hall", file_id) == FILE
    await done(uploader)
    await done(downloader)


# Refusals: a stranger to a private group. Each dialect says it in its own error form; the core's code is the same.
# (IRC has numerics instead of codes: ERR_CANNOTSENDTOCHAN for 8003, ERR_INVITEONLYCHAN for 8004.)

POST_INTO = {  # (the text dialect posts only into the room it joined)
    "typed": ("TEXT_MESSAGE", {"room": "{room}", "content": "let me in"}),
    "action": ("send_message", {"room_id": "{room}", "content": "let me in"}),  # entering a public room on the way
    "events": ("CLIENT_CHAT_SEND", {"cid": "{room}", "text": "let me in"}),
    "colon": ("CHAT:SEND_MESSAGE_TEXT", {"groupId": "{room}", "text": "let me in"}),
    "irc": "PRIVMSG #{room} :let me in",
}
UPLOAD_INTO = {
    "typed media": ("MEDIA_MESSAGE", {"receiver": "{room}", "mediaId": "m", "mediaSize": 1}),
    "typed file": ("FILE_REQUEST", {"room": "{room}", "transferId": "t", "fileName": "f", "fileSize": 1}),
    "action": ("file_send_init", {"room_id": "{room}", "file_path": "f", "file_size": 1, "total_packets": 1}),
    "colon": ("CHAT:SEND_MESSAGE_IMAGE", {"groupId": "{room}", "data": "eA=="}),
}
READ_FROM = {  # (typed history is of every room one is in; IRC has no history)
    "action": ("get_messages", {"room_id": "{room}"}),
    "events": ("CLIENT_CHAT_HISTORY", {"cid": "{room}"}),
    "colon": ("CHAT:GET_INIT_MESSAGES", {"groupId": "{room}"}),
    "text": "/history {room}",
}
IRC_NUMERIC = {8003: "404", 8004: "473"}


async def refusal(client, dialect: str) -> int | str:
    """The code of the next refusal `client` gets, in its dialect's form (an IRC numeric), skipping other lines."""
    while True:
        raw = await client.line()
        line = raw if isinstance(raw, str) else raw.decode()
        if dialect == "irc" and (numeric := irc_error(line)):
            return numeric
        if dialect == "text" and line.startswith("! "):
            return int(line.split(" ")[1])
        if dialect not in ("irc", "text"):
            frame = orjson.loads(line)
            if dialect == "typed" and frame["payload"].get("code"):  # a NACK, an ERROR, or a reply's failure
                return frame["payload"]["code"]
            if dialect == "action" and frame["action"] == "error":
                return frame["code"]
            if dialect == "events" and frame["event"] == "SERVER_ERROR":
                return frame["data"]["code"]
            if dialect == "colon" and frame["type"] == "ERROR":
                return frame["data"]["code"]


async def private_group(service) -> str:
    owner = await typed_user(service, "owner")
    owner.send("GROUP_CREATE", name="secret club", members=[])
    group = (await owner.payload("GROUP_CREATE_ACK"))["groupId"]
    await owner.close()
    return group


def attempt(client, dialect: str, request, room: str) -> None:
    if dialect == "irc":
        client.send(request.format(room=room))
    elif dialect == "text":
        client.say(request.format(room=room))
    else:
        kind, data = request
        send(client, dialect, kind, data, room=room)


@pytest.mark.parametrize("dialect", sorted(POST_INTO))
@pytest_twisted.ensureDeferred
async def test_posting_into_a_private_group_one_is_not_in_is_refused_alike_in_every_dialect(chatd, dialect):
    group = await private_group(chatd)
    stranger = await dialect_user(chatd, dialect, "stranger")
    attempt(stranger, dialect, POST_INTO[dialect], group)
    assert await refusal(stranger, dialect) == (IRC_NUMERIC[8003] if dialect == "irc" else 8003)
    assert await rest_messages(chatd, "owner", group) == []  # nothing was stored
    await done(stranger)


@pytest.mark.parametrize("way", sorted(UPLOAD_INTO))
@pytest_twisted.ensureDeferred
async def test_uploading_into_a_private_group_one_is_not_in_is_refused_alike_whatever_the_way(chatd, way):
    group = await private_group(chatd)
    dialect = UPLOADER[way]
    stranger = await dialect_user(chatd, dialect, "stranger")
    attempt(stranger, dialect, UPLOAD_INTO[way], group)
    assert await refusal(stranger, dialect) == 8003
    announce = {"cid": group, "name": "f", "size": 1}
    response, body = await rest_call(chatd, "stranger", "POST", "/uploads", json=announce)
    assert (response.code, orjson.loads(body)["code"]) == (403, 8003)
    assert await rest_messages(chatd, "owner", group) == []
    await done(stranger)


@pytest.mark.parametrize("dialect", sorted(READ_FROM))
@pytest_twisted.ensureDeferred
async def test_reading_a_private_group_one_is_not_in_is_refused_alike_in_every_dialect(chatd, dialect):
    group = await private_group(chatd)
    stranger = await dialect_user(chatd, dialect, "stranger")
    attempt(stranger, dialect, READ_FROM[dialect], group)
    assert await refusal(stranger, dialect) == 8003
    response, body = await rest_call(chatd, "stranger", "GET", f"/messages?cid={group}")
    assert (response.code, orjson.loads(body)["code"]) == (403, 8003)
    await done(stranger)


ENTER = {
    **{d: JOIN[d] for d in JOIN},
    "text": "/join {room}",
    "irc": "JOIN #{room}",
}


@pytest.mark.parametrize("dialect", sorted(ENTER))
@pytest_twisted.ensureDeferred
async def test_joining_a_private_group_without_an_invitation_is_refused_alike_in_every_dialect(chatd, dialect):
    group = await private_group(chatd)
    stranger = await dialect_user(chatd, dialect, "stranger")
    attempt(stranger, dialect, ENTER[dialect], group)
    got = await refusal(stranger, dialect)
    assert got == (IRC_NUMERIC[8004] if dialect == "irc" else 8004)
    response, body = await rest_call(chatd, "owner", "GET", f"/members?cid={group}")
    assert response.code == 200 and [m["user"] for m in orjson.loads(body)["members"]] == ["owner"]  # nobody got in
    assert await rest_messages(chatd, "owner", group) == []
    await done(stranger)


# Joining and leaving a room: the other members hear of it, and the room's member list says so.

LEAVE = {
    "typed": ("USER_LEAVE", {"room": "{room}"}),
    "action": ("leave_room", {"room_id": "{room}"}),
    "events": ("CLIENT_CHAT_LEAVE", {"cid": "{room}", "membership": True}),
    "colon": ("GROUP:LEAVE_GROUP", {"groupId": "{room}"}),
    "text": "/leave {room}",
    "irc": "PART #{room}",
}


async def members(service, user: str, room: str) -> list[str]:
    response, body = await rest_call(service, user, "GET", f"/members?cid={room}")
    assert response.code == 200, body
    return [m["user"] for m in orjson.loads(body)["members"]]


@pytest.mark.parametrize("dialect", sorted(LEAVE))
@pytest_twisted.ensureDeferred
async def test_joining_and_leaving_a_room_are_seen_alike_whatever_the_dialect(chatd, dialect):
    stayer = await dialect_user(chatd, "events", "stayer")
    await join(stayer, "events", "hall")
    mover = await dialect_user(chatd, dialect, "mover")
    await join(mover, dialect, "hall")
    joined = await json_reply(stayer, "events", lambda f: f["event"] == "SERVER_CHAT_MEMBER_JOINED")
    assert joined["data"] == {"cid": "hall", "user": "mover"}
    assert await members(chatd, "stayer", "hall") == ["mover", "stayer"]

    attempt(mover, dialect, LEAVE[dialect], "hall")
    left = await json_reply(stayer, "events", lambda f: f["event"] == "SERVER_CHAT_MEMBER_LEFT")
    assert left["data"] == {"cid": "hall", "user": "mover"}
    assert await members(chatd, "stayer", "hall") == ["stayer"]
    attempt(mover, dialect, LEAVE[dialect], "hall")  # again: no longer a member
    assert await refusal(mover, dialect) == ("442" if dialect == "irc" else 8003)  # ERR_NOTONCHANNEL
    await done(mover)
    await done(stayer)
