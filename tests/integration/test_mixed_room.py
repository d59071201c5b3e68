"""One room, four dialects over two transports: typed (line), text (WebSocket), events (WebSocket), colon (line)."""

import orjson
import pytest_twisted

from tests.conftest import connect, typed_user
from tests.integration.test_colon import colon_user
from tests.integration.test_events import events_user
from tests.wsclient import ws_connect


@pytest_twisted.ensureDeferred
async def test_four_dialects_see_each_other_in_one_room(chatd):
    typed = await typed_user(chatd, "ty")
    typed.send("USER_JOIN", room="plaza")
    await typed.payload("USER_JOIN")
    text = await ws_connect(chatd)
    text.say("/register tx pw")
    await text.text("* registered")
    text.say("/login tx pw")
    await text.text("* welcome")
    text.say("/join plaza")
    await text.text("* you are in #plaza")
    ev = await events_user(chatd, "ev")
    ev.send({"event": "CLIENT_CHAT_JOIN", "data": {"cid": "plaza"}})
    await ev.next(event="SERVER_CHAT_JOINED")
    co = await colon_user(chatd, "co")
    co.send({"type": "GROUP:JOIN_GROUP", "data": {"groupId": "plaza"}})
    await co.next(type="GROUP:USER_JOINED", data={"groupId": "plaza", "username": "co"})
    line_colon = await connect(chatd)
    line_colon.send_raw(orjson.dumps({"type": "USER:LOGIN", "data": {"token": co.token}}) + b"\n")
    assert b"USER:LOGGED_IN" in await line_colon.line()

    typed.send("TEXT_MESSAGE", receiver="plaza", content="one")
    text.say("two")
    ev.send({"event": "CLIENT_CHAT_SEND", "data": {"cid": "plaza", "text": "three"}})
    co.send({"type": "CHAT:SEND_MESSAGE_TEXT", "data": {"groupId": "plaza", "text": "four"}})
    want = {"one", "two", "three", "four"}

    async def seen_by_typed():
        got = set()
        while len(got) < 3:
            got.add((await typed.payload("TEXT_MESSAGE"))["content"])
        return got

    async def seen_by_text():
        got = set()
        while len(got) < 3:
            got.add((await text.text("[#plaza]")).rsplit("> ", 1)[1])
        return got

    async def seen_by(client, key, value, path):
        got = set()
        while len(got) < 4:
            got.add(path(await client.next(**{key: value})))
        return got

    assert (await seen_by_typed()) == want - {"one"}
    assert (await seen_by_text()) == want - {"two"}
    assert (await seen_by(ev, "event", "SERVER_CHAT_RECEIVE", lambda f: f["data"]["message"]["text"])) == want
    assert (await seen_by(co, "type", "CHAT:MESSAGE_RETURN_TEXT", lambda f: f["data"]["text"])) == want
    got = set()
    while len(got) < 4:
        f = orjson.loads(await line_colon.line())
        if f["type"] == "CHAT:MESSAGE_RETURN_TEXT":
            got.add(f["data"]["text"])
    assert got == want
    for c in (text, ev, co):
        await c.close()
    await typed.close()
    await line_colon.close()
