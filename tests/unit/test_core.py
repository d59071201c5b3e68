"""The core, driven by commands from fake clients, over the real SQLite store (no sockets)."""

import pytest
import pytest_twisted
from argon2 import PasswordHasher
from twisted.internet import defer, reactor
from twisted.internet.defer import succeed
from zope.interface import implementer
from zope.interface.verify import verifyObject

from chatdaemon import errors
from chatdaemon.bus.local import LocalBus
from chatdaemon.config import Files, Limits
from chatdaemon.core import commands as c
from chatdaemon.core.accounts import Passwords
from chatdaemon.core.chat import Core
from chatdaemon.core.events import (
    Invited,
    LeaderChanged,
    MemberJoined,
    MemberLeft,
    MessagePosted,
    PresenceChanged,
    TopicChanged,
)
from chatdaemon.core.interfaces import IClient
from chatdaemon.core.model import Address, Text
from chatdaemon.errors import ChatError
from chatdaemon.store.files import FileStore
from chatdaemon.store.sqlite import SQLiteStore
from tests.conftest import FAST_PASSWORDS, MANY_ACCOUNTS


@implementer(IClient)
class FakeClient:
    """What the core needs of a session, recording what it is given."""

    operator = False
    peer = "test"

    def __init__(self):
        self.user = self.key_hash = None
        self.open = True
        self.events = []
        self.held = None
        self.released = defer.Deferred()

    def deliver(self, event, memo=None):
        if self.held is not None and not getattr(event, "offline", False):
            self.held.append(event)
        else:
            self.events.append(event)

    def hold(self):
        self.held = []

    def release(self):
        self.events.extend(self.held or [])
        self.held = None
        if not self.released.called:
            self.released.callback(None)

    def writable(self):
        return succeed(None)

    def delivered_upto(self, fanout):
        return fanout

    def notify_close(self, event):
        self.events.append(event)
        self.open = False

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


def Say(text: str, to: str = "", to_user: str = "", to_room: str = "", sender: str = "") -> c.Send:
    """A text to an address, as the dialects build it."""
    where = Address.user(to_user) if to_user else Address.room(to_room) if to_room else Address(to)
    return c.Send(where, Text(text), sender=sender)


async def make_core(path, files: Files | None = None, **limits) -> Core:
    files = files or Files()
    store = SQLiteStore(str(path), reactor)
    await store.open()
    file_store = FileStore(str(path))
    file_store.open()
    pw = FAST_PASSWORDS
    passwords = Passwords(pw.time_cost, pw.memory_cost, pw.parallelism)
    core = Core(store, file_store, LocalBus(), passwords, Limits(**limits), files, reactor, MANY_ACCOUNTS)
    await core.start()
    return core


@pytest_twisted.async_yield_fixture
async def core(tmp_path):
    core = await make_core(tmp_path)
    yield core
    await core.store.close()


async def user(core, name, register=True) -> FakeClient:
    client = FakeClient()
    if register:
        await core.execute(client, c.Register(name, "pw"))
    await core.execute(client, c.Login(name, "pw"))
    if core.bus.clients(name) == (client,):
        await client.released  # the first connection gets the offline replay
    return client


async def befriend(core, a: FakeClient, b: FakeClient) -> None:
    await core.execute(a, c.RequestFriend(b.user))
    await core.execute(b, c.AnswerFriend(a.user, True))


async def refused(d) -> int:
    with pytest.raises(ChatError) as info:
        await d
    return info.value.code


def test_the_fake_client_keeps_the_clients_contract():
    assert verifyObject(IClient, FakeClient())


@pytest_twisted.ensureDeferred
async def test_register_and_login_rules(core):
    anon = FakeClient()
    assert await core.execute(anon, c.Register("alice", "pw")) == "alice"
    assert await refused(core.execute(anon, c.Register("alice", "other"))) == errors.USER_EXISTS
    assert await refused(core.execute(anon, c.Register("no spaces", "pw"))) == errors.BAD_NAME
    assert await refused(core.execute(anon, c.Register("x" * 33, "pw"))) == errors.BAD_NAME
    assert await refused(core.execute(anon, c.Register("bob", ""))) == errors.BAD_NAME
    assert await refused(core.execute(anon, c.Login("alice", "wrong"))) == errors.INVALID_CREDENTIALS
    assert await refused(core.execute(anon, c.Login("carol", "pw"))) == errors.USER_NOT_FOUND
    assert await refused(core.execute(anon, Say("hi", to="alice"))) == errors.NOT_LOGGED_IN
    result = await core.execute(anon, c.Login("alice", "pw"))
    assert result.user == "alice" and anon.user == "alice"
    assert await refused(core.execute(anon, c.Login("alice", "pw"))) == errors.ALREADY_LOGGED_IN
    # the password is stored hashed, never as given
    stored = await core.store.password_hash("alice")
    assert stored.startswith("$argon2id$") and stored != "pw" and PasswordHasher().verify(stored, "pw")


@pytest_twisted.ensureDeferred
async def test_session_keys_log_in_and_die_with_logout(core):
    first = await user(core, "alice")
    key = (await core.execute(FakeClient(), c.Login("alice", "pw"))).session_key
    other = FakeClient()
    assert (await core.execute(other, c.Login(session_key=key))).user == "alice"
    await core.execute(other, c.Logout())
    assert other.user is None
    assert await refused(core.execute(FakeClient(), c.Login(session_key=key))) == errors.INVALID_CREDENTIALS
    assert await refused(core.execute(FakeClient(), c.Login(session_key="forged"))) == errors.INVALID_CREDENTIALS
    assert first.user == "alice"  # other connections stay logged in


@pytest_twisted.ensureDeferred
async def test_several_connections_per_user_all_receive(core):
    alice1, bob = await user(core, "alice"), await user(core, "bob")
    alice2 = FakeClient()
    await core.execute(alice2, c.Login("alice", "pw"))
    sent = await core.execute(bob, Say("to both", to_user="alice"))
    for client in (alice1, alice2):
        [posted] = client.of(MessagePosted)
        assert posted.message == sent.message and posted.receiver == "alice"
    assert sent.room.kind == "direct" and sent.room.members == {"alice", "bob"}
    assert sent.delivered == ("alice",)


@pytest_twisted.ensureDeferred
async def test_messages_get_monotonic_ids_and_are_stored_before_the_ack(core):
    alice, bob = await user(core, "alice"), await user(core, "bob")
    results = await defer.gatherResults([core.execute(alice, Say(f"m{n}", to="bob")) for n in range(50)])
    ids = [sent.message.id for sent in results]
    assert ids == sorted(ids) and len(set(ids)) == 50
    room = results[0].room
    history = await core.store.messages(room.id, 0, None, None, 100)
    assert [m.body for m in history] == [Text(f"m{n}") for n in range(50)]
    assert [e.message.body for e in bob.of(MessagePosted)] == [Text(f"m{n}") for n in range(50)]
    assert core.store.writer.commits < 50  # they shared commits


@pytest_twisted.ensureDeferred
async def test_message_rules(core):
    alice, bob = await user(core, "alice"), await user(core, "bob")
    assert await refused(core.execute(alice, Say("  ", to="bob"))) == errors.BAD_CONTENT
    assert await refused(core.execute(alice, Say("x" * 4097, to="bob"))) == errors.BAD_CONTENT
    assert await refused(core.execute(alice, Say("hi", to="alice"))) == errors.SELF_MESSAGE
    assert await refused(core.execute(alice, Say("hi", to="nobody"))) == errors.NO_SUCH_USER
    assert await refused(core.execute(alice, Say("hi", to_room="nowhere"))) == errors.NO_SUCH_ROOM
    assert await refused(core.execute(alice, Say("hi", to="bob", sender="bob"))) == errors.BAD_FIELD
    await core.execute(bob, c.JoinRoom("club"))
    assert await refused(core.execute(alice, Say("hi", to="club"))) == errors.NOT_A_MEMBER
    assert await refused(core.execute(alice, c.History(Address.room("club")))) == errors.NOT_A_MEMBER
    assert not bob.of(MessagePosted)


@pytest_twisted.ensureDeferred
async def test_rooms_public_join_leave_and_names(core):
    alice, bob = await user(core, "alice"), await user(core, "bob")
    room = await core.execute(alice, c.JoinRoom("lobby"))
    assert (room.kind, room.members) == ("public", {"alice"})
    await core.execute(bob, c.JoinRoom("lobby"))
    assert [e.user for e in alice.of(MemberJoined)] == ["bob"]
    assert not bob.of(MemberJoined)  # the joiner gets the reply, not the event
    assert await refused(core.execute(alice, c.JoinRoom("bad room"))) == errors.BAD_NAME
    assert await refused(core.execute(alice, c.JoinRoom("bob"))) == errors.NAME_TAKEN  # one namespace
    assert await refused(core.execute(FakeClient(), c.Register("lobby", "pw"))) == errors.USER_EXISTS
    _, members = await core.execute(bob, c.Members("lobby"))
    assert [(m.user, m.online) for m in members] == [("alice", True), ("bob", True)]
    await core.execute(bob, c.LeaveRoom("lobby"))
    assert [e.user for e in alice.of(MemberLeft)] == ["bob"]
    assert await refused(core.execute(bob, c.LeaveRoom("lobby"))) == errors.NOT_A_MEMBER
    rooms = await core.execute(bob, c.ListRooms())
    assert [(r.room.id, r.members, r.online, r.joined) for r in rooms] == [
        ("lobby", 1, 1, False)
    ]  # public: listed to all


@pytest_twisted.ensureDeferred
async def test_groups_are_by_invitation_and_only_the_leader_invites(core):
    lead, guest, outsider = await user(core, "lead"), await user(core, "guest"), await user(core, "outsider")
    assert (
        await refused(core.execute(lead, c.CreateRoom("Plans!", private=True, invitees=("guest",))))
        == errors.NOT_ALL_FRIENDS
    )
    await befriend(core, lead, guest)
    room = await core.execute(lead, c.CreateRoom("Plans!", private=True, invitees=("guest",)))
    assert (room.id, room.kind, room.leader, room.members, room.invited) == (
        "plans",
        "group",
        "lead",
        {"lead"},
        {"guest": "lead"},
    )
    [invite] = guest.of(Invited)
    assert (invite.inviter, invite.room.id) == ("lead", "plans")
    assert await refused(core.execute(outsider, c.JoinRoom("plans"))) == errors.PRIVATE_ROOM
    assert await refused(core.execute(outsider, c.AnswerInvite("plans", True))) == errors.NOT_INVITED
    assert await refused(core.execute(guest, c.Invite("plans", "outsider"))) == errors.NOT_LEADER
    assert await refused(core.execute(lead, c.Invite("plans", "ghost"))) == errors.NO_SUCH_USER
    await core.execute(guest, c.AnswerInvite("plans", True))
    assert room.members == {"lead", "guest"} and not room.invited
    assert await refused(core.execute(lead, c.Invite("plans", "guest"))) == errors.ALREADY_MEMBER
    second = await core.execute(lead, c.CreateRoom("plans", private=True))
    assert second.id == "plans-2"  # names are unique ids
    assert await refused(core.execute(lead, c.Invite("plans-2", "outsider"))) == errors.NOT_FRIENDS
    await befriend(core, lead, outsider)
    await core.execute(lead, c.Invite("plans-2", "outsider"))
    await core.execute(outsider, c.AnswerInvite("plans-2", False))
    assert "outsider" not in core.state.rooms["plans-2"].invited.keys() | core.state.rooms["plans-2"].members
    # the leader leaves: leadership passes to a member, who is told
    await core.execute(lead, c.LeaveRoom("plans"))
    assert room.leader == "guest"
    assert [(e.leader, e.by) for e in guest.of(LeaderChanged)] == [("guest", "lead")]
    # the last member leaves: the group is gone
    await core.execute(guest, c.LeaveRoom("plans"))
    assert "plans" not in core.state.rooms


@pytest_twisted.ensureDeferred
async def test_presence_goes_to_friends_and_separately_to_room_mates(core):
    alice, bob, stranger = await user(core, "alice"), await user(core, "bob"), await user(core, "stranger")
    await befriend(core, alice, bob)
    for client in (alice, stranger):
        await core.execute(client, c.JoinRoom("lobby"))  # room presence, not a friend's
    await core.execute(alice, c.SetStatus("away"))
    assert [(e.user, e.status, e.friend) for e in bob.of(PresenceChanged)] == [("alice", "away", True)]
    assert [(e.user, e.status, e.friend) for e in stranger.of(PresenceChanged)] == [("alice", "away", False)]
    assert await refused(core.execute(alice, c.SetStatus("x" * 65))) == errors.BAD_FIELD
    core.disconnect(alice)
    assert [(e.user, e.online) for e in bob.of(PresenceChanged)][-1] == ("alice", False)
    assert core.state.users["alice"] == "away"  # the custom status outlives the connection


@pytest_twisted.ensureDeferred
async def test_offline_delivery_replays_missed_messages_once_and_in_order(core):
    alice, bob = await user(core, "alice"), await user(core, "bob")
    await core.execute(alice, c.JoinRoom("lobby"))
    await core.execute(bob, c.JoinRoom("lobby"))
    core.disconnect(bob)
    await core.store.writer.drain()
    sent = [await core.execute(alice, Say(f"room {n}", to="lobby")) for n in range(3)]
    sent.append(await core.execute(alice, Say("direct", to="bob")))
    back = await user(core, "bob", register=False)
    replayed = back.of(MessagePosted)
    assert [e.message.id for e in replayed] == [s.message.id for s in sent]
    assert all(e.offline for e in replayed)
    core.disconnect(back)
    await core.store.writer.drain()
    again = await user(core, "bob", register=False)
    assert not again.of(MessagePosted)


@pytest_twisted.ensureDeferred
async def test_live_messages_wait_behind_the_replay(core):
    alice, bob = await user(core, "alice"), await user(core, "bob")
    await core.execute(alice, Say("old", to="bob"))
    core.disconnect(bob)
    await core.store.writer.drain()
    await core.execute(alice, Say("missed", to="bob"))
    back = FakeClient()
    await core.execute(back, c.Login("bob", "pw"))
    await core.execute(alice, Say("live", to="bob"))  # arrives while the replay runs
    await back.released
    assert [(e.message.body.text, e.offline) for e in back.of(MessagePosted)] == [("missed", True), ("live", False)]


@pytest_twisted.ensureDeferred
async def test_a_room_joined_later_does_not_replay_its_older_messages(core):
    alice, bob = await user(core, "alice"), await user(core, "bob")
    core.disconnect(bob)
    await core.execute(alice, c.JoinRoom("lobby"))
    await core.execute(alice, Say("before bob joined", to="lobby"))
    back = await user(core, "bob", register=False)
    await core.execute(back, c.JoinRoom("lobby"))
    core.disconnect(back)
    await core.execute(alice, Say("after bob joined", to="lobby"))
    await core.store.writer.drain()
    again = await user(core, "bob", register=False)
    assert [e.message.body.text for e in again.of(MessagePosted)] == ["after bob joined"]


@pytest_twisted.ensureDeferred
async def test_history_pages_backwards(core):
    alice = await user(core, "alice")
    await core.execute(alice, c.JoinRoom("lobby"))
    ids = [(await core.execute(alice, Say(f"m{n}", to="lobby"))).message.id for n in range(10)]
    lobby = Address.room("lobby")
    last3 = await core.execute(alice, c.History(lobby, limit=3))
    assert [m.id for m in last3.messages] == ids[-3:] and last3.more
    before = await core.execute(alice, c.History(lobby, before=ids[-3], limit=3))
    assert [m.id for m in before.messages] == ids[-6:-3]
    capped = await core.execute(alice, c.History(lobby, limit=10**9))
    assert len(capped.messages) == 10 and not capped.more
    first = await core.execute(alice, c.History(lobby, after=0, limit=4))
    assert [m.id for m in first.messages] == ids[:4] and first.more and first.next_after == ids[3]
    rest = await core.execute(alice, c.History(lobby, after=first.next_after, limit=100))
    assert [m.id for m in rest.messages] == ids[4:] and not rest.more


@pytest_twisted.ensureDeferred
async def test_state_is_loaded_at_start(tmp_path):
    core = await make_core(tmp_path)
    lead = await user(core, "lead")
    await befriend(core, lead, await user(core, "guest"))
    await core.execute(lead, c.CreateRoom("crew", private=True, invitees=("guest",)))
    await core.execute(lead, c.JoinRoom("lobby"))
    await core.execute(lead, c.SetStatus("busy"))
    await core.execute(lead, Say("hi", to="guest"))
    await core.store.close()
    again = await make_core(tmp_path)
    try:
        state = again.state
        crew = state.rooms["crew"]
        assert (crew.leader, crew.members, crew.invited) == ("lead", {"lead"}, {"guest": "lead"})
        assert state.friends == {"lead": {"guest"}, "guest": {"lead"}} and state.invited_to == {"guest": {"crew"}}
        assert state.rooms["lobby"].members == {"lead"}
        assert state.rooms["dm:guest:lead"].kind == "direct"
        assert state.users == {"lead": "busy", "guest": "online"}
        assert state.rooms_of["lead"] == {"crew", "lobby", "dm:guest:lead"}
        assert state.fanout_upto == 1
    finally:
        await again.store.close()


@pytest_twisted.ensureDeferred
async def test_saved_cursors_bound_what_a_crash_replays(tmp_path):
    core = await make_core(tmp_path)
    alice, _bob = await user(core, "alice"), await user(core, "bob")
    await core.execute(alice, Say("seen before the save", to="bob"))
    await core.delivery.save_cursors()
    await core.execute(alice, Say("after the save", to="bob"))
    await core.store.writer.drain()
    await core.store.close()  # a crash: bob never disconnected, so no cursor was written at logout
    again = await make_core(tmp_path)
    try:
        back = await user(again, "bob", register=False)
        assert [e.message.body.text for e in back.of(MessagePosted)] == ["after the save"]
    finally:
        await again.store.close()


@pytest_twisted.ensureDeferred
async def test_topics_are_set_by_members_or_the_leader_told_to_the_room_and_kept(tmp_path):
    core = await make_core(tmp_path)
    alice, bob, carol = await user(core, "alice"), await user(core, "bob"), await user(core, "carol")
    await core.execute(alice, c.JoinRoom("lobby"))
    await core.execute(bob, c.JoinRoom("lobby"))
    room = await core.execute(bob, c.SetTopic("lobby", "  tea at five "))
    assert (room.topic, room.topic_by, room.topic_at > 0) == ("tea at five", "bob", True)
    assert [e.by for e in alice.of(TopicChanged)] == ["bob"] and not bob.of(TopicChanged)
    assert await refused(core.execute(carol, c.SetTopic("lobby", "mine"))) == errors.NOT_A_MEMBER
    assert await refused(core.execute(bob, c.SetTopic("lobby", "x" * 391))) == errors.BAD_FIELD
    assert await refused(core.execute(bob, c.SetTopic("lobby", "two\nlines"))) == errors.BAD_FIELD
    await befriend(core, alice, bob)
    await core.execute(alice, c.CreateRoom("crew", private=True, invitees=("bob",)))
    await core.execute(bob, c.AnswerInvite("crew", True))
    assert await refused(core.execute(bob, c.SetTopic("crew", "not the leader"))) == errors.NOT_LEADER
    await core.execute(alice, c.SetTopic("crew", "plans"))
    await core.execute(alice, Say("hi", to_user="bob"))
    assert await refused(core.execute(alice, c.SetTopic("dm:alice:bob", "us"))) == errors.PRIVATE_ROOM
    await core.store.close()
    again = await make_core(tmp_path)
    try:
        lobby, crew = again.state.rooms["lobby"], again.state.rooms["crew"]
        assert (lobby.topic, lobby.topic_by, crew.topic, crew.topic_by) == ("tea at five", "bob", "plans", "alice")
    finally:
        await again.store.close()
