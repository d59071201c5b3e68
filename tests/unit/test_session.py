"""The session on a fake transport and a fake clock: ordering, coalescing, back-pressure, slow consumers."""

import orjson
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from chatdaemon import errors
from chatdaemon.bus.local import LocalBus
from chatdaemon.config import Limits
from chatdaemon.core import commands as c
from chatdaemon.core.events import MessagePosted, Notice
from chatdaemon.core.interfaces import IClient
from chatdaemon.core.model import Message, Room, Text
from chatdaemon.core.results import LoginResult, Sent
from chatdaemon.dialects.events import EventsDialect
from chatdaemon.dialects.typed import TypedDialect
from chatdaemon.errors import ChatError
from chatdaemon.session import Flusher, ISessionTransport, Session


@implementer(ISessionTransport)
class FakeTransport:
    max_frame_bytes = 65536

    def __init__(self):
        self.writes: list[list[bytes]] = []
        self.closed = self.aborted = False
        self.reading = True

    def write_frames(self, frames):
        self.writes.append(list(frames))

    def close(self, restarting=False):
        self.closed = True
        self.restarting = restarting

    def abort(self):
        self.aborted = True

    def pause_reading(self):
        self.reading = False

    def resume_reading(self):
        self.reading = True

    def frames(self) -> list[dict]:
        return [orjson.loads(f) for batch in self.writes for f in batch]


class ScriptedCore:
    """Answers each command with a Deferred the test fires."""

    fanout_upto = 0

    def __init__(self):
        self.calls: list[tuple[object, Deferred]] = []

    def execute(self, session, command):
        d = Deferred()
        self.calls.append((command, d))
        return d

    def disconnect(self, session):
        self.disconnected = session


def make(**limits):
    clock, core, transport = Clock(), ScriptedCore(), FakeTransport()
    session = Session(core, transport, Flusher(clock), Limits(**limits), clock, "tcp", "test")
    return clock, core, transport, session


def typed(kind, **payload) -> bytes:
    return orjson.dumps({"type": kind, "timestamp": 1, "payload": payload})


def event(n: int, size: int = 10) -> MessagePosted:
    return MessagePosted(Message(n, "lobby", "a", Text("x" * size), 0), Room("lobby", "public", "lobby", None))


def test_the_session_and_its_transport_keep_their_contracts():
    _clock, _core, transport, session = make()
    assert verifyObject(IClient, session) and verifyObject(IPushProducer, session)
    assert verifyObject(ISessionTransport, transport)


def test_output_of_one_turn_leaves_in_one_write():
    clock, _core, transport, session = make()
    session.frame_received(typed("PING", n=1))
    session.frame_received(typed("PING", n=2))
    assert transport.writes == []
    clock.advance(0)
    assert len(transport.writes) == 1
    assert [f["type"] for f in transport.frames()] == ["CONNECTION_ESTABLISHED", "PONG", "PONG"]


def test_a_barrier_command_holds_back_later_frames_and_replies_keep_their_order():
    clock, core, transport, session = make()
    session.frame_received(typed("LOGIN_REQUEST", username="u", passwordHash="p"))
    session.frame_received(typed("PING", n=1))
    assert [type(cmd) for cmd, _ in core.calls] == [c.Login]
    assert not transport.reading  # the frames behind the login wait, and so does the socket
    core.calls[0][1].callback(LoginResult("u", "K"))
    clock.advance(0)
    assert [f["type"] for f in transport.frames()] == ["CONNECTION_ESTABLISHED", "LOGIN_RESPONSE", "PONG"]
    assert transport.reading


def test_pipelined_sends_run_together_but_answer_in_order():
    clock, core, transport, session = make()
    for n in range(3):
        session.frame_received(typed("TEXT_MESSAGE", receiver="b", content=f"m{n}"))
    assert len(core.calls) == 3  # no waiting between sends

    def message(n):
        room = Room("dm:a:b", "direct", "dm:a:b", None, {"a", "b"})
        return Sent(Message(n, "dm:a:b", "a", Text("x"), 0), room, room.members, lambda _: True)

    core.calls[2][1].callback(message(3))
    core.calls[1][1].callback(message(2))
    clock.advance(0)
    assert [f["type"] for f in transport.frames()] == ["CONNECTION_ESTABLISHED"]  # the first is not done yet
    core.calls[0][1].callback(message(1))
    clock.advance(0)
    assert [f["payload"]["messageId"] for f in transport.frames()[1:]] == [1, 2, 3]


def test_a_read_after_sends_waits_until_they_are_done():
    clock, core, transport, session = make()
    session.frame_received(typed("TEXT_MESSAGE", receiver="b", content="m1"))
    session.frame_received(typed("TEXT_MESSAGE", receiver="b", content="m2"))
    session.frame_received(typed("MESSAGE_HISTORY_REQUEST", username="a"))
    session.frame_received(typed("TEXT_MESSAGE", receiver="b", content="m3"))
    assert [type(cmd) for cmd, _ in core.calls] == [c.Send, c.Send]  # the history read waits for both
    assert not transport.reading
    room = Room("dm:a:b", "direct", "dm:a:b", None, {"a", "b"})
    core.calls[1][1].callback(Sent(Message(2, room.id, "a", Text("m2"), 0), room, room.members, lambda _: True))
    assert len(core.calls) == 2
    core.calls[0][1].callback(Sent(Message(1, room.id, "a", Text("m1"), 0), room, room.members, lambda _: True))
    assert [type(cmd) for cmd, _ in core.calls] == [c.Send, c.Send, c.History]
    assert len(core.calls) == 3  # ... and the send after it waits for the read
    core.calls[2][1].errback(ChatError(errors.NO_HISTORY))
    assert [type(cmd) for cmd, _ in core.calls] == [c.Send, c.Send, c.History, c.Send]
    clock.advance(0)
    kinds = [f["type"] for f in transport.frames()]
    assert kinds == ["CONNECTION_ESTABLISHED", "MESSAGE_ACK", "MESSAGE_ACK", "MESSAGE_HISTORY_RESPONSE"]


def test_one_publish_is_encoded_once_per_dialect():
    bus, encoded = LocalBus(), []

    class Counting(TypedDialect):
        name = "counting"

        @staticmethod
        def encode_event(e):
            encoded.append(e)
            return b"bytes"

    sessions = []
    for n in range(50):
        _clock, _core, _transport, session = make()
        session.dialect = Counting() if n % 2 else TypedDialect()
        bus.attach(f"u{n}", session)
        sessions.append(session)
    bus.publish(event(1), [f"u{n}" for n in range(50)])
    assert len(encoded) == 1
    assert all(s.queued_bytes for s in sessions)


def test_the_rate_limit_pauses_reading_instead_of_dropping():
    clock, _core, transport, session = make(rate_per_second=2.0, rate_burst=2)
    for n in range(4):
        session.frame_received(typed("PING", n=n))
    clock.advance(0)
    assert [f["payload"].get("n") for f in transport.frames()[1:]] == [0, 1]
    assert not transport.reading
    clock.advance(1.0)
    assert [f["payload"].get("n") for f in transport.frames()[1:]] == [0, 1, 2, 3]
    assert transport.reading


def test_too_many_bad_frames_in_a_row_close_with_a_reason():
    _clock, _core, transport, session = make(max_bad_frames=3)
    session.frame_received(typed("PING"))  # the dialect is known from here on
    for _ in range(3):
        session.frame_received(b"{bad")
    assert transport.closed and not session.open
    frames = transport.frames()[2:]
    assert [f["payload"]["code"] for f in frames] == [errors.BAD_JSON] * 3 + [errors.TOO_MANY_ERRORS]
    assert [f["type"] for f in frames] == ["ERROR"] * 3 + ["CONNECTION_CLOSED"]


def test_a_good_frame_resets_the_bad_frame_count():
    _clock, _core, _transport, session = make(max_bad_frames=3)
    for _ in range(5):
        session.frame_received(b"{bad")
        session.frame_received(b"{bad")
        session.frame_received(typed("PING"))
    assert session.open


def test_a_burst_that_the_client_drains_is_not_a_slow_consumer():
    clock, _core, transport, session = make(outbound_buffer_bytes=1000, slow_consumer_grace=2.0)
    session.dialect = TypedDialect()
    session.pauseProducing()
    for n in range(12):
        session.deliver(event(n, 100), {})  # ~2.6 KiB: over the limit, under 4x
    clock.advance(1.0)
    session.resumeProducing()  # the client read it all
    clock.advance(5.0)
    assert session.open and not transport.aborted
    assert len(transport.frames()) == 12


def test_a_client_that_stays_behind_is_dropped_after_the_grace_period():
    clock, _core, transport, session = make(outbound_buffer_bytes=1000, slow_consumer_grace=2.0)
    session.dialect = TypedDialect()
    session.pauseProducing()
    for n in range(12):
        session.deliver(event(n, 100), {})
    clock.advance(1.9)
    assert session.open
    clock.advance(0.2)
    assert transport.aborted and not session.open
    assert transport.frames()[-1]["type"] == "CONNECTION_CLOSED"
    assert transport.frames()[-1]["payload"]["code"] == errors.SLOW_CONSUMER


def test_a_runaway_backlog_is_dropped_at_once():
    _clock, _core, transport, session = make(outbound_buffer_bytes=1000)
    session.dialect = TypedDialect()
    session.pauseProducing()
    for n in range(50):
        session.deliver(event(n, 100), {})
    assert transport.aborted and not session.open


def test_live_events_wait_while_the_offline_replay_runs():
    clock, _core, transport, session = make()
    session.dialect = TypedDialect()
    session.hold()
    session.deliver(event(5), {})  # live, arrives first
    session.deliver(MessagePosted(Message(3, "lobby", "a", Text("old"), 0), event(0).room, offline=True), {})
    clock.advance(0)
    assert [f["type"] for f in transport.frames()] == ["OFFLINE_MESSAGE"]
    assert session.delivered_upto(99) == 3  # mid-replay: only the replayed part is surely delivered
    session.release()
    clock.advance(0)
    assert [f["type"] for f in transport.frames()] == ["OFFLINE_MESSAGE", "TEXT_MESSAGE"]
    assert session.delivered_upto(99) == 99


def test_writable_waits_for_the_transport_to_drain():
    _clock, _core, _transport, session = make(outbound_buffer_bytes=1000)
    assert session.writable().called
    session.pauseProducing()
    waiting = session.writable()
    assert not waiting.called
    session.resumeProducing()
    assert waiting.called


def test_connection_lost_tells_the_core():
    clock, core, transport, session = make()
    session.connection_lost()
    assert core.disconnected is session and not session.open
    session.frame_received(typed("PING"))
    clock.advance(0)
    assert transport.writes == []


def test_what_is_still_queued_at_a_disconnect_does_not_count_as_delivered():
    clock, core, _transport, session = make()
    session.dialect = TypedDialect()
    core.fanout_upto = 10
    session.deliver(event(10), {})
    clock.advance(0)  # written
    assert session.delivered_upto(10) == 10
    core.fanout_upto = 11
    session.deliver(event(11), {})  # queued, not yet written
    assert session.delivered_upto(11) == 10


def test_after_a_drop_only_what_the_transport_drained_counts():
    clock, core, transport, session = make(outbound_buffer_bytes=1000)
    session.dialect = TypedDialect()
    core.fanout_upto = 5
    session.deliver(event(5), {})
    clock.advance(0)
    session.pauseProducing()  # the transport's buffer is full with message 5 in it
    session.resumeProducing()  # ... and has drained: 5 is out
    core.fanout_upto = 6
    session.deliver(event(6), {})
    clock.advance(0)
    session.pauseProducing()  # 6 sits in the transport's buffer
    for n in range(7, 60):
        core.fanout_upto = n
        session.deliver(event(n, 100), {})
    assert transport.aborted
    assert session.delivered_upto(59) == 5  # 6 and later are replayed at the next login


def test_the_shutdown_notice_is_not_held_behind_a_replay():
    _clock, _core, transport, session = make()
    session.dialect = TypedDialect()
    session.hold()
    session.notify_close(Notice(errors.SHUTTING_DOWN, "bye"))
    assert transport.closed
    notice, farewell = transport.frames()[-2:]
    assert (notice["type"], notice["payload"]) == (
        "SERVER_NOTIFICATION",
        {"code": errors.SHUTTING_DOWN, "message": "bye"},
    )
    assert (farewell["type"], farewell["payload"]) == (
        "CONNECTION_CLOSED",
        {"code": errors.SHUTTING_DOWN, "reason": "bye"},
    )


def test_frames_received_before_the_client_hung_up_are_still_carried_out():
    clock, core, transport, session = make()
    session.frame_received(typed("LOGIN_REQUEST", username="u", passwordHash="p"))
    session.frame_received(typed("FRIEND_REQUEST_RESPONSE", sender="x", code=0))  # waits behind the login
    session.connection_lost()  # the client sent both, then closed
    assert [type(cmd) for cmd, _ in core.calls] == [c.Login]
    assert not hasattr(core, "disconnected")  # not yet: a frame is still to be carried out
    core.calls[0][1].callback(LoginResult("u", "K"))
    assert [type(cmd) for cmd, _ in core.calls] == [c.Login, c.AnswerFriend]
    assert not hasattr(core, "disconnected")
    core.calls[1][1].callback(("x", "u"))
    assert core.disconnected is session  # only now does the core hear the client left
    written = len(transport.writes)
    clock.advance(0)
    assert len(transport.writes) == written  # nothing is written to a gone transport


def test_a_connection_closed_by_the_server_drops_what_it_had_not_read():
    _clock, core, _transport, session = make(max_bad_frames=1)
    session.frame_received(typed("PING"))
    session.frame_received(b"{bad")  # closes the connection
    session.frame_received(typed("LOGIN_REQUEST", username="u", passwordHash="p"))
    session.connection_lost()
    assert core.calls == [] and core.disconnected is session


def test_a_closing_notice_to_a_client_behind_skips_the_queue():
    """The server stopping: a client whose transport is paused would never see a notice queued behind its backlog;
    the backlog is given up (replayed at its next login: the delivery mark counts none of it) and the notice goes
    to the transport at once, then the close."""
    _clock, _core, transport, session = make(outbound_buffer_bytes=100_000)
    session.dialect = TypedDialect()
    session.pauseProducing()
    for n in range(1, 11):
        session.deliver(event(n, 100), {})
    session.notify_close(Notice(code=errors.SHUTTING_DOWN, text="server is shutting down"))
    assert [f["type"] for f in transport.frames()] == ["SERVER_NOTIFICATION", "CONNECTION_CLOSED"]
    assert transport.frames()[0]["payload"]["code"] == errors.SHUTTING_DOWN
    assert transport.closed and transport.restarting and not session.open
    assert session.delivered_upto(10) == 0 and session.queued_bytes == 0


def test_a_connection_has_at_most_max_in_flight_requests_unfinished():
    _clock, core, transport, session = make(max_in_flight=2)
    for n in range(4):
        session.frame_received(typed("TEXT_MESSAGE", receiver="b", content=f"m{n}"))
    assert len(core.calls) == 2 and not transport.reading  # the other two wait, and the socket is not read
    room = Room("dm:a:b", "direct", "dm:a:b", None, {"a", "b"})
    core.calls[0][1].callback(Sent(Message(1, room.id, "a", Text("m0"), 0), room, room.members, lambda _: True))
    assert len(core.calls) == 3
    for n in (1, 2):
        core.calls[n][1].callback(Sent(Message(n + 1, room.id, "a", Text("x"), 0), room, room.members, lambda _: True))
    assert len(core.calls) == 4 and transport.reading


def test_while_the_daemon_is_overloaded_no_new_work_starts_and_nothing_is_dropped():
    from chatdaemon.config import Overload
    from chatdaemon.session.governor import Governor

    clock, core, transport = Clock(), ScriptedCore(), FakeTransport()
    pending = [0]
    governor = Governor(clock, Overload(max_loop_lag=1.0, max_pending_writes=10, max_queued_bytes=10**9),
                        lambda: pending[0], lambda: [])  # fmt: skip
    governor.start()
    session = Session(core, transport, Flusher(clock), Limits(), clock, "tcp", "test", governor=governor)
    session.frame_received(typed("PING", n=1))
    pending[0] = 11  # the commit queue passes its bound
    clock.advance(governor.tick)
    assert governor.holding
    for n in range(3):
        session.frame_received(typed("TEXT_MESSAGE", receiver="b", content=f"held {n}"))
    assert core.calls == [] and not transport.reading
    pending[0] = 6  # below the bound, but not below half of it: still holding
    clock.advance(governor.tick)
    assert governor.holding and core.calls == []
    pending[0] = 5
    clock.advance(governor.tick)
    assert not governor.holding and [c.body.text for c, _ in core.calls] == ["held 0", "held 1", "held 2"]
    assert transport.reading and governor.episodes == 1
    governor.stop()


def test_event_loop_lag_holds_too():
    from chatdaemon.config import Overload
    from chatdaemon.session.governor import Governor

    clock = Clock()
    governor = Governor(clock, Overload(max_loop_lag=0.1), lambda: 0, lambda: [5])
    governor.start()
    clock.advance(governor.tick + 0.5)  # the timer fires half a second late
    assert governor.holding and governor.lag >= 0.5
    clock.advance(governor.tick)
    assert not governor.holding
    governor.stop()


def chunk(n: int, size: int = 100) -> bytes:
    return typed("MEDIA_MESSAGE_DATA", mediaId="m", chunkIndex=n, totalChunks=1000, data="QUJD" * (size // 4))


def test_file_transfer_frames_are_charged_their_bytes_not_the_frame_rate():
    # 2 frames a second for chat; 10,240 bytes a second (and at once) for file data
    clock, core, transport, session = make(rate_per_second=2.0, rate_burst=2,
                                           transfer_bytes_per_second=10240, transfer_burst_bytes=10240)  # fmt: skip
    session.frame_received(typed("PING", n=0))  # the dialect is known from here on
    for n in range(1, 13):
        session.frame_received(chunk(n))  # each charged 1 KiB (the least a transfer frame costs)
    assert [cmd.index for cmd, _ in core.calls] == list(range(1, 11))  # ten, far more than 2 frames
    assert not transport.reading  # the 11th waits for its bytes, and so does the socket
    clock.advance(0.1)  # 1,024 bytes come back
    assert len(core.calls) == 11
    clock.advance(0.1)
    assert len(core.calls) == 12 and transport.reading


def test_a_big_transfer_frame_costs_its_size_and_chat_keeps_the_frame_rate():
    clock, core, transport, session = make(rate_per_second=2.0, rate_burst=2,
                                           transfer_bytes_per_second=10000, transfer_burst_bytes=10000)  # fmt: skip
    big = chunk(1, size=6000)
    session.frame_received(typed("PING", n=0))
    session.frame_received(typed("PING", n=1))
    session.frame_received(big)  # paid from the byte allowance: its own length
    session.frame_received(big)  # waits for what the first left short
    session.frame_received(typed("PING", n=2))  # behind it, in order
    assert len(core.calls) == 1
    wait = (2 * len(big) - 10000) / 10000
    clock.advance(wait - 0.01)
    assert len(core.calls) == 1
    clock.advance(0.02)  # the second goes; the PING then waits for a frame token (2 were spent)
    assert len(core.calls) == 2
    for _, d in core.calls:
        d.errback(ChatError(errors.NO_SUCH_MEDIA))  # (so that the replies after them may leave)
    clock.advance(0)
    assert [f["payload"].get("n") for f in transport.frames() if f["type"] == "PONG"] == [0, 1]
    clock.advance(0.5)
    assert [f["payload"].get("n") for f in transport.frames() if f["type"] == "PONG"] == [0, 1, 2]


def test_a_frame_over_the_ordinary_bound_is_refused_unless_it_moves_file_data():
    clock, core, transport, session = make()
    transport.max_frame_bytes = 200
    session.frame_received(typed("PING", pad="x" * 300))
    session.frame_received(chunk(1, size=300))
    clock.advance(0)
    error = transport.frames()[1]
    assert error["type"] == "ERROR" and error["payload"]["code"] == errors.LINE_TOO_LONG
    assert [cmd.index for cmd, _ in core.calls] == [1]


def test_large_frames_only_for_a_logged_in_connection_of_a_dialect_with_files():
    _clock, _core, _transport, session = make()
    assert not session.takes_large_frames
    session.frame_received(typed("LOGIN_REQUEST", username="u", passwordHash="p"))
    assert not session.takes_large_frames
    session.user = "u"  # as the core does when the login succeeds
    assert session.takes_large_frames
    session.dialect = EventsDialect()
    assert not session.takes_large_frames
