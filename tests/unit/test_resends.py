"""Client message ids in the core, on both engines: the resend window in time and in memory, and no database read
on the way of a new message (core/messages.py; the store's side is in test_store.py)."""

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
from chatdaemon.core.model import Address, Encrypted, Media, Text
from chatdaemon.store.files import FileStore
from chatdaemon.store.sqlite import SQLiteStore
from tests.conftest import FAST_PASSWORDS, MANY_ACCOUNTS
from tests.services import new_database
from tests.unit.test_core import FakeClient


def counting(engine: type) -> type:
    """The engine's real store, counting the client-id lookups the core makes."""

    class Counting(engine):  # type: ignore[valid-type, misc]
        lookups = 0

        def sent_id(self, sender, client_id):
            self.lookups += 1
            return super().sent_id(sender, client_id)

    return Counting


@pytest.fixture(params=["sqlite", "postgresql"])
def stores(request, tmp_path):
    """A function making (a counting store, its file store) of that engine."""
    if request.param == "sqlite":
        yield lambda: (counting(SQLiteStore)(str(tmp_path), reactor), FileStore(str(tmp_path)))
        return
    from chatdaemon.store.postgres import PostgresStore

    with new_database() as url:

        def make():
            store = counting(PostgresStore)(url, reactor, pool_size=2)
            return store, store.file_store(str(tmp_path / "uploads"))

        yield make


async def clocked_core(stores, clock: Clock, **limits) -> Core:
    store, file_store = stores()
    await store.open()
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
async def test_a_new_message_never_reads_the_database_and_a_resend_in_memory_neither(stores):
    clock = Clock()
    clock.advance(1_000_000)
    core = await clocked_core(stores, clock)
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
async def test_the_window_in_time_and_in_memory(stores):
    clock = Clock()
    clock.advance(1_000_000)
    core = await clocked_core(stores, clock, resend_window=60.0, resend_cache=10)
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
async def test_a_resend_to_another_core_on_the_same_database_is_answered_from_the_store(stores):
    """A restart, or on PostgreSQL another node: its memory knows nothing, the store's refusal finds the original."""
    clock = Clock()
    clock.advance(1_000_000)
    first = await clocked_core(stores, clock)
    try:
        sent = await first.execute(await logged_in(first, "alice"), send("hello", "a"))
    finally:
        await first.store.close()
    second = await clocked_core(stores, clock)
    try:
        alice = FakeClient()
        await second.execute(alice, c.Login("alice", "pw"))
        again = await second.execute(alice, send("hello", "a"))
        assert (again.message.id, again.message.ts) == (sent.message.id, sent.message.ts)
        assert not again.recipients and second.store.lookups == 1
        assert [m.body for m in await second.store.messages_after(0, 10)] == [Text("hello")]  # stored once
    finally:
        await second.store.close()


def test_the_digest_tells_rooms_and_bodies_apart_and_is_stable():
    assert digest("lobby", Text("hi")) == digest("lobby", Text("hi"))
    assert digest("lobby", Text("hi")) != digest("other", Text("hi"))
    assert digest("lobby", Text("hi")) != digest("lobby", Text("hi!"))
    assert digest("r", Encrypted({"b": 1, "a": 2})) == digest("r", Encrypted({"a": 2, "b": 1}))
    assert digest("r", Media("f1", media="image")) != digest("r", Media("f2", media="image"))
    assert digest("lobby", Text("hi")) == 7597157860719235018  # the same in every process: it is stored
    assert client_key("x" * MAX_CLIENT_ID_CHARS) == "x" * MAX_CLIENT_ID_CHARS
    assert client_key("x" * 10_000).startswith("sha256:") and len(client_key("x" * 10_000)) == 71
