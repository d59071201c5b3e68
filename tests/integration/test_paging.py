"""The edges of every paging parameter in every dialect that pages, over real sockets: REST `GET /messages`
(before, after, limit), events `CLIENT_CHAT_HISTORY`, colon `CHAT:GET_INIT_MESSAGES` (before), action
`get_messages` (from_time, after_message_id, limit), text `/history N`, and typed history sync. A room holds seven
messages; `limits.history_page` is 5."""

import dataclasses

import orjson
import pytest_twisted

from chatdaemon import errors
from tests.conftest import LineClient, act, make_config, start_service, typed_user
from tests.integration.test_parity import dialect_user, frame_of
from tests.wsclient import Http

HUGE = 2**63 - 1  # the largest integer JSON carries exactly here; the core treats anything past 2**62 as "none"
BAD = errors.BAD_FIELD


@pytest_twisted.async_yield_fixture
async def room(data_dir):
    """(service, message ids of room "pages", oldest first)."""
    service = await start_service(dataclasses.replace(make_config(data_dir, history_page=5)))
    poster = await typed_user(service, "poster")
    poster.send("USER_JOIN", room="pages")
    await poster.payload("USER_JOIN")
    ids = []
    for n in range(7):
        poster.send("TEXT_MESSAGE", room="pages", content=f"m{n}")
        ids.append((await poster.payload("MESSAGE_ACK"))["messageId"])
    await poster.close()
    yield service, ids
    await service.stopService()


def slice_of(ids: list[int], messages: list[dict], key: str = "id") -> list[int]:
    got = [m[key] for m in messages]
    assert all(i in ids for i in got)
    return got


@pytest_twisted.ensureDeferred
async def test_rest_messages_paging_edges(room):
    service, ids = room
    http = Http(service)
    try:
        reader = await typed_user(service, "reader", "pw")
        reader.send("USER_JOIN", room="pages")
        await reader.payload("USER_JOIN")
        _, login = await http.json("POST", "/login", json={"username": "reader", "password": "pw"})
        token = login["token"]

        async def page(query: str) -> tuple[list[int] | None, bool | int]:
            status, body = await http.json("GET", f"/messages?cid=pages{query}", token=token)
            if status != 200:
                return None, body["code"]
            return slice_of(ids, body["messages"]), body["has_more"]

        assert await page("") == (ids[2:], True)  # the newest page
        assert await page("&after=0") == (ids[:5], True)  # 0 is a bound: from the first message
        assert await page("&after=0&limit=3") == (ids[:3], True)
        assert await page(f"&after={ids[4]}") == (ids[5:], False)
        assert await page(f"&after={ids[6]}") == ([], False)
        assert await page("&before=0") == (ids[2:], True)  # 0: no bound
        assert await page(f"&before={ids[3]}&limit=2") == (ids[1:3], True)
        assert await page(f"&before={ids[0]}") == ([], False)
        assert await page(f"&after={ids[1]}&before={ids[5]}") == (ids[2:5], False)
        assert await page("&limit=1") == (ids[6:], True)
        assert await page(f"&limit={HUGE}") == (ids[2:], True)  # capped by history_page
        assert await page(f"&before={HUGE}") == (ids[2:], True)
        assert await page(f"&before={10**30}") == (ids[2:], True)
        assert await page(f"&after={10**30}") == ([], False)
        assert await page("&after=") == (ids[2:], True)  # empty: absent
        for query in ("&limit=0", "&limit=-1", "&before=-1", "&after=-5", "&limit=abc", "&after=1.5",
                      "&before=1e3", "&after=0x10", f"&before={'9' * 5000}"):  # fmt: skip
            assert await page(query) == (None, BAD), query
        await reader.close()
    finally:
        await http.close()


async def events_history(client: LineClient, **data) -> tuple[list[int] | None, int]:
    client.send_raw(frame_of("events", "CLIENT_CHAT_HISTORY", {"cid": "pages", **data}) + b"\n")
    while True:
        frame = orjson.loads(await client.line())
        if frame["event"] == "SERVER_CHAT_HISTORY":
            return [m["id"] for m in frame["data"]["messages"]], 0
        if frame["event"] == "SERVER_ERROR":
            return None, frame["data"]["code"]


@pytest_twisted.ensureDeferred
async def test_events_history_paging_edges(room):
    service, ids = room
    client = await dialect_user(service, "events", "evie")
    client.send_raw(frame_of("events", "CLIENT_CHAT_JOIN", {"cid": "pages"}) + b"\n")
    await client.sync()
    assert await events_history(client) == (ids[2:], 0)
    assert await events_history(client, after=0) == (ids[:5], 0)
    assert await events_history(client, after=0, limit=2) == (ids[:2], 0)
    assert await events_history(client, after=ids[5]) == (ids[6:], 0)
    assert await events_history(client, before=ids[2]) == (ids[:2], 0)
    assert await events_history(client, before=ids[0]) == ([], 0)
    assert await events_history(client, before=0) == (ids[2:], 0)
    assert await events_history(client, before=HUGE, limit=HUGE) == (ids[2:], 0)
    assert await events_history(client, after=HUGE) == ([], 0)
    for bad in ({"limit": 0}, {"limit": -3}, {"before": -1}, {"after": -1}, {"after": "1"}, {"after": True},
                {"limit": 1.5}, {"before": None, "after": []}, {"after": 1.8446744073709552e19}):  # fmt: skip
        assert await events_history(client, **bad) == (None, BAD), bad
    await client.close()


async def colon_history(client: LineClient, data) -> tuple[list[int] | None, int]:
    client.send_raw(frame_of("colon", "CHAT:GET_INIT_MESSAGES", data) + b"\n")
    while True:
        frame = orjson.loads(await client.line())
        if frame["type"] == "CHAT:RETURN_INIT_MESSAGES":
            return [m["id"] for m in frame["data"]["messages"]], 0
        if frame["type"] == "ERROR":
            return None, frame["data"]["code"]


@pytest_twisted.ensureDeferred
async def test_colon_init_messages_paging_edges(room):
    service, ids = room
    client = await dialect_user(service, "colon", "colette")
    client.send_raw(frame_of("colon", "GROUP:JOIN_GROUP", "pages") + b"\n")
    await client.sync()
    assert await colon_history(client, "pages") == (ids[2:], 0)  # a bare group id: the newest page
    assert await colon_history(client, {"groupId": "pages"}) == (ids[2:], 0)
    assert await colon_history(client, {"groupId": "pages", "before": ids[3]}) == (ids[:3], 0)
    assert await colon_history(client, {"groupId": "pages", "before": ids[0]}) == ([], 0)
    assert await colon_history(client, {"groupId": "pages", "before": 0}) == (ids[2:], 0)
    assert await colon_history(client, {"groupId": "pages", "before": HUGE}) == (ids[2:], 0)
    for before in (-1, "5", 2.5, True, None, [1]):
        expected = (ids[2:], 0) if before is None else (None, BAD)  # null: absent
        assert await colon_history(client, {"groupId": "pages", "before": before}) == expected, before
    await client.close()


@pytest_twisted.ensureDeferred
async def test_action_get_messages_paging_edges(room):
    service, ids = room
    client = await dialect_user(service, "action", "acton")

    async def listed(**data):
        act(client, "get_messages", room_id="pages", **data)
        while True:
            frame = orjson.loads(await client.line())
            if frame["action"] == "messages_list":
                listing = frame["data"]
                return [m["message_id"] for m in listing["messages"]], listing.get("next_after_message_id")
            if frame["action"] == "error":
                return None, frame["code"]

    assert await listed() == (ids[:5], ids[4])  # seed 001 pages forward: from the first message
    assert await listed(after_message_id=ids[4]) == (ids[5:], None)
    assert await listed(after_message_id=0, limit=2) == (ids[:2], ids[1])
    assert await listed(after_message_id=ids[6]) == ([], None)
    assert await listed(limit=HUGE) == (ids[:5], ids[4])
    assert await listed(after_message_id=HUGE) == ([], None)
    assert await listed(from_time="2000-01-01T00:00:00Z") == (ids[:5], ids[4])
    assert await listed(from_time="2999-01-01T00:00:00Z") == ([], None)
    assert await listed(from_time=0) == (ids[:5], ids[4])
    assert await listed(from_time=1e308) == ([], None)  # seconds since the epoch, however far
    assert await listed(from_time=-1e308) == (ids[:5], ids[4])
    for bad in ({"limit": 0}, {"limit": -1}, {"after_message_id": -1}, {"after_message_id": "3"},
                {"limit": 2.5}, {"from_time": "yesterday"}, {"from_time": "x" * 100}, {"from_time": True},
                {"from_time": [2024]}):  # fmt: skip
        assert await listed(**bad) == (None, BAD), bad
    await client.close()


@pytest_twisted.ensureDeferred
async def test_text_history_count_edges(room):
    service, _ = room
    client = await dialect_user(service, "text", "tex")
    client.say("/join pages")
    await client.text("* ")

    async def history(command: str) -> list[str]:
        client.say(command)
        return [line.decode() for line in await client.sync()]

    def texts(lines: list[str]) -> list[str]:
        return [line.rsplit("> ", 1)[1] for line in lines]

    assert texts(await history("/history pages 3")) == ["m4", "m5", "m6"]
    assert texts(await history("/history 1")) == ["m6"]
    assert texts(await history("/history")) == ["m2", "m3", "m4", "m5", "m6"]  # 20 asked, 5 at most
    assert texts(await history(f"/history pages {'9' * 40}")) == ["m2", "m3", "m4", "m5", "m6"]
    assert texts(await history("/history pages 0003")) == ["m4", "m5", "m6"]
    assert (await history("/history pages 0"))[0].startswith(f"! {BAD} limit is at least 1")
    assert (await history("/history pages ²"))[0] == f"! {BAD} usage: /history [ROOM|@USER] [N]"  # not a count
    await client.close()


@pytest_twisted.ensureDeferred
async def test_typed_history_sync_pages_through_everything_and_checks_its_turns(room):
    service, ids = room
    client = await typed_user(service, "sync")
    client.send("MESSAGE_HISTORY_REQUEST", username="sync")
    assert (await client.payload("MESSAGE_HISTORY_RESPONSE"))["code"] == errors.NO_HISTORY  # in no room yet
    client.send("USER_JOIN", room="pages")
    await client.payload("USER_JOIN")
    client.send("MESSAGE_HISTORY_DATA", username="sync")  # an acknowledgement out of turn
    assert (await client.frame("ERROR"))["payload"]["code"] == errors.BAD_FRAME
    client.send("MESSAGE_HISTORY_REQUEST", username="sync")
    assert (await client.payload("MESSAGE_HISTORY_RESPONSE"))["code"] == 0
    await client.payload("MESSAGE_HISTORY_BEGIN")
    client.send("MESSAGE_HISTORY_BEGIN", username="sync", code=0)
    got = []
    while True:
        frame = await client.frame()
        if frame["type"] == "MESSAGE_HISTORY_COMPLETE":
            break
        if frame["type"] == "MESSAGE_HISTORY_DATA":
            chunk = frame["payload"]["messages"]
            assert 0 < len(chunk) <= 5  # the pages are history_page long; none is empty
            got += [m["messageId"] for m in chunk]
            client.send("MESSAGE_HISTORY_DATA", username="sync", code=0)
    assert got == ids
    client.send("MESSAGE_HISTORY_COMPLETE", username="sync", code=0)
    client.send("MESSAGE_HISTORY_COMPLETE", username="sync", code=0)  # once too often
    assert (await client.frame("ERROR"))["payload"]["code"] == errors.BAD_FRAME
    await client.close()
