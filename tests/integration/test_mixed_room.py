"""One room, every dialect over every transport: typed (line), text (WebSocket), action (line),
events (WebSocket), colon (line and WebSocket), and the web page (headless Chromium); everyone sees
everyone's messages."""

import orjson
import pytest_twisted

from tests.browser import WebUser, browser  # noqa: F401  (the fixture)
from tests.conftest import act, action_frame, action_send, action_user, connect, typed_user
from tests.integration.test_colon import colon_user
from tests.integration.test_events import events_user
from tests.wsclient import http_port, ws_connect


async def join_plaza(chatd) -> dict:
    """A logged-in user of each dialect in #plaza: typed, text, events, colon, and colon again over line."""
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
    action = await action_user(chatd, "ac")
    act(action, "get_messages", room_id="plaza", from_time="2000-01-01T00:00:00Z")  # naming a public room joins it
    assert (await action_frame(action, "messages_list"))["data"]["room_id"] == "plaza"
    return {"typed": typed, "text": text, "events": ev, "colon": co, "line_colon": line_colon, "action": action}


async def say_each(u: dict) -> set[str]:
    """Each dialect says one message; returns them all. (The action user speaks first: its helper
    skips other frames while it waits for the handshake.)"""
    await action_send(u["action"], "plaza", "six")  # through the character-count handshake
    u["typed"].send("TEXT_MESSAGE", receiver="plaza", content="one")
    u["text"].say("two")
    u["events"].send({"event": "CLIENT_CHAT_SEND", "data": {"cid": "plaza", "text": "three"}})
    u["colon"].send({"type": "CHAT:SEND_MESSAGE_TEXT", "data": {"groupId": "plaza", "text": "four"}})
    return {"one", "two", "three", "four", "six"}


async def seen_by(u: dict, name: str, count: int) -> set[str]:
    """The next `count` message texts the user of dialect `name` is shown in #plaza."""
    got = set()
    client = u[name]
    while len(got) < count:
        if name == "typed":
            got.add((await client.payload("TEXT_MESSAGE"))["content"])
        elif name == "text":
            got.add((await client.text("[#plaza]")).rsplit("> ", 1)[1])
        elif name == "events":
            got.add((await client.next(event="SERVER_CHAT_RECEIVE"))["data"]["message"]["text"])
        elif name == "colon":
            got.add((await client.next(type="CHAT:MESSAGE_RETURN_TEXT"))["data"]["text"])
        elif name == "action":
            got.add((await action_frame(client, "receive_message"))["data"]["content"])
        else:  # colon over line
            f = orjson.loads(await client.line())
            if f["type"] == "CHAT:MESSAGE_RETURN_TEXT":
                got.add(f["data"]["text"])
    return got


async def leave(u: dict) -> None:
    for name in ("text", "events", "colon"):
        await u[name].close()
    await u["typed"].close()
    await u["line_colon"].close()
    await u["action"].close()


@pytest_twisted.ensureDeferred
async def test_five_dialects_see_each_other_in_one_room(chatd):
    u = await join_plaza(chatd)
    want = await say_each(u)
    assert (await seen_by(u, "typed", 4)) == want - {"one"}  # not its own
    assert (await seen_by(u, "text", 4)) == want - {"two"}
    assert (await seen_by(u, "action", 4)) == want - {"six"}
    assert (await seen_by(u, "events", 5)) == want
    assert (await seen_by(u, "colon", 5)) == want
    assert (await seen_by(u, "line_colon", 5)) == want
    await leave(u)


@pytest_twisted.ensureDeferred
async def test_the_web_page_shares_the_room_with_every_dialect(chatd, browser):  # noqa: F811
    u = await join_plaza(chatd)
    page = await WebUser(browser, f"http://127.0.0.1:{http_port(chatd)}/").open()
    try:
        await page.enter("web")
        await page.join("plaza")
        want = await say_each(u) | {"five"}
        await page.say("five")
        for sender, text in (
            ("ty", "one"),
            ("tx", "two"),
            ("ev", "three"),
            ("co", "four"),
            ("web", "five"),
            ("ac", "six"),
        ):
            await page.wait_message(sender, text)
        assert (await seen_by(u, "typed", 5)) == want - {"one"}
        assert (await seen_by(u, "text", 5)) == want - {"two"}
        assert (await seen_by(u, "action", 5)) == want - {"six"}
        assert (await seen_by(u, "events", 6)) == want
        assert (await seen_by(u, "colon", 6)) == want
        assert (await seen_by(u, "line_colon", 6)) == want
        assert page.problems == []
    finally:
        await page.close()
        await leave(u)
