"""Seed 003 (events) over WebSocket and the line transport: every client and server event, and the
sequence diagram: REST for the list and history, the socket for live events."""

import orjson
import pytest_twisted

from tests.conftest import connect, typed_friends, typed_user
from tests.wsclient import Http, ws_connect


def ev(name, **data):
    return {"event": name, "data": data}


async def events_user(service, name, password="secret", register=True, over="ws"):
    client = await ws_connect(service) if over == "ws" else await connect(service)
    if over != "ws":
        client.send_json = lambda obj: client.send_raw(orjson.dumps(obj) + b"\n")

        async def nxt(timeout=10.0, **fields):
            while True:
                f = orjson.loads(await client.line(timeout))
                if all(f.get(k) == v for k, v in fields.items()):
                    return f

        client.next = nxt
    else:
        client.send_json = client.send
    if register:
        client.send_json(ev("CLIENT_REGISTER", username=name, password=password))
        assert (await client.next(event="SERVER_REGISTERED"))["data"]["username"] == name
    client.send_json(ev("CLIENT_AUTH", username=name, password=password))
    client.token = (await client.next(event="SERVER_AUTH_OK"))["data"]["token"]
    return client


@pytest_twisted.ensureDeferred
async def test_every_events_flow(chatd):
    http = Http(chatd)
    a = await events_user(chatd, "ann")
    b = await events_user(chatd, "ben", over="line")
    try:
        # the diagram: REST list, socket presence
        code, body = await http.json("GET", "/conversations", token=a.token)
        assert code == 200 and body["conversations"] == []
        a.send_json(ev("CLIENT_CHAT_JOIN", cid="general"))
        joined = await a.next(event="SERVER_CHAT_JOINED")
        assert joined["data"]["conversation"]["cid"] == "general"
        b.send_json(ev("CLIENT_CHAT_JOIN", cid="general"))
        await b.next(event="SERVER_CHAT_JOINED")
        assert (await a.next(event="SERVER_CHAT_MEMBER_JOINED"))["data"] == {"cid": "general", "user": "ben"}
        # send: the sender gets RECEIVE + sent + delivered; the other RECEIVE
        a.send_json(ev("CLIENT_CHAT_SEND", cid="general", text="hello ben", tempId="t1"))
        mine = await a.next(event="SERVER_CHAT_RECEIVE")
        assert mine["data"]["tempId"] == "t1" and mine["data"]["message"]["text"] == "hello ben"
        mid = mine["data"]["message"]["id"]
        assert (await a.next(event="SERVER_CHAT_MESSAGE_STATUS"))["data"]["status"] == "sent"
        delivered = await a.next(event="SERVER_CHAT_MESSAGE_STATUS")
        assert delivered["data"]["status"] == "delivered" and delivered["data"]["to"] == ["ben"]
        got = await b.next(event="SERVER_CHAT_RECEIVE")
        assert got["data"]["message"]["id"] == mid and got["data"]["message"]["sender"] == "ann"
        # typing, stop, and expiry-free stop
        b.send_json(ev("CLIENT_CHAT_TYPING", cid="general"))
        assert (await a.next(event="SERVER_CHAT_TYPING"))["data"] == {"cid": "general", "user": "ben"}
        b.send_json(ev("CLIENT_CHAT_STOP_TYPING", cid="general"))
        assert (await a.next(event="SERVER_CHAT_STOP_TYPING"))["data"] == {"cid": "general", "user": "ben"}
        # read
        b.send_json(ev("CLIENT_CHAT_READ", id=mid))
        assert (await b.next(event="SERVER_CHAT_MESSAGE_STATUS"))["data"]["status"] == "read"
        read = await a.next(event="SERVER_CHAT_MESSAGE_STATUS")
        assert read["data"] == {"id": mid, "cid": "general", "status": "read", "user": "ben"}
        # reactions
        b.send_json(ev("CLIENT_CHAT_REACTION_ADD", id=mid, emoji="👍"))
        await b.next(event="SERVER_CHAT_REACTION_ADD")
        assert (await a.next(event="SERVER_CHAT_REACTION_ADD"))["data"] == {
            "id": mid,
            "cid": "general",
            "user": "ben",
            "emoji": "👍",
        }
        b.send_json(ev("CLIENT_CHAT_REACTION_ADD", id=mid, emoji="🎉"))
        await a.next(event="SERVER_CHAT_REACTION_ADD")
        b.send_json(ev("CLIENT_CHAT_REACTION_REMOVE", id=mid, emoji="🎉"))
        assert (await a.next(event="SERVER_CHAT_REACTION_REMOVE"))["data"]["emoji"] == "🎉"
        b.send_json(ev("CLIENT_CHAT_REACTION_REMOVE", id=mid, emoji="🎉"))
        assert (await b.next(event="SERVER_ERROR"))["data"]["code"] == 8043
        # edit: author only
        b.send_json(ev("CLIENT_CHAT_EDIT", id=mid, text="hacked"))
        assert (await b.next(event="SERVER_ERROR"))["data"]["code"] == 8021
        a.send_json(ev("CLIENT_CHAT_EDIT", id=mid, text="hello ben (edited)"))
        await a.next(
            event="SERVER_CHAT_MESSAGE_STATUS",
        )
        edited = await b.next(event="SERVER_CHAT_MESSAGE_STATUS")
        assert edited["data"]["status"] == "edited" and edited["data"]["message"]["text"] == "hello ben (edited)"
        # history (REST, as the diagram) shows the edit, the reaction and the read state
        code, page = await http.json("GET", "/messages?cid=general", token=a.token)
        [m] = page["messages"]
        assert (
            m["text"] == "hello ben (edited)"
            and m["edited"]
            and m["reactions"] == {"👍": ["ben"]}
            and m["read_by"] == ["ben"]
        )
        code, body = await http.json("GET", "/conversations", token=b.token)
        assert body["conversations"][0]["unread"] == 0
        # delete: author or leader; then history shows it deleted
        b.send_json(ev("CLIENT_CHAT_DELETE", id=mid))
        assert (await b.next(event="SERVER_ERROR"))["data"]["code"] == 8021
        a.send_json(ev("CLIENT_CHAT_DELETE", id=mid))
        assert (await b.next(event="SERVER_CHAT_MESSAGE_STATUS"))["data"]["status"] == "deleted"
        b.send_json(ev("CLIENT_CHAT_HISTORY", cid="general"))
        [m] = (await b.next(event="SERVER_CHAT_HISTORY"))["data"]["messages"]
        assert m["deleted"] is True and m["text"] == "" and m["reactions"] == {}
        # following: ann follows "other" now, so live messages of general do not reach her
        a.send_json(ev("CLIENT_CHAT_LEAVE", cid="general"))
        assert (await a.next(event="SERVER_CHAT_LEFT"))["data"] == {"cid": "general", "membership": False}
        a.send_json(ev("CLIENT_CHAT_JOIN", cid="other"))
        await a.next(event="SERVER_CHAT_JOINED")
        b.send_json(ev("CLIENT_CHAT_SEND", cid="general", text="unseen by ann's socket"))
        await b.next(event="SERVER_CHAT_RECEIVE")
        assert not [f for f in map(orjson.loads, await a.sync()) if f["event"] == "SERVER_CHAT_RECEIVE"]
        code, body = await http.json("GET", "/conversations", token=a.token)
        assert {c["cid"]: c["unread"] for c in body["conversations"]}["general"] == 1
        # leaving for real
        b.send_json(ev("CLIENT_CHAT_LEAVE", cid="general", membership=True))
        await b.next(event="SERVER_CHAT_LEFT")
        assert (await a.next(event="SERVER_CHAT_MEMBER_LEFT"))["data"] == {"cid": "general", "user": "ben"}
        # presence: a typed user comes and goes
        # presence goes to friends (made here with ann's typed connection)
        t = await typed_user(chatd, "tom")
        ann_typed = await typed_user(chatd, "ann", register=False)
        await typed_friends(ann_typed, "ann", t, "tom")
        await ann_typed.close()
        await t.close()
        assert (await a.next(event="SERVER_USER_OFFLINE"))["data"]["user"] == "tom"
        t = await typed_user(chatd, "tom", register=False)
        assert (await a.next(event="SERVER_USER_ONLINE"))["data"]["user"] == "tom"
        await t.close()
        assert (await a.next(event="SERVER_USER_OFFLINE"))["data"]["user"] == "tom"
        # errors stay on the connection
        a.send_json(ev("CLIENT_NOPE"))
        assert (await a.next(event="SERVER_ERROR"))["data"] == {
            "code": 7003,
            "message": "unknown event 'CLIENT_NOPE'",
            "event": "CLIENT_NOPE",
        }
        a.send_json(ev("CLIENT_CHAT_SEND", cid="general"))
        assert (await a.next(event="SERVER_ERROR"))["data"]["code"] == 7004
    finally:
        await a.close()
        await b.close()
        await http.close()


@pytest_twisted.ensureDeferred
async def test_typing_expires_when_the_client_vanishes(chatd, monkeypatch):
    monkeypatch.setattr(chatd.core.typing, "seconds", 0.3)
    a = await events_user(chatd, "uma")
    b = await events_user(chatd, "vic")
    for c in (a, b):
        c.send(ev("CLIENT_CHAT_JOIN", cid="tea"))
        await c.next(event="SERVER_CHAT_JOINED")
    b.send(ev("CLIENT_CHAT_TYPING", cid="tea"))
    await a.next(event="SERVER_CHAT_TYPING")
    b.dropConnection(abort=True)
    assert (await a.next(event="SERVER_CHAT_STOP_TYPING"))["data"]["user"] == "vic"
    await a.close()
    await b.closed


@pytest_twisted.ensureDeferred
async def test_events_login_by_token_and_typed_sees_events_messages(chatd):
    a = await events_user(chatd, "wes")
    again = await ws_connect(chatd)
    again.send(ev("CLIENT_AUTH", token=a.token))
    assert (await again.next(event="SERVER_AUTH_OK"))["data"]["username"] == "wes"
    again.send(ev("CLIENT_AUTH", username="nobody", password="x"))
    assert (await again.next(event="SERVER_ERROR"))["data"]["code"] == 2002
    t = await typed_user(chatd, "tia")
    t.send("USER_JOIN", room="mixed")
    await t.payload("USER_JOIN")
    again.send(ev("CLIENT_CHAT_JOIN", cid="mixed"))
    await again.next(event="SERVER_CHAT_JOINED")
    again.send(ev("CLIENT_CHAT_SEND", cid="mixed", text="from events"))
    await again.next(event="SERVER_CHAT_RECEIVE")  # the sender's own copy
    assert (await t.payload("TEXT_MESSAGE"))["content"] == "from events"
    t.send("TEXT_MESSAGE", receiver="mixed", content="from typed")
    assert (await again.next(event="SERVER_CHAT_RECEIVE"))["data"]["message"]["text"] == "from typed"
    for c in (a, again):
        await c.close()
    await t.close()


@pytest_twisted.ensureDeferred
async def test_room_presence_reaches_room_mates_and_a_join_without_following_gets_every_room(chatd):
    ann = await events_user(chatd, "ann")
    ben = await events_user(chatd, "ben")
    for cid in ("one", "two"):
        ann.send(ev("CLIENT_CHAT_JOIN", cid=cid, follow=False))
        await ann.next(event="SERVER_CHAT_JOINED")
        ben.send(ev("CLIENT_CHAT_JOIN", cid=cid))  # ben follows "one", then "two"
        await ben.next(event="SERVER_CHAT_JOINED")
    # ann follows nothing: a message in either room reaches her
    for cid in ("one", "two"):
        ben.send(ev("CLIENT_CHAT_SEND", cid=cid, text=f"in {cid}"))
        assert (await ann.next(event="SERVER_CHAT_RECEIVE"))["data"]["message"]["text"] == f"in {cid}"
    # ben follows "two" only: ann's message in "one" does not reach him live (the barrier: his own send after it)
    ann.send(ev("CLIENT_CHAT_SEND", cid="one", text="not followed"))
    await ann.next(event="SERVER_CHAT_MESSAGE_STATUS")
    ben.send(ev("CLIENT_CHAT_SEND", cid="two", text="barrier"))
    seen = []
    while not seen or seen[-1] != "barrier":
        seen.append((await ben.next(event="SERVER_CHAT_RECEIVE"))["data"]["message"]["text"])
    assert seen == ["in one", "in two", "barrier"]
    ann.send(ev("CLIENT_CHAT_JOIN", cid="one", follow="yes"))
    assert (await ann.next(event="SERVER_ERROR"))["data"]["code"] == 7004
    # room presence: ben and ann are not friends, yet each is told when the other comes and goes
    await ben.close()
    assert (await ann.next(event="SERVER_USER_OFFLINE"))["data"] == {"user": "ben", "friend": False}
    ben = await events_user(chatd, "ben", register=False)
    online = await ann.next(event="SERVER_USER_ONLINE")
    assert online["data"] == {"user": "ben", "status": "online", "friend": False}
    # friends get the friend's presence, marked so
    typed = await typed_user(chatd, "cy")
    other = await typed_user(chatd, "dee")
    await typed_friends(typed, "cy", other, "dee")
    watcher = await events_user(chatd, "cy", register=False)
    await other.close()
    assert (await watcher.next(event="SERVER_USER_OFFLINE"))["data"] == {"user": "dee", "friend": True}
    for client in (ann, ben, watcher):
        await client.close()
    await typed.close()


async def frames_until(client, event: str) -> list[dict]:
    """Every frame up to and including the first `event` (a reply: the connection keeps order)."""
    out = []
    while not out or out[-1]["event"] != event:
        out.append(await client.next())
    return out


@pytest_twisted.ensureDeferred
async def test_presence_is_the_people_one_shares_a_conversation_with_a_snapshot_at_login_then_changes(chatd):
    ann = await events_user(chatd, "ann")
    ben = await events_user(chatd, "ben", over="line")
    cat = await events_user(chatd, "cat")  # shares no conversation with ann
    dan = await typed_user(chatd, "dan")  # typed: presence of friends only (seed 002)
    for c in (ann, ben):
        c.send_json(ev("CLIENT_CHAT_JOIN", cid="general"))
        await c.next(event="SERVER_CHAT_JOINED")
    dan.send("USER_JOIN", room="general")
    await dan.payload("USER_JOIN")
    await ann.close()
    # seed 003's diagram: the socket connects (the key at the handshake) and the presence comes at once
    again = await ws_connect(chatd, f"?token={ann.token}&dialect=events")
    first = await frames_until(again, "SERVER_AUTH_OK")
    assert [f["event"] for f in first] == ["SERVER_AUTH_OK"]
    again.send(ev("CLIENT_CONVERSATIONS"))
    snapshot = await frames_until(again, "SERVER_CONVERSATIONS")
    assert [(f["event"], f["data"]) for f in snapshot[:-1]] == [
        ("SERVER_USER_ONLINE", {"user": "ben", "status": "online", "friend": False}),
        ("SERVER_USER_ONLINE", {"user": "dan", "status": "online", "friend": False}),
    ]  # not cat: no conversation with ann
    # a login by frame gets it too
    by_frame = await events_user(chatd, "ann", register=False, over="line")
    by_frame.send_json(ev("CLIENT_CONVERSATIONS"))
    listed = await frames_until(by_frame, "SERVER_CONVERSATIONS")
    assert [f["data"]["user"] for f in listed if f["event"] == "SERVER_USER_ONLINE"] == ["ben", "dan"]
    await by_frame.close()
    # then each change as it happens
    await ben.close()
    assert (await again.next(event="SERVER_USER_OFFLINE"))["data"] == {"user": "ben", "friend": False}
    ben = await events_user(chatd, "ben", register=False)
    online = (await again.next(event="SERVER_USER_ONLINE"))["data"]
    assert online == {"user": "ben", "status": "online", "friend": False}
    # the typed user in the same room is not ben's friend: no USER_LOGOUT / USER_STATUS_UPDATE for him
    dan.send("PING", n=1)
    seen = []
    while not seen or seen[-1] != "PONG":
        seen.append((await dan.frame())["type"])
    assert "USER_LOGOUT" not in seen and "USER_STATUS_UPDATE" not in seen
    for c in (again, ben, cat):
        await c.close()
    await dan.close()
