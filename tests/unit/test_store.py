"""The store, on both engines (SQLite, and PostgreSQL in a database of the test's own): group commit, conflicts,
reads, ids in order; and SQLite's schema versions."""

import sqlite3

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from chatdaemon.core.model import Deleted, Encrypted, Media, Message, Room, Text
from chatdaemon.store import Conflict, migrate
from chatdaemon.store.sqlite import DB_FILE, WRITER_CHECKPOINT_PAGES, SQLiteStore
from tests.services import new_database


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    """A function making a store of that engine (each call: the same database)."""
    if request.param == "sqlite":
        yield lambda: SQLiteStore(str(tmp_path), reactor)
        return
    from chatdaemon.store.postgres import PostgresStore

    with new_database() as url:
        yield lambda: PostgresStore(url, reactor, pool_size=2)


@pytest_twisted.async_yield_fixture
async def store(engine):
    store = engine()
    await store.open()
    yield store
    await store.close()


async def append(store, room: str, sender: str, body, ts: int = 0) -> Message:
    message, _ = await store.append_message(Message(0, room, sender, body, ts))
    return message


def test_a_new_database_gets_the_latest_schema_and_wal(tmp_path):
    conn = sqlite3.connect(tmp_path / DB_FILE, isolation_level=None)
    assert migrate.upgrade(conn, str(tmp_path / DB_FILE)) == 0
    assert migrate.current_version(conn) == migrate.LATEST
    assert migrate.upgrade(conn, str(tmp_path / DB_FILE)) == migrate.LATEST  # idempotent
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "rooms", "members", "messages", "inbox", "session_keys", "invites"} <= tables


def test_an_older_database_is_backed_up_then_upgraded(tmp_path, monkeypatch):
    path = str(tmp_path / DB_FILE)
    conn = sqlite3.connect(path, isolation_level=None)
    migrate.upgrade(conn, path)
    conn.execute("INSERT INTO users (name, password, created) VALUES ('keep', 'h', 0)")
    shipped = migrate.migrations()
    monkeypatch.setattr(migrate, "migrations", lambda: {**shipped, 99: "CREATE TABLE extra (x INTEGER);"})
    monkeypatch.setattr(migrate, "LATEST", 99)
    assert migrate.upgrade(conn, path) == migrate.current_version(sqlite3.connect(path + f".v{max(shipped)}.bak"))
    assert migrate.current_version(conn) == 99
    assert conn.execute("SELECT name FROM users").fetchall() == [("keep",)]


def test_a_failed_migration_changes_nothing(tmp_path, monkeypatch):
    path = str(tmp_path / DB_FILE)
    conn = sqlite3.connect(path, isolation_level=None)
    migrate.upgrade(conn, path)
    shipped = migrate.migrations()
    monkeypatch.setattr(
        migrate, "migrations", lambda: {**shipped, 99: "CREATE TABLE half (x); SELECT nonsense FROM nowhere;"}
    )
    monkeypatch.setattr(migrate, "LATEST", 99)
    with pytest.raises(sqlite3.OperationalError):
        migrate.upgrade(conn, path)
    assert migrate.current_version(conn) == max(shipped)
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'half'").fetchall()


def test_a_database_newer_than_the_code_is_refused(tmp_path):
    path = str(tmp_path / DB_FILE)
    conn = sqlite3.connect(path, isolation_level=None)
    migrate.upgrade(conn, path)
    conn.execute("UPDATE schema_version SET version = 1000")
    with pytest.raises(RuntimeError, match="newer than this chatd"):
        migrate.upgrade(conn, path)


@pytest_twisted.ensureDeferred
async def test_group_commit_shares_transactions_and_keeps_order(store):
    await store.create_user("a", "h", 0)
    await store.create_room(Room("r", "public", "r", None), 0)
    before = store.writer.commits
    fired = []
    await defer.gatherResults(
        [
            store.append_message(Message(0, "r", "a", Text(f"m{n}"), n)).addCallback(
                lambda stored, n=n: fired.append((n, stored[0].id, stored[1]))
            )
            for n in range(500)
        ]
    )
    assert [n for n, _, _ in fired] == list(range(500))  # in the order submitted
    ids = [mid for _, mid, _ in fired]
    assert ids == sorted(ids) and len(set(ids)) == 500
    assert [prev for _, _, prev in fired][1:] == ids[:-1]  # each one's prev is the one before
    assert store.writer.commits - before <= 3
    assert [m.body.text for m in await store.messages("r", 0, None, None, 1000)] == [f"m{n}" for n in range(500)]


@pytest_twisted.ensureDeferred
async def test_one_failing_write_does_not_sink_its_batch(store):
    results = await defer.DeferredList(
        [store.create_user("a", "h", 0), store.create_user("a", "h2", 0), store.create_user("b", "h", 0)],
        consumeErrors=True,
    )
    assert [ok for ok, _ in results] == [True, False, True]
    assert results[1][1].check(Conflict)
    assert await store.password_hash("a") == "h"
    assert await store.password_hash("b") == "h"


@pytest_twisted.ensureDeferred
async def test_ids_continue_after_reopening(engine):
    store = engine()
    await store.open()
    await store.create_user("a", "h", 0)
    await store.create_room(Room("r", "public", "r", None), 0)
    for _ in range(3):
        last = await append(store, "r", "a", Text("x"))
    await store.close()
    store = engine()
    await store.open()
    try:
        assert (await store.load()).last_message_id == last.id
        again, prev = await store.append_message(Message(0, "r", "a", Text("y"), 0))
        assert again.id > last.id and prev == last.id
        assert [m.id for m in await store.messages_after(0, 10)][-2:] == [last.id, again.id]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_missed_skips_own_messages_and_earlier_ones(store):
    for name in ("a", "b"):
        await store.create_user(name, "h", 0)
    await store.create_room(Room("r", "public", "r", None), 0)
    await store.add_member("r", "a", 0)
    await append(store, "r", "a", Text("before b"))
    await store.add_member("r", "b", 1)
    for sender in ("a", "b", "a"):
        await append(store, "r", sender, Text(f"from {sender}"))
    missed = await store.timeline("b", 0, 100, 10, missed_only=True)
    assert [(m.id, m.body) for m in missed] == [(2, Text("from a")), (4, Text("from a"))]
    assert [m.id for m in await store.timeline("b", 2, 100, 10, missed_only=True)] == [4]
    assert [m.id for m in await store.timeline("b", 0, 3, 10, missed_only=True)] == [2]
    await store.set_cursor("b", 4)
    await store.set_cursor("b", 2)  # a cursor never moves back
    assert await store.cursor("b") == 4


@pytest_twisted.ensureDeferred
async def test_inbox_holds_notices_until_dropped(store):
    await store.create_user("a", "h", 0)
    await store.push_inbox("a", "invite", {"room": "r", "inviter": "b"}, 5)
    [(nid, kind, payload, ts)] = await store.inbox("a")
    assert (kind, payload, ts) == ("invite", {"room": "r", "inviter": "b"}, 5)
    await store.drop_inbox("a", nid)
    assert await store.inbox("a") == []


@pytest_twisted.ensureDeferred
async def test_every_kind_of_body_comes_back_typed(store):
    await store.create_user("a", "h", 0)
    await store.create_room(Room("r", "public", "r", None), 0)
    bodies = [
        Text("plain"),
        Encrypted({"ciphertext": "AAAA", "algorithm": "x25519"}),
        Media("f" * 32, "cat.png", "image/png", 42, "image"),
        Media("e" * 32, "notes.txt", "text/plain", 7),
    ]
    for body in bodies:
        await append(store, "r", "a", body)
    assert [m.body for m in await store.messages("r", 0, None, None, 10)] == bodies
    await store.delete_message(2, "a", 1)
    assert (await store.message(2)).body == Deleted()
    await store.edit_message(1, "edited", 2)
    assert (await store.message(1)).body == Text("edited")


@pytest_twisted.ensureDeferred
async def test_pages_newest_before_or_oldest_after(store):
    await store.create_user("a", "h", 0)
    await store.create_room(Room("r", "public", "r", None), 0)
    for n in range(1, 11):
        await append(store, "r", "a", Text(f"m{n}"), n * 1000)

    async def ids(before, after, since, limit):
        return [m.id for m in await store.messages("r", before, after, since, limit)]

    assert await ids(0, None, None, 3) == [8, 9, 10]
    assert await ids(8, None, None, 3) == [5, 6, 7]
    assert await ids(0, 0, None, 3) == [1, 2, 3]  # after=0: from the first
    assert await ids(0, 7, None, 10) == [8, 9, 10]
    assert await ids(0, None, 5000, 2) == [5, 6]
    assert await ids(9, 6, None, 10) == [7, 8]


@pytest_twisted.ensureDeferred
async def test_rows_of_one_statement_share_a_statement_but_a_bad_row_fails_alone(tmp_path):
    """SQLite's messages go to the group commit as rows of one INSERT: one executemany per run of them."""
    from chatdaemon.store.sqlite import INSERT_MESSAGE

    store = SQLiteStore(str(tmp_path), reactor)
    await store.open()
    try:
        await store.create_user("a", "h", 0)
        await store.create_room(Room("r", "public", "r", None), 0)
        before = store.writer.commits
        rows = [(1, "r", "a", "text", "m1", 0), (1, "r", "a", "text", "again", 0), (2, "r", "a", "text", "m2", 0)]
        results = await defer.DeferredList(
            [store.writer.submit_row(INSERT_MESSAGE, r) for r in rows], consumeErrors=True
        )
        assert [ok for ok, _ in results] == [True, False, True]
        assert results[1][1].check(sqlite3.IntegrityError)
        assert store.writer.commits - before == 1  # one transaction for the three
        assert [m.body for m in await store.messages("r", 0, None, None, 10)] == [Text("m1"), Text("m2")]
    finally:
        await store.close()
    store = SQLiteStore(str(tmp_path), reactor)  # ids go on after the highest stored
    await store.open()
    try:
        stored, previous = await store.append_message(Message(0, "r", "a", Text("m3"), 0))
        assert (stored.id, previous, stored.body) == (3, 2, Text("m3"))
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_known_client_id_is_refused_storing_nothing_and_replaced_on_request(store):
    """Exactly-once sends (schema v8, sent_ids): the (sender, client id) row goes in the message's own write."""
    await store.create_user("alice", "h", 0)
    await store.create_room(Room("r", "public", "r", None), 0)
    first, _ = await store.append_message(Message(0, "r", "alice", Text("one"), 1000), "x", 11)
    with pytest.raises(Conflict):
        await store.append_message(Message(0, "r", "alice", Text("two"), 2000), "x", 22)
    assert [m.body for m in await store.messages_after(0, 10)] == [Text("one")]  # nothing of "two" stored
    after, prev = await store.append_message(Message(0, "r", "alice", Text("after"), 2500))
    assert prev == first.id  # the refused one's id (if it took one) is passed over: nothing to wait for
    assert await store.sent_id("alice", "x") == (first.id, 1000, 11)
    bobs, prev = await store.append_message(Message(0, "r", "bob", Text("one"), 1500), "x", 11)  # another sender's
    assert prev == after.id
    third, prev = await store.append_message(Message(0, "r", "alice", Text("three"), 3000), "x", 33, replace=True)
    assert await store.sent_id("alice", "x") == (third.id, 3000, 33)
    assert (await store.message(third.id)).body == Text("three")
    assert prev == bobs.id
    await store.forget_sent_ids(2000)
    assert await store.sent_id("bob", "x") is None and await store.sent_id("alice", "x") is not None


@pytest_twisted.ensureDeferred
async def test_a_resend_refused_in_a_batch_fails_alone_and_nothing_lies_between_a_message_and_its_prev(store):
    """Messages with and without client ids share one transaction; a known client id fails only its own write,
    and no stored message lies between any message and its `prev` (SQLite's may name the refused id)."""
    await store.create_user("a", "h", 0)
    await store.create_room(Room("r", "public", "r", None), 0)
    kept, _ = await store.append_message(Message(0, "r", "a", Text("kept"), 0), "k", 1)
    before = store.writer.commits
    results = await defer.DeferredList(
        [
            store.append_message(Message(0, "r", "a", Text("m1"), 0)),
            store.append_message(Message(0, "r", "a", Text("with id"), 0), "n", 2),
            store.append_message(Message(0, "r", "a", Text("again"), 0), "k", 1),
            store.append_message(Message(0, "r", "a", Text("m2"), 0)),
            store.append_message(Message(0, "r", "a", Text("m3"), 0)),
        ],
        consumeErrors=True,
    )
    assert [ok for ok, _ in results] == [True, True, False, True, True]
    assert results[2][1].check(Conflict)
    assert store.writer.commits - before == 1  # one transaction for the five
    stored = [results[i][1] for i in (0, 1, 3, 4)]
    assert [m.body for m, _ in stored] == [Text("m1"), Text("with id"), Text("m2"), Text("m3")]
    ids = [m.id for m in await store.messages_after(0, 10)]
    assert ids == [kept.id, *(m.id for m, _ in stored)]  # in id order, nothing of "again"
    for message, prev in stored:
        assert prev < message.id and not [i for i in ids if prev < i < message.id]
    assert (await store.sent_id("a", "n"))[0] == stored[1][0].id


@pytest_twisted.ensureDeferred
async def test_sqlite_checkpoints_beside_the_writer(tmp_path):
    store = SQLiteStore(str(tmp_path), reactor)
    await store.open()
    try:
        await store.create_user("alice", "h", 0)
        await store.create_room(Room("lobby", "public", "lobby", None), 0)
        for n in range(50):
            await append(store, "lobby", "alice", Text(f"m{n}"))
        # the writer leaves checkpoints to the background (its own bound is far above a normal log)
        autocheckpoint = await store._writer_pool.runQuery("PRAGMA wal_autocheckpoint")
        assert autocheckpoint == [(WRITER_CHECKPOINT_PAGES,)]
        busy, log_pages, copied = (await store._checkpoint())[0]
        assert busy == 0 and log_pages > 0 and copied == log_pages  # the whole log is in the database file now
        assert [m.body for m in await store.messages("lobby", None, None, None, 100)][-1] == Text("m49")
    finally:
        await store.close()
    assert not store._checkpoints.running
