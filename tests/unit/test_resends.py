"""Client message ids in the core and the store: the resend window in time and in memory, and no database read
on the way of a new message (core/messages.py, store sent_ids)."""

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock

from chatdaemon.bus.local import LocalBus
from chatdaemon.config import Files, Limits
from chatdaemon.core import commands as c
from chatdaemon.core.accounts import Passwords
from chatdaemon.core.chat import Core
from chatdaemon.core.messages import MAX_CLIENT_ID_CHARS, client_key, digest
from chatdaemon.core.model import Address, Encrypted, Media, Message, Room, Text
from chatdaemon.store import Conflict
from chatdaemon.store.files import FileStore
from chatdaemon.store.sqlite import SQLiteStore
from tests.conftest import FAST_PASSWORDS, MANY_ACCOUNTS
from tests.unit.test_core import FakeClient


class CountingStore(SQLiteStore):
    """The real store, counting the client-id lookups the core makes."""

    lookups = 0

    def sent_id(self, sender, client_id):
        self.lookups += 1
        return super().sent_id(sender, client_id)


async def clocked_core(path, clock: Clock, **limits) -> Core:
    store = CountingStore(str(path), reactor)
    await store.open()
    file_store = FileStore(str(path))
    file_store.open()
    pw = FAST_PASSWORDS
    core = Core(store, file_store, LocalBus(), Passwords(pw.time_cost, pw.memory_cost, pw.parallelism),
                Limits(**limits), Files(), clock, MANY_ACCOUNTS)  # fmt: skip
    await core.start()
    return core


async def logged_in(core: Core, name: str) -> FakeClient:
    client = FakeClient()
    await core.execute(client, c.Register(name, "pw"))
    await core.execute(client, c.Login(name, "pw"))
    await core.execute(client, c.JoinRoom("lobby"))
    return client


def send(text: str, client_id: str) -> c.Send:
    return c.Send(Address.room("lobby"), Text(text), client_id=client_id)


@pytest_twisted.ensureDeferred
async def test_a_new_message_never_reads_the_database_and_a_resend_in_memory_neither(tmp_path):
    clock = Clock()
    clock.advance(1_000_000)
    core = await clocked_core(tmp_path, clock)
    try:
        alice = await logged_in(core, "alice")
        sent = [await core.execute(alice, send(f"m{n}", f"id-{n}")) for n in range(100)]
        again = await core.execute(alice, send("m42", "id-42"))
        assert again.message.id == sent[42].message.id and again.message.ts == sent[42].message.ts
        assert not again.recipients  # told to nobody again
        assert core.store.lookups == 0
    finally:
        await core.store.close()


@pytest_twisted.ensureDeferred
async def test_the_window_in_time_and_in_memory(tmp_path):
    clock = Clock()
    clock.advance(1_000_000)
    core = await clocked_core(tmp_path, clock, resend_window=60.0, resend_cache=10)
    try:
        alice = await logged_in(core, "alice")
        first = await core.execute(alice, send("hello", "a"))
        for n in range(20):  # pushes "a" out of the memory window
            await core.execute(alice, send(f"filler {n}", f"f{n}"))
        assert len(core.messages.sent_ids) == 10
        assert (await core.execute(alice, send("hello", "a"))).message.id == first.message.id
        assert core.store.lookups == 1  # found by the store's refusal, then read once
        clock.advance(59)
        assert (await core.execute(alice, send("hello", "a"))).message.id == first.message.id
        clock.advance(2)  # past the window: the same id and text is a new message
        later = await core.execute(alice, send("hello", "a"))
        assert later.message.id > first.message.id
        assert (await core.execute(alice, send("hello", "a"))).message.id == later.message.id
        clock.advance(61)
        await core.messages.forget_sent_ids()  # the periodic job: memory and database
        assert not core.messages.sent_ids and await core.store.sent_id("alice", "a") is None
    finally:
        await core.store.close()


@pytest_twisted.ensureDeferred
async def test_the_store_refuses_a_known_client_id_storing_nothing_and_replaces_on_request(tmp_path):
    store = SQLiteStore(str(tmp_path), reactor)
    await store.open()
    try:
        await store.create_room(Room("r", "public", "r", None), 0)
        first = Message(store.next_message_id(), "r", "alice", Text("one"), 1000)
        await store.append_message(first, "x", 11)
        second = Message(store.next_message_id(), "r", "alice", Text("two"), 2000)
        with pytest.raises(Conflict):
            await store.append_message(second, "x", 22)
        assert await store.message(second.id) is None
        assert await store.sent_id("alice", "x") == (first.id, 1000, 11)
        await store.append_message(Message(store.next_message_id(), "r", "bob", Text("one"), 1500), "x", 11)
        third = Message(store.next_message_id(), "r", "alice", Text("three"), 3000)
        await store.append_message(third, "x", 33, replace=True)
        assert await store.sent_id("alice", "x") == (third.id, 3000, 33)
        assert (await store.message(third.id)).body == Text("three")
        await store.forget_sent_ids(2000)
        assert await store.sent_id("bob", "x") is None and await store.sent_id("alice", "x") is not None
    finally:
        await store.close()


def test_the_digest_tells_rooms_and_bodies_apart_and_is_stable():
    assert digest("lobby", Text("hi")) == digest("lobby", Text("hi"))
    assert digest("lobby", Text("hi")) != digest("other", Text("hi"))
    assert digest("lobby", Text("hi")) != digest("lobby", Text("hi!"))
    assert digest("r", Encrypted({"b": 1, "a": 2})) == digest("r", Encrypted({"a": 2, "b": 1}))
    assert digest("r", Media("f1", media="image")) != digest("r", Media("f2", media="image"))
    assert digest("lobby", Text("hi")) == 7597157860719235018  # the same in every process: it is stored
    assert client_key("x" * MAX_CLIENT_ID_CHARS) == "x" * MAX_CLIENT_ID_CHARS
    assert client_key("x" * 10_000).startswith("sha256:") and len(client_key("x" * 10_000)) == 71
