"""Commands sent on one connection take effect in the order sent, in every dialect: frames written in one
go, with no wait between them, behave as if each had been answered before the next was sent."""

import orjson
import pytest_twisted

from tests.conftest import act, action_frame, action_user, connect, text_user, typed_user
from tests.wsclient import Http, ws_connect


@pytest_twisted.ensureDeferred
async def test_text_join_say_and_history_in_one_write(chatd):
    alice = await text_user(chatd, "alice")
    alice.send_raw(b"/join lobby\nhello from nc\n/history lobby\n")
    assert (await alice.text("* you are in")).startswith("* you are in #lobby")
    line = await alice.text("[")
    assert line.startswith("[#lobby ") and line.endswith("<alice> hello from nc")
    await alice.close()


@pytest_twisted.ensureDeferred
async def test_typed_history_request_right_after_a_message(chatd):
    alice = await typed_user(chatd, "alice")
    bob = await typed_user(chatd, "bob")
    send = [
        {"type": "TEXT_MESSAGE", "timestamp": 1, "payload": {"receiver": "bob", "content": f"m{n}"}} for n in range(3)
    ]
    send.append({"type": "MESSAGE_HISTORY_REQUEST", "timestamp": 1, "payload": {"username": "alice"}})
    alice.send_raw(b"".join(orjson.dumps(f) + b"\n" for f in send))
    acks = [await alice.payload("MESSAGE_ACK") for _ in range(3)]
    assert (await alice.payload("MESSAGE_HISTORY_RESPONSE"))["code"] == 0
    alice.send("MESSAGE_HISTORY_BEGIN", username="alice", code=0)
    data = await alice.payload("MESSAGE_HISTORY_DATA")
    assert [m["messageId"] for m in data["messages"]] == [a["messageId"] for a in acks]
    await alice.close()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_action_get_messages_right_after_a_confirmed_send(chatd):
    alice = await action_user(chatd, "alice")
    act(alice, "send_message", room_id="lobby", content="first")
    tx = (await action_frame(alice, "character_count"))["data"]["transaction_id"]
    alice.send_raw(
        orjson.dumps({"action": "confirm_count", "data": {"transaction_id": tx, "confirm": True}})
        + b"\n"
        + orjson.dumps({"action": "get_messages", "data": {"room_id": "lobby"}})
        + b"\n"
    )
    ack = await action_frame(alice, "ack")
    listing = await action_frame(alice, "messages_list")
    assert [m["message_id"] for m in listing["data"]["messages"]] == [ack["data"]["message_id"]]
    await alice.close()


@pytest_twisted.ensureDeferred
async def test_events_and_colon_history_right_after_a_send(chatd):
    for dialect, frames, answer in (
        (
            "events",
            [("CLIENT_CHAT_JOIN", {"cid": "den"}), ("CLIENT_CHAT_SEND", {"cid": "den", "text": "hi"})],
            ("CLIENT_CHAT_HISTORY", {"cid": "den"}),
        ),
        (
            "colon",
            [("GROUP:JOIN_GROUP", "loft"), ("CHAT:SEND_MESSAGE_TEXT", {"groupId": "loft", "text": "hi"})],
            ("CHAT:GET_INIT_MESSAGES", "loft"),
        ),
    ):
        client = await connect(chatd)
        client.dialect = dialect
        key = "event" if dialect == "events" else "type"
        login = [
            ("CLIENT_REGISTER" if dialect == "events" else "USER:REGISTER", {"username": dialect, "password": "pw"}),
            ("CLIENT_AUTH" if dialect == "events" else "USER:LOGIN", {"username": dialect, "password": "pw"}),
        ]
        client.send_raw(b"".join(orjson.dumps({key: k, "data": d}) + b"\n" for k, d in [*login, *frames, answer]))
        got = [orjson.loads(line) for line in await client.sync()]
        [history] = [f for f in got if f[key] in ("SERVER_CHAT_HISTORY", "CHAT:RETURN_INIT_MESSAGES")]
        assert [m["text"] for m in history["data"]["messages"]] == ["hi"], dialect
        await client.close()


@pytest_twisted.ensureDeferred
async def test_a_rest_read_right_after_the_websocket_ack_sees_the_message(chatd):
    http = Http(chatd)
    try:
        await http.json("POST", "/register", json={"username": "wendy", "password": "pw"})
        _, login = await http.json("POST", "/login", json={"username": "wendy", "password": "pw"})
        ws = await ws_connect(chatd, f"?token={login['token']}&dialect=events")
        ws.send({"event": "CLIENT_CHAT_JOIN", "data": {"cid": "porch"}})
        await ws.next(event="SERVER_CHAT_JOINED")
        for n in range(5):
            ws.send({"event": "CLIENT_CHAT_SEND", "data": {"cid": "porch", "text": f"n{n}"}})
            status = await ws.next(event="SERVER_CHAT_MESSAGE_STATUS")
            assert status["data"]["status"] == "sent"
            _, page = await http.json("GET", "/messages?cid=porch", token=login["token"])
            assert page["messages"][-1]["id"] == status["data"]["id"]
        await ws.close()
    finally:
        await http.close()
