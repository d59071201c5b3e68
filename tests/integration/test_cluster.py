"""Several nodes on one PostgreSQL and one Redis, in this process: to every client they are one chatd.

Each test has a database and a Redis key prefix of its own (tests/services.py). The nodes are
ChatServices on loopback ports, each with its own store pool and Redis links, as separate
processes would have.
"""

import base64
import dataclasses
import socket

import pytest_twisted

from chatdaemon.config import Bus, Node, Store
from tests.conftest import (
    _sleep,
    act,
    action_frame,
    connect,
    make_config,
    start_service,
    text_friends,
    text_user,
    typed_friends,
    typed_user,
)
from tests.integration.test_colon import co, colon_user
from tests.integration.test_events import ev, events_user
from tests.integration.test_operations import http_get
from tests.integration.test_socketio_chat import NodeChat, node_client
from tests.ircclient import irc_user
from tests.services import pg_url, redis_bus  # noqa: F401 (fixtures)
from tests.wsclient import Http, registered_key


def node_config(tmp_path, name: str, pg: str, redis: tuple[str, str], **limits):
    config = make_config(tmp_path / name, **limits)
    url, prefix = redis
    return dataclasses.replace(
        config,
        store=Store(url=pg, pool_size=4),
        bus=Bus(url=url, prefix=prefix, heartbeat=0.2, expiry=1.0),
        node=Node(id=name),
    )


async def eventually(check, timeout: float = 5.0):
    """Wait until `check()` is true (state that travels between nodes through Redis)."""
    waited = 0.0
    while not check():
        assert waited < timeout, "never happened"
        await _sleep(0.02)
        waited += 0.02


@pytest_twisted.async_yield_fixture
async def cluster(tmp_path, pg_url, redis_bus):  # noqa: F811
    nodes = []
    for name in ("n1", "n2", "n3"):  # each also listens for IRC, as every listener is on every node
        config = node_config(tmp_path, name, pg_url, redis_bus)
        nodes.append(await start_service(dataclasses.replace(config, irc=("tcp:0:interface=127.0.0.1",))))
    await eventually(lambda: all(len(n.bus._remote) == 2 for n in nodes))
    yield nodes
    for node in nodes:
        await node.stopService()


async def until_pong(client) -> list[dict]:
    """Every typed frame that arrives before the answer to a PING: a connection keeps order, so this is all
    that was sent to it before the PING was handled."""
    client.send("PING")
    frames = []
    while True:
        frame = await client.frame()
        if frame["type"] == "PONG":
            return frames
        frames.append(frame)


@pytest_twisted.ensureDeferred
async def test_users_on_three_nodes_chat_in_one_room_in_every_dialect(cluster):
    n1, n2, n3 = cluster
    ann = await typed_user(n1, "ann")
    bob = await text_user(n2, "bob")
    cid = await connect(n3)
    act(cid, "register", chatid="cid", password="secret")
    await action_frame(cid, "register_success")
    act(cid, "login", chatid="cid", password="secret")
    await action_frame(cid, "login_success")
    # the accounts made on n1 and n3 exist on n2 at once (a change crosses through Redis)
    ann.send("USER_JOIN", room="lobby")
    await ann.payload("USER_JOIN")
    await eventually(lambda: "lobby" in n2.core.state.rooms and "ann" in n2.core.state.rooms["lobby"].members)
    bob.say("/join lobby")
    await bob.text("* you are in #lobby")
    act(cid, "join_room", room_id="lobby")
    await action_frame(cid, "join_room")
    await eventually(lambda: all(n.core.state.rooms["lobby"].members == {"ann", "bob", "cid"} for n in cluster))
    ann.send("TEXT_MESSAGE", receiver="lobby", content="hello from n1")
    ack = await ann.payload("MESSAGE_ACK")
    assert (await bob.text("[#lobby]")).endswith("<ann> hello from n1")
    got = await action_frame(cid, "receive_message")
    assert got["data"]["content"] == "hello from n1" and got["data"]["sender_chatid"] == "ann"
    bob.say("and from n2")
    assert (await ann.payload("TEXT_MESSAGE"))["content"] == "and from n2"
    assert (await action_frame(cid, "receive_message"))["data"]["content"] == "and from n2"
    # one id sequence: ids grow across nodes, and history is the same on every node
    bob.say("/history lobby")
    assert (await bob.text("[")).endswith("<ann> hello from n1")
    assert ack["messageId"] > 0
    for client in (ann, bob, cid):
        await client.close()


async def until_ack(app: NodeChat, name: str, data) -> tuple[list[dict], object]:
    """Emit `name` with an acknowledgement: the events that arrived before the ack (one transport keeps
    order, so this is everything sent to the app before the server handled it), and the ack's value."""
    app._acks += 1
    app.command(emit=name, data=data, ack=app._acks)
    events = []
    while True:
        line = await app.next()
        if line.get("ack") == app._acks:
            return events, line["value"]
        if "event" in line:
            events.append(line)


@pytest_twisted.ensureDeferred
async def test_colon_irc_and_socketio_users_on_three_nodes_chat_in_one_room_with_the_same_ids(cluster):
    n1, n2, n3 = cluster
    cole = await colon_user(n1, "cole")  # colon over the WebSocket on n1
    await registered_key(n2, "iris", "secret")
    iris = await irc_user(n2, "iris", caps="echo-message message-tags")  # IRC on n2
    app = await node_client(n3, auth={"token": await registered_key(n3, "sio")})  # socket.io-client on n3
    await app.event("SERVER_AUTH_OK")
    iris.send("JOIN #plaza")
    assert await iris.expect("JOIN") == ":iris!iris@chatd JOIN #plaza"
    await eventually(lambda: all("plaza" in n.core.state.rooms for n in cluster))
    cole.send(co("GROUP:JOIN_GROUP", {"groupId": "plaza"}))
    await cole.next(type="GROUP:USER_JOINED", data={"groupId": "plaza", "username": "cole"})
    assert await iris.expect("JOIN") == ":cole!cole@chatd JOIN #plaza"
    joined = await app.ask("CLIENT_CHAT_JOIN", {"cid": "plaza"})
    assert joined[0]["event"] == "SERVER_CHAT_JOINED"
    assert await iris.expect("JOIN") == ":sio!sio@chatd JOIN #plaza"
    await eventually(lambda: all(n.core.state.rooms["plaza"].members == {"iris", "cole", "sio"} for n in cluster))

    def privmsg(line: str) -> tuple[int, str, str]:  # @msgid=ID :nick!nick@chatd PRIVMSG #plaza :text
        tags, source, command, target, text = line.split(" ", 4)
        assert (tags.startswith("@msgid="), command, target) == (True, "PRIVMSG", "#plaza"), line
        return int(tags.removeprefix("@msgid=")), source.split("!")[0][1:], text[1:]

    async def colon_got() -> tuple[int, str, str]:
        m = (await cole.next(type="CHAT:MESSAGE_RETURN_TEXT"))["data"]
        return m["id"], m["sender"], m["text"]

    async def app_got() -> tuple[int, str, str]:
        m = (await app.event("SERVER_CHAT_RECEIVE"))["message"]
        return m["id"], m["sender"], m["text"]

    # colon on n1: its own copy (the stored message) and the other two nodes' show the same id
    cole.send(co("CHAT:SEND_MESSAGE_TEXT", {"groupId": "plaza", "text": "colon from n1"}))
    first = await colon_got()
    assert first[1:] == ("cole", "colon from n1") and first[0] > 0
    assert privmsg(await iris.expect("PRIVMSG")) == first
    assert await app_got() == first
    # IRC on n2: echo-message brings it back once stored, with its id
    iris.send("PRIVMSG #plaza :irc from n2")
    second = privmsg(await iris.expect("PRIVMSG"))
    assert second[1:] == ("iris", "irc from n2") and second[0] > first[0]
    assert await colon_got() == second
    assert await app_got() == second
    # Socket.IO on n3
    reply = await app.ask("CLIENT_CHAT_SEND", {"cid": "plaza", "text": "socket.io from n3", "tempId": "t1"})
    [mine] = [r["data"]["message"] for r in reply if r["event"] == "SERVER_CHAT_RECEIVE"]
    third = (mine["id"], mine["sender"], mine["text"])
    assert third[1:] == ("sio", "socket.io from n3") and third[0] > second[0]
    assert await colon_got() == third
    assert privmsg(await iris.expect("PRIVMSG")) == third

    # each message reached each connection once: nothing more before the barriers
    assert not [line for line in await iris.sync() if "PRIVMSG" in line]
    assert not [raw for raw in await cole.sync() if b"MESSAGE_RETURN" in raw]
    events, history = await until_ack(app, "CLIENT_CHAT_HISTORY", {"cid": "plaza"})
    assert not [e for e in events if e["event"] == "SERVER_CHAT_RECEIVE"]
    sent = [first, second, third]
    assert [(m["id"], m["sender"], m["text"]) for m in history[0]["data"]["messages"]] == sent
    # and REST on the node none of the first two senders is on reads the same three, once each
    http = Http(n3)
    try:
        _, login = await http.json("POST", "/login", json={"username": "cole", "password": "secret"})
        code, page = await http.json("GET", "/messages?cid=plaza", token=login["token"])
        assert code == 200
        assert [(m["id"], m["sender"], m["text"]) for m in page["messages"]] == sent
    finally:
        await http.close()
    await app.close()
    await iris.quit()
    await cole.close()


@pytest_twisted.ensureDeferred
async def test_direct_messages_friends_groups_invitations_and_blocks_across_nodes(cluster):
    n1, n2, _ = cluster
    amy = await typed_user(n1, "amy")
    ben = await typed_user(n2, "ben")
    await typed_friends(amy, "amy", ben, "ben")
    await eventually(lambda: n2.core.state.friends.get("ben") == {"amy"})
    amy.send("TEXT_MESSAGE", receiver="ben", content="psst")
    await amy.payload("MESSAGE_ACK")
    assert (await ben.payload("TEXT_MESSAGE"))["content"] == "psst"
    amy.send("GROUP_CREATE", sender="amy", members=["ben"], name="pals")
    assert (await amy.payload("GROUP_CREATE_ACK"))["code"] == 0
    invite = await ben.payload("GROUP_INVITE")
    ben.send("GROUP_INVITE_RESPONSE", sender="amy", receiver="ben", group=invite["group"], code=0)
    await amy.payload("GROUP_INVITE_RESPONSE")
    await eventually(
        lambda: any(r.members == {"amy", "ben"} for r in n1.core.state.rooms.values() if r.kind == "group")
    )
    ben.send("BLOCK_USER", username="amy")
    await ben.payload("BLOCK_USER")
    await eventually(lambda: n1.core.state.blocks("ben", "amy"))
    amy.send("TEXT_MESSAGE", receiver="ben", content="blocked now")
    await amy.payload("MESSAGE_ACK")
    assert not [f for f in await until_pong(ben) if f["payload"].get("content") == "blocked now"]
    await amy.close()
    await ben.close()


async def status(client, wanted: str) -> dict:
    """The next SERVER_CHAT_MESSAGE_STATUS with status `wanted` (the others, e.g. one's own "read", skipped)."""
    while True:
        frame = await client.next(event="SERVER_CHAT_MESSAGE_STATUS")
        if frame["data"]["status"] == wanted:
            return frame


@pytest_twisted.ensureDeferred
async def test_typing_receipts_edits_reactions_and_deletions_cross_nodes(cluster):
    n1, n2, _ = cluster
    a = await events_user(n1, "ann")  # WebSocket on n1
    b = await events_user(n2, "ben", over="line")  # a line on n2
    a.send_json(ev("CLIENT_CHAT_JOIN", cid="general"))
    await a.next(event="SERVER_CHAT_JOINED")
    await eventually(lambda: "general" in n2.core.state.rooms)
    b.send_json(ev("CLIENT_CHAT_JOIN", cid="general"))
    await b.next(event="SERVER_CHAT_JOINED")
    assert (await a.next(event="SERVER_CHAT_MEMBER_JOINED"))["data"] == {"cid": "general", "user": "ben"}
    a.send_json(ev("CLIENT_CHAT_SEND", cid="general", text="hello ben", tempId="t1"))
    mid = (await a.next(event="SERVER_CHAT_RECEIVE"))["data"]["message"]["id"]
    assert (await b.next(event="SERVER_CHAT_RECEIVE"))["data"]["message"]["id"] == mid
    b.send_json(ev("CLIENT_CHAT_TYPING", cid="general"))
    assert (await a.next(event="SERVER_CHAT_TYPING"))["data"] == {"cid": "general", "user": "ben"}
    b.send_json(ev("CLIENT_CHAT_STOP_TYPING", cid="general"))
    assert (await a.next(event="SERVER_CHAT_STOP_TYPING"))["data"] == {"cid": "general", "user": "ben"}
    b.send_json(ev("CLIENT_CHAT_READ", id=mid))
    read = await status(a, "read")
    assert read["data"] == {"id": mid, "cid": "general", "status": "read", "user": "ben"}
    b.send_json(ev("CLIENT_CHAT_REACTION_ADD", id=mid, emoji="👍"))
    added = await a.next(event="SERVER_CHAT_REACTION_ADD")
    assert added["data"] == {"id": mid, "cid": "general", "user": "ben", "emoji": "👍"}
    a.send_json(ev("CLIENT_CHAT_EDIT", id=mid, text="hello ben (edited)"))
    edited = await status(b, "edited")
    assert edited["data"]["message"]["text"] == "hello ben (edited)"
    a.send_json(ev("CLIENT_CHAT_DELETE", id=mid))
    assert (await status(b, "deleted"))["data"]["id"] == mid
    # the history any node reads is the same
    b.send_json(ev("CLIENT_CHAT_HISTORY", cid="general"))
    [m] = (await b.next(event="SERVER_CHAT_HISTORY"))["data"]["messages"]
    assert m["deleted"] is True and m["reactions"] == {}
    await a.close()
    await b.close()


@pytest_twisted.ensureDeferred
async def test_offline_messages_reach_a_user_at_the_next_login_on_another_node(cluster):
    n1, n2, n3 = cluster
    lee = await typed_user(n1, "lee")
    mo = await typed_user(n2, "mo")
    await mo.close()
    await eventually(lambda: not n1.bus.online("mo"))
    for n in range(3):
        lee.send("TEXT_MESSAGE", receiver="mo", content=f"while away {n}")
        await lee.payload("MESSAGE_ACK")
    again = await typed_user(n3, "mo", register=False)
    got = [(await again.payload("OFFLINE_MESSAGE"))["content"] for _ in range(3)]
    assert got == ["while away 0", "while away 1", "while away 2"]
    assert not [f for f in await until_pong(again) if "while away" in f["payload"].get("content", "")]
    await lee.close()
    await again.close()


@pytest_twisted.ensureDeferred
async def test_a_user_on_two_nodes_gets_each_message_once_per_connection(cluster):
    n1, n2, n3 = cluster
    kim = await typed_user(n1, "kim")
    kim2 = await typed_user(n2, "kim", register=False)
    joe = await typed_user(n3, "joe")
    joe.send("TEXT_MESSAGE", receiver="kim", content="to both of you")
    await joe.payload("MESSAGE_ACK")
    for client in (kim, kim2):
        assert (await client.payload("TEXT_MESSAGE"))["content"] == "to both of you"
        assert not [f for f in await until_pong(client) if f["payload"].get("content") == "to both of you"]
    for client in (kim, kim2, joe):
        await client.close()


@pytest_twisted.ensureDeferred
async def test_a_message_resent_through_another_node_is_answered_with_the_original_and_kept_once(cluster):
    """Exactly-once sends across nodes: the client id is in PostgreSQL with the message (sent_ids), so a client
    that lost its ack and reconnected through the balancer to another node gets the original id and time."""
    n1, n2, n3 = cluster
    sam = await typed_user(n3, "sam")
    sam.send("USER_JOIN", room="lobby")
    await sam.payload("USER_JOIN")
    amy = await typed_user(n1, "amy")
    amy.send("USER_JOIN", room="lobby")
    await amy.payload("USER_JOIN")
    amy.send("TEXT_MESSAGE", room="lobby", content="just once", clientMessageId="m-1")
    first = await amy.payload("MESSAGE_ACK")
    await amy.close()
    again = await typed_user(n2, "amy", register=False)  # the ack was lost: the client sends it again elsewhere
    again.send("TEXT_MESSAGE", room="lobby", content="just once", clientMessageId="m-1")
    ack = await again.payload("MESSAGE_ACK")
    assert (ack["messageId"], ack["timestamp"], ack["clientMessageId"]) == (
        first["messageId"], first["timestamp"], "m-1",
    )  # fmt: skip
    assert n2.core.messages.resends == 1
    assert (await sam.payload("TEXT_MESSAGE"))["content"] == "just once"
    # stored once (and only what is stored is fanned out); nothing more reached sam before this barrier
    assert [m.body.text for m in await n3.store.messages("lobby", 0, None, None, 10)] == ["just once"]
    assert not [f for f in await until_pong(sam) if f["payload"].get("content") == "just once"]
    for client in (again, sam):
        await client.close()


@pytest_twisted.ensureDeferred
async def test_a_file_uploaded_through_one_node_downloads_through_another(cluster):
    n1, n2, _ = cluster
    up = await typed_user(n1, "up")
    down = await typed_user(n2, "down")
    await typed_friends(up, "up", down, "down")
    data = bytes(range(256)) * 1200  # 300 KiB: more than one chunk in the database
    up.send("MEDIA_MESSAGE", sender="up", receiver="down", mediaId="m1", mediaType="application/octet-stream",
            mediaSize=len(data))  # fmt: skip
    await up.payload("MEDIA_MESSAGE_ACK")
    step = 48000
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    for index, chunk in enumerate(chunks, 1):
        up.send("MEDIA_MESSAGE_DATA", sender="up", receiver="down", mediaId="m1",
                data=base64.b64encode(chunk).decode(), chunkIndex=index, totalChunks=len(chunks))  # fmt: skip
        await up.payload("MEDIA_MESSAGE_DATA_ACK")
    done = await up.payload("MEDIA_MESSAGE_COMPLETE")
    posted = await down.payload("MEDIA_MESSAGE")
    file_id = posted.get("fileId") or posted.get("mediaId")
    assert done["code"] == 0 and file_id
    code, login = await Http(n1).json("POST", "/login", json={"username": "down", "password": "secret"})
    assert code == 200
    response, raw = await Http(n2).call("GET", f"/files/{file_id}", token=login["token"])
    assert response.code == 200 and raw == data
    await up.close()
    await down.close()


@pytest_twisted.ensureDeferred
async def test_kick_ban_broadcast_and_stats_cover_the_cluster(cluster):
    n1, n2, n3 = cluster
    zed = await text_user(n2, "zed")
    zed2 = await connect(n3)
    zed2.say("/login zed secret")
    await zed2.text("* welcome")
    await eventually(lambda: n1.bus.connections("zed") == 2)
    from chatdaemon.admin import AdminCommands

    admin = AdminCommands(n1, "op")
    assert "sent to" in await admin.run("broadcast hello everyone")
    for client in (zed, zed2):
        assert "hello everyone" in await client.text("!")
    await eventually(lambda: all(info for info in n1.bus.nodes().values()) and len(n1.bus.nodes()) == 3)
    stats = await admin.run("stats")
    assert "one of 3" in stats and "n2" in stats and "n3" in stats
    assert await admin.run("kick zed bye") == "kicked zed: 2 connections closed"
    for client in (zed, zed2):
        await client.closed
    await admin.run("ban zed")
    await eventually(lambda: "zed" in n3.core.state.banned)
    again = await connect(n3)
    again.say("/login zed secret")
    assert "7013" in await again.text("!")
    await again.close()


@pytest_twisted.ensureDeferred
async def test_friends_see_a_user_come_online_and_go_offline_on_another_node(cluster):
    n1, n2, n3 = cluster
    fay = await text_user(n1, "fay")
    gus = await text_user(n2, "gus")
    await text_friends(fay, "fay", gus, "gus")
    await gus.close()
    assert await fay.text("* gus is offline")
    again = await connect(n3)
    again.say("/login gus secret")
    await again.text("* welcome")
    assert await fay.text("* gus is online")
    await again.close()
    await fay.close()


@pytest_twisted.ensureDeferred
async def test_metrics_name_the_node_by_its_node_id_and_by_default_by_the_host_name(tmp_path, pg_url, redis_bus):  # noqa: F811
    named = await start_service(node_config(tmp_path, "chat-7", pg_url, redis_bus))
    unnamed = await start_service(dataclasses.replace(node_config(tmp_path, "other", pg_url, redis_bus), node=Node()))
    try:
        for service, name in ((named, "chat-7"), (unnamed, socket.gethostname())):
            code, text = await http_get(service, "/metrics")
            assert code == 200
            assert [line for line in text.splitlines() if line.startswith("chatd_node")] == [
                f'chatd_node{{node="{name}"}} 1.0'
            ]
    finally:
        await named.stopService()
        await unnamed.stopService()
