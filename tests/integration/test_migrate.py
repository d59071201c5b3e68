"""chatd-migrate: a single node's data dir with every kind of state, copied into PostgreSQL, serves a cluster node.

The data dir is made by a real daemon and real clients: users (one banned), friends, a pending friend
request, blocks, a group with a pending invitation, a public room, messages (text, edited, deleted,
reacted to, with metadata, a file, one sent under a client id), read marks, cursors, notices waiting in an
inbox, feedback.
"""

import base64
import dataclasses
import io
import sqlite3

import pytest_twisted

from chatdaemon.admin import AdminCommands
from chatdaemon.config import Store
from chatdaemon.migrate_cli import TABLES, main
from chatdaemon.store.sqlite import DB_FILE
from tests.conftest import make_config, start_service, typed_friends, typed_user
from tests.integration.test_events import ev, events_user
from tests.services import pg_url  # noqa: F401 (fixture)
from tests.wsclient import Http


async def populate(service) -> bytes:
    amy, ben, cat = [await typed_user(service, n) for n in ("amy", "ben", "cat")]
    dan = await typed_user(service, "dan")
    await typed_friends(amy, "amy", ben, "ben")
    await typed_friends(amy, "amy", dan, "dan")
    cat.send("BLOCK_USER", username="amy")
    await cat.payload("BLOCK_USER")
    for client in (amy, ben, dan):
        client.send("USER_JOIN", room="lobby")
        await client.payload("USER_JOIN")
    amy.send("GROUP_CREATE", sender="amy", members=["ben"], name="crew")
    await amy.payload("GROUP_CREATE_ACK")
    await ben.payload("GROUP_INVITE")
    amy.send("TEXT_MESSAGE", receiver="lobby", content="first")
    first = (await amy.payload("MESSAGE_ACK"))["messageId"]
    amy.send("TEXT_MESSAGE", receiver="lobby", content="second", clientMessageId="c-2")
    second = (await amy.payload("MESSAGE_ACK"))["messageId"]
    amy.send("METADATA_UPDATE", key="pinned", value=True, messageId=first)
    await amy.payload("METADATA_UPDATE")
    amy.send("METADATA_UPDATE", key="avatar", value={"url": "https://example.org/a.png"})
    await amy.payload("METADATA_UPDATE")
    ben.send("READ_RECEIPT", messageId=second)
    await amy.payload("READ_RECEIPT")
    data = b"migrated bytes " * 2500  # one chunk, within a line
    amy.send("MEDIA_MESSAGE", sender="amy", receiver="lobby", mediaId="f1", mediaType="text/plain", mediaSize=len(data))
    await amy.payload("MEDIA_MESSAGE_ACK")
    amy.send("MEDIA_MESSAGE_DATA", sender="amy", receiver="lobby", mediaId="f1", chunkIndex=1, totalChunks=1,
             data=base64.b64encode(data).decode())  # fmt: skip
    await amy.payload("MEDIA_MESSAGE_COMPLETE")
    eli = await events_user(service, "eli", over="line")  # edits, deletions and reactions: seed 003's
    eli.send_json(ev("CLIENT_CHAT_JOIN", cid="lobby"))
    await eli.next(event="SERVER_CHAT_JOINED")
    for text in ("to edit", "to delete"):
        eli.send_json(ev("CLIENT_CHAT_SEND", cid="lobby", text=text))
        await eli.next(event="SERVER_CHAT_RECEIVE")
    eli.send_json(ev("CLIENT_CHAT_EDIT", id=second + 2, text="edited"))
    eli.send_json(ev("CLIENT_CHAT_DELETE", id=second + 3))
    eli.send_json(ev("CLIENT_CHAT_REACTION_ADD", id=first, emoji="+1"))
    await eli.next(event="SERVER_CHAT_REACTION_ADD")
    await eli.close()
    amy.send("FEEDBACK", content="works", rating=5)
    await amy.payload("FEEDBACK")
    await dan.close()  # its cursor is saved; what follows waits for its next login
    amy.send("TEXT_MESSAGE", receiver="lobby", content="while dan is away")
    await amy.payload("MESSAGE_ACK")
    amy.send("FRIEND_REMOVE", sender="amy", receiver="dan")  # a notice in dan's inbox
    await amy.payload("FRIEND_REMOVE_ACK")
    ben.send("FRIEND_REQUEST", sender="ben", receiver="dan")  # pending, and in dan's inbox
    await ben.payload("FRIEND_REQUEST_ACK")
    admin = AdminCommands(service, "op")
    await admin.run("ban cat")
    for client in (amy, ben):
        await client.close()
    await cat.closed
    return data


def rows(conn, table: str) -> list[tuple]:
    cursor = conn.cursor() if hasattr(conn, "cursor") else conn
    cursor.execute(f"SELECT * FROM {table} ORDER BY 1, 2")
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in cursor.fetchall()]


@pytest_twisted.ensureDeferred
async def test_a_populated_data_dir_moves_to_postgresql_whole(tmp_path, pg_url):  # noqa: F811
    import psycopg

    source = tmp_path / "single"
    service = await start_service(make_config(source))
    data = await populate(service)
    await service.stopService()

    out = io.StringIO()
    from chatdaemon import migrate_cli

    migrate_cli.copy(str(source), pg_url, out)
    assert "verified" in out.getvalue()
    lite = sqlite3.connect(source / DB_FILE)
    with psycopg.connect(pg_url) as pg:
        for table in TABLES:
            theirs = rows(lite.cursor(), table)
            assert theirs, f"the data dir has no {table}: populate() should make some"
            assert rows(pg, table) == theirs, table
        [(stored,)] = pg.execute("SELECT string_agg(data, '' ORDER BY seq) FROM file_chunks").fetchall()
        assert bytes(stored) == data
    # a second run refuses to touch a database that holds data
    assert main(["--from", f"sqlite:{source}", "--to", pg_url]) == 1

    # a node on the copy: logins, history, the offline replay, the file, and new ids after the old ones
    config = dataclasses.replace(make_config(tmp_path / "node"), store=Store(url=pg_url))
    node = await start_service(config)
    try:
        assert "cat" in node.core.state.banned and node.core.state.friends["amy"] == {"ben"}
        dan = await typed_user(node, "dan", register=False)
        assert (await dan.payload("FRIEND_REMOVE"))["sender"] == "amy"  # the inbox first, then messages
        assert (await dan.payload("FRIEND_REQUEST"))["sender"] == "ben"
        assert (await dan.payload("OFFLINE_MESSAGE"))["content"] == "while dan is away"
        code, login = await Http(node).json("POST", "/login", json={"username": "dan", "password": "secret"})
        assert code == 200
        file_id = lite.execute("SELECT id FROM files").fetchone()[0]
        response, raw = await Http(node).call("GET", f"/files/{file_id}", token=login["token"])
        assert response.code == 200 and raw == data
        dan.send("TEXT_MESSAGE", receiver="lobby", content="after the move")
        last = lite.execute("SELECT max(id) FROM messages").fetchone()[0]
        assert (await dan.payload("MESSAGE_ACK"))["messageId"] > last
        await dan.close()
        amy = await typed_user(node, "amy", register=False)  # a resend from before the move: still the original
        amy.send("TEXT_MESSAGE", receiver="lobby", content="second", clientMessageId="c-2")
        second = lite.execute("SELECT id FROM messages WHERE body = 'second'").fetchone()[0]
        assert (await amy.payload("MESSAGE_ACK"))["messageId"] == second
        await amy.close()
    finally:
        await node.stopService()
