"""What several nodes rely on, without sockets: the seams' implementations, changes of the live state, the fan-out's
watermark over ids committed out of order, the event codec."""

from twisted.internet.defer import succeed
from twisted.internet.testing import MemoryReactorClock
from zope.interface.verify import verifyClass, verifyObject

from chatdaemon.bus import IBus, IBusListener, codec
from chatdaemon.bus.local import LocalBus
from chatdaemon.bus.redis import RedisBus
from chatdaemon.core.chat import Core
from chatdaemon.core.events import MemberJoined, MessagePosted, TopicChanged, Typing
from chatdaemon.core.fanout import Fanout
from chatdaemon.core.model import Media, Message, Room, Text
from chatdaemon.core.state import ChatState
from chatdaemon.store import IFileStore, IStore
from chatdaemon.store.files import FileStore
from chatdaemon.store.postgres import PostgresFileStore, PostgresStore
from chatdaemon.store.sqlite import SQLiteStore


def test_every_engine_implements_its_seam():
    assert verifyClass(IStore, SQLiteStore) and verifyClass(IStore, PostgresStore)
    assert verifyClass(IFileStore, FileStore) and verifyClass(IFileStore, PostgresFileStore)
    assert verifyObject(IBus, LocalBus("n"))
    assert verifyObject(IBus, RedisBus("redis://127.0.0.1:1/0", "p", "n", MemoryReactorClock()))
    assert verifyClass(IBusListener, Core)


def test_a_change_applied_twice_or_on_another_node_gives_the_same_state():
    here, there = ChatState(), ChatState()
    shared = []
    here.observe = shared.append
    for name in ("a", "b"):
        here.add_user(name)
    room = here.add_room("r", "public", "r", None)
    here.set_member(room, "a", True)
    here.set_member(room, "b", True)
    here.set_friends("a", "b", True)
    here.set_block("b", "a", True)
    here.add_usage("a", 100)
    here.set_topic(room, "plans", "a", 42)
    for change in shared + shared:  # twice: nothing changes the second time
        there.apply(change)
    assert there.rooms["r"].members == {"a", "b"} and there.rooms_of["a"] == {"r"}
    assert there.friends == here.friends and there.blocked_by == {"a": {"b"}} and there.file_usage == {"a": 100}
    assert (there.rooms["r"].topic, there.rooms["r"].topic_by, there.rooms["r"].topic_at) == ("plans", "a", 42)
    here.remove_user("a")
    there.apply(shared[-1])
    assert "a" not in there.users and there.rooms["r"].members == {"b"} and "a" not in there.friends


class FakeStore:
    """Committed messages by id; `visible` are those a read can see."""

    def __init__(self):
        self.visible: dict[int, Message] = {}

    def messages_after(self, after, limit):
        return succeed([self.visible[i] for i in sorted(self.visible) if i > after][:limit])


class RecordingBus(LocalBus):
    def __init__(self):
        super().__init__("n")
        self.handed: list[int] = []
        self.woke: list[int] = []

    def deliver(self, event, users, exclude=None):
        self.handed.append(event.message.id)

    def wake(self, room_id, message_id):
        self.woke.append(message_id)


def test_the_watermark_never_passes_an_id_committed_late_by_another_node():
    def message(mid):
        return Message(mid, "r", "a", Text(str(mid)), 0)

    store2, bus2, state2 = FakeStore(), RecordingBus(), ChatState()
    state2.add_user("a")
    state2.set_member(state2.add_room("r", "public", "r", None), "a", True)
    state2.fanout_upto = 9
    fanout2 = Fanout(state2, store2, bus2, MemoryReactorClock())
    fanout2.start()
    # id 10 was committed by another node (its wake-up not here yet), then this node committed 11, whose prev is
    # 10: above the watermark, so what lies between is read first (ids commit in order: 10 is visible)
    store2.visible[10] = message(10)
    store2.visible[11] = message(11)
    fanout2.committed(message(11), 10)
    assert bus2.handed == [10, 11] and state2.fanout_upto == 11  # in id order, the late one not skipped
    fanout2.committed(message(12), 11)  # prev is the watermark: handed on at once, without a read
    assert bus2.handed == [10, 11, 12] and bus2.woke == [11, 12]
    store2.visible[13] = message(13)
    fanout2.woken()  # another node's wake-up
    assert bus2.handed == [10, 11, 12, 13] and state2.fanout_upto == 13
    fanout2.woken()
    assert bus2.handed == [10, 11, 12, 13]  # nothing twice


def test_events_cross_nodes_whole():
    room = Room("r", "group", "crew", "a", {"a", "b"}, {"c": "a"}, "plans", "a", 42)
    for event in (
        TopicChanged(room, "a"),
        MessagePosted(Message(5, "r", "a", Media("f" * 32, "x.png", "image/png", 3, "image"), 7), room),
        Typing("a", room, True),
        MemberJoined(room, "b"),
    ):
        assert codec.decode(codec.encode(event)) == event
