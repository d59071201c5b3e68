"""Seed 002 history sync: REQUEST -> RESPONSE, BEGIN -> (ack) -> DATA... -> COMPLETE -> (ack)."""

import sqlite3

import pytest_twisted

from chatdaemon import errors
from chatdaemon.store.sqlite import DB_FILE
from tests.conftest import make_config, start_service, typed_user


async def sync(client, user: str) -> list[dict]:
    """Run the whole flow as a seed-002 client; return every message received."""
    client.send("MESSAGE_HISTORY_REQUEST", username=user)
    assert await client.payload("MESSAGE_HISTORY_RESPONSE") == {"username": user, "code": 0}
    assert await client.payload("MESSAGE_HISTORY_BEGIN") == {"username": user, "code": 0}
    client.send("MESSAGE_HISTORY_BEGIN", username=user, code=0)
    messages, chunk = [], 0
    while True:
        frame = await client.frame()
        if frame["type"] == "MESSAGE_HISTORY_COMPLETE":
            assert frame["payload"] == {"username": user, "code": 0}
            client.send("MESSAGE_HISTORY_COMPLETE", username=user, code=0)
            return messages
        assert frame["type"] == "MESSAGE_HISTORY_DATA"
        chunk += 1
        assert frame["payload"]["chunk"] == chunk and frame["payload"]["username"] == user
        messages += frame["payload"]["messages"]
        client.send("MESSAGE_HISTORY_DATA", username=user, code=0)


@pytest_twisted.ensureDeferred
async def test_history_of_rooms_and_conversations_in_order(chatd):
    alice, bob = await typed_user(chatd, "alice"), await typed_user(chatd, "bob")
    alice.send("USER_JOIN", room="lobby")
    await alice.payload("USER_JOIN")
    alice.send("TEXT_MESSAGE", receiver="bob", content="hello bob")
    alice.send("TEXT_MESSAGE", receiver="lobby", content="hello room")
    bob.send("TEXT_MESSAGE", receiver="alice", content="hi alice")
    for client in (alice, alice, bob):
        await client.payload("MESSAGE_ACK")
    got = await sync(alice, "alice")
    assert [(m["sender"], m["receiver"], m["content"]) for m in got] == [
        ("alice", "bob", "hello bob"),
        ("alice", "lobby", "hello room"),
        ("bob", "alice", "hi alice"),
    ]
    assert all(isinstance(m["timestamp"], int) for m in got)
    await alice.close()
    await bob.close()


@pytest_twisted.ensureDeferred
async def test_no_history_is_6001_and_acks_out_of_turn_are_refused(chatd):
    loner = await typed_user(chatd, "loner")
    loner.send("MESSAGE_HISTORY_REQUEST", username="loner")
    assert await loner.payload("MESSAGE_HISTORY_RESPONSE") == {
        "username": "loner",
        "code": errors.NO_HISTORY,
        "message": "no history found",
    }
    loner.send("MESSAGE_HISTORY_DATA", username="loner", code=0)
    assert (await loner.payload("ERROR"))["code"] == errors.BAD_FRAME
    await loner.close()


@pytest_twisted.ensureDeferred
async def test_100k_messages_stream_page_by_page(data_dir):
    service = await start_service(make_config(data_dir))
    reader = await typed_user(service, "reader")
    reader.send("USER_JOIN", room="archive")
    await reader.payload("USER_JOIN")
    await reader.close()
    await service.stopService()
    total = 100_000
    with sqlite3.connect(data_dir / DB_FILE) as db:
        db.executemany(
            "INSERT INTO messages (id, room_id, sender, kind, body, ts) VALUES (?, 'archive', 'bot', 'text', ?, ?)",
            ((n, f"message {n}", n) for n in range(1, total + 1)),
        )
        db.execute("UPDATE users SET cursor = ? WHERE name = 'reader'", (total,))  # seen already: no offline replay
    service = await start_service(make_config(data_dir))
    asked = []
    timeline = service.store.timeline

    def recording(user, after, upto, limit, missed_only=False):
        asked.append(limit)
        return timeline(user, after, upto, limit, missed_only)

    service.store.timeline = recording
    try:
        reader = await typed_user(service, "reader", register=False)
        got = await sync(reader, "reader")
        assert len(got) == total
        assert [m["messageId"] for m in got] == list(range(1, total + 1))
        limits = service.config.limits
        assert max(asked) <= max(limits.history_page + 1, limits.offline_page)  # never more than a page in memory
        # page after page (each read asks one more row, to know whether another page follows)
        assert asked.count(limits.history_page + 1) >= total // limits.history_page
        await reader.close()
    finally:
        await service.stopService()
