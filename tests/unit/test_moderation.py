"""The operators' commands in the core, over the real SQLite store (no sockets)."""

import pytest_twisted
from zope.interface.verify import verifyObject

from chatdaemon import errors
from chatdaemon.admin import Operator
from chatdaemon.core import commands as c
from chatdaemon.core.events import Notice, RoomRemoved
from chatdaemon.core.interfaces import IPrincipal
from tests.unit.test_core import FakeClient, Say, befriend, make_core, refused, user


async def kickable(core, name) -> FakeClient:
    client = FakeClient()
    await core.execute(client, c.Register(name, "pw"))
    await core.execute(client, c.Login(name, "pw"))
    await client.released
    return client


@pytest_twisted.async_yield_fixture
async def core(tmp_path):
    core = await make_core(tmp_path)
    yield core
    await core.store.close()


@pytest_twisted.ensureDeferred
async def test_only_operators_may_moderate(core):
    assert verifyObject(IPrincipal, Operator("root"))
    alice = await user(core, "alice")
    for command in (c.Kick("alice"), c.Ban("alice"), c.Broadcast("hi"), c.DeleteUser("alice"), c.ReadFeedback()):
        assert await refused(core.execute(alice, command)) == errors.OPERATORS_ONLY
    assert await refused(core.execute(FakeClient(), c.Kick("alice"))) == errors.NOT_LOGGED_IN


@pytest_twisted.ensureDeferred
async def test_a_ban_outlives_a_restart_and_covers_session_keys(core, tmp_path):
    admin = Operator("root")
    alice = await kickable(core, "alice")
    second = FakeClient()
    key = (await core.execute(second, c.Login("alice", "pw"))).session_key
    assert await core.execute(admin, c.Ban("alice", "spam")) == 2
    assert alice.events[-1] == second.events[-1] == Notice(errors.BANNED, "spam")
    assert await refused(core.execute(FakeClient(), c.Login("alice", "pw"))) == errors.BANNED
    assert await refused(core.execute(FakeClient(), c.Login(session_key=key))) == errors.INVALID_CREDENTIALS
    rest_like = FakeClient()
    rest_like.open = False  # a REST login attaches no connection: it is refused all the same
    assert await refused(core.execute(rest_like, c.Login("alice", "pw"))) == errors.BANNED
    keys = await core.store._read("SELECT count(*) FROM session_keys WHERE user = 'alice'")
    assert keys[0][0] == 0  # a refused login leaves no key behind
    await core.store.close()
    core = await make_core(tmp_path)  # the same database, a new process
    assert await refused(core.execute(FakeClient(), c.Login("alice", "pw"))) == errors.BANNED
    await core.execute(admin, c.Unban("alice"))
    assert (await core.execute(FakeClient(), c.Login("alice", "pw"))).user == "alice"
    await core.store.close()


@pytest_twisted.ensureDeferred
async def test_deleting_a_user_passes_on_their_groups_and_drops_their_direct_conversations(core, tmp_path):
    admin = Operator("root")
    alice, bob = await kickable(core, "alice"), await user(core, "bob")
    await befriend(core, alice, bob)
    await core.execute(bob, c.Block("alice"))
    group = await core.execute(alice, c.CreateRoom("Team", private=True, invitees=("bob",)))
    await core.execute(bob, c.Unblock("alice"))
    await core.execute(alice, c.Invite(group.id, "bob"))
    await core.execute(bob, c.AnswerInvite(group.id, True))
    await core.execute(alice, Say("psst", to_user="bob"))
    assert await core.execute(admin, c.DeleteUser("alice")) == "alice"
    assert alice.events[-1].code == errors.KICKED and not alice.open
    assert "alice" not in core.state.users and "dm:alice:bob" not in core.state.rooms
    assert core.state.rooms[group.id].leader == "bob" and core.state.rooms[group.id].members == {"bob"}
    assert (
        core.state.friends.get("bob") == set()
        and "alice" not in core.state.friends
        and not core.state.blocked_by.get("alice")
    )
    assert await refused(core.execute(FakeClient(), c.Login("alice", "pw"))) == errors.USER_NOT_FOUND
    await core.store.close()
    core = await make_core(tmp_path)
    assert "alice" not in core.state.users and core.state.rooms[group.id].leader == "bob"
    assert "dm:alice:bob" not in core.state.rooms
    await core.execute(FakeClient(), c.Register("alice", "new"))  # the name is free again
    await core.store.close()


@pytest_twisted.ensureDeferred
async def test_feedback_is_kept_for_the_operators(core):
    alice = await user(core, "alice")
    assert await refused(core.execute(alice, c.Feedback("  "))) == errors.BAD_CONTENT
    await core.execute(alice, c.Feedback("more emoji please", 4))
    await core.execute(alice, c.Feedback("and a dark theme"))
    first, second = await core.execute(Operator("root"), c.ReadFeedback())
    assert (first.user, first.text, first.rating) == ("alice", "more emoji please", 4)
    assert (second.text, second.rating) == ("and a dark theme", None)


@pytest_twisted.ensureDeferred
async def test_one_delete_for_leaders_and_operators(core):
    lead, other = await user(core, "lead"), await user(core, "other")
    room = await core.execute(lead, c.CreateRoom("hall"))
    await core.execute(other, c.JoinRoom("hall"))
    assert await refused(core.execute(other, c.DeleteRoom("hall"))) == errors.NOT_LEADER
    await core.execute(other, c.JoinRoom("plain"))  # made by joining: nobody leads it
    assert await refused(core.execute(other, c.DeleteRoom("plain"))) == errors.NOT_LEADER
    assert await core.execute(Operator("root"), c.DeleteRoom("plain"))
    assert [(e.room.id, e.operator) for e in other.of(RoomRemoved)] == [("plain", True)]
    assert await core.execute(lead, c.DeleteRoom("hall")) is room
    assert [(e.room.id, e.by, e.operator) for e in other.of(RoomRemoved)][-1] == ("hall", "lead", False)
    assert "hall" not in core.state.rooms and "plain" not in core.state.rooms
