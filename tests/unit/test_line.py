"""Line framing on a StringTransport: partial lines, CRLF, over-long lines, timeouts."""

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatdaemon import errors
from chatdaemon.config import Limits
from chatdaemon.errors import ChatError
from chatdaemon.transports.connection import Connections
from chatdaemon.transports.line import LineFactory


class NullCore:
    fanout_upto = 0

    def disconnect(self, session):
        pass


def connect(**limits):
    clock = Clock()
    factory = LineFactory(Connections(NullCore(), Limits(**limits), clock))
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return clock, protocol, transport


def replies(clock, transport) -> list[dict]:
    clock.advance(0)
    return [orjson.loads(line) for line in transport.value().splitlines()]


def ping(n) -> bytes:
    return orjson.dumps({"type": "PING", "timestamp": 1, "payload": {"n": n}})


def test_lines_split_and_joined_arbitrarily():
    clock, protocol, transport = connect()
    data = ping(1) + b"\r\n" + ping(2) + b"\n" + ping(3) + b"\n"
    for i in range(0, len(data), 7):
        protocol.dataReceived(data[i : i + 7])
    assert [f["payload"]["n"] for f in replies(clock, transport)[1:]] == [1, 2, 3]


def test_an_over_long_line_is_skipped_with_an_error_and_the_next_line_works():
    clock, protocol, transport = connect(max_line_bytes=100)
    protocol.dataReceived(ping(1) + b"\n")
    protocol.dataReceived(b"x" * 80)
    protocol.dataReceived(b"y" * 80)  # over the limit before any newline
    protocol.dataReceived(b"z" * 500 + b"\n" + ping(2) + b"\n" + b"w" * 101 + b"\n" + ping(3) + b"\n")
    frames = replies(clock, transport)[1:]
    assert [(f["type"], f["payload"].get("n"), f["payload"].get("code")) for f in frames] == [
        ("PONG", 1, None),
        ("ERROR", None, errors.LINE_TOO_LONG),
        ("PONG", 2, None),
        ("ERROR", None, errors.LINE_TOO_LONG),
        ("PONG", 3, None),
    ]
    assert protocol.buffered == 0


def test_the_buffer_never_grows_past_the_limit():
    _clock, protocol, _transport = connect(max_line_bytes=1000)
    for _ in range(100):
        protocol.dataReceived(b"a" * 999)
        assert protocol.buffered <= 1000


def test_a_silent_connection_is_closed_after_the_login_timeout():
    clock, _protocol, transport = connect(login_timeout=30)
    clock.advance(29)
    assert not transport.disconnecting
    clock.advance(8)  # the deadlines are checked every quarter of the shortest timeout (at most every second)
    assert transport.disconnecting
    [frame] = [orjson.loads(line) for line in transport.value().splitlines()]
    assert frame["payload"]["code"] == errors.IDLE_TIMEOUT


def test_the_login_timeout_is_a_deadline_that_pings_do_not_extend():
    clock, protocol, transport = connect(login_timeout=30)
    clock.advance(20)
    protocol.dataReceived(ping(0) + b"\n")
    clock.advance(11)
    assert transport.disconnecting


def test_once_logged_in_each_line_restarts_the_idle_timeout():
    clock, protocol, transport = connect(login_timeout=30, idle_timeout=100)
    clock.advance(10)
    protocol.session.user = "alice"  # as the core does when a login succeeds
    clock.advance(21)  # the login deadline passes: the idle timeout takes over
    assert not transport.disconnecting
    for _ in range(5):
        clock.advance(90)
        protocol.dataReceived(ping(0) + b"\n")
    assert not transport.disconnecting
    clock.advance(101)
    assert transport.disconnecting
    assert b"nothing heard for 100 seconds" in transport.value()


class RecordingCore(NullCore):
    """Keeps every command with a Deferred the test may fire."""

    def __init__(self):
        self.calls: list = []

    def execute(self, session, command):
        from twisted.internet.defer import Deferred

        d = Deferred()
        self.calls.append((command, d))
        return d


def chatting(connections, clock):
    """A connection on `connections` whose session is logged in as a typed user."""
    from chatdaemon.dialects.typed import TypedDialect

    protocol = LineFactory(connections).buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    protocol.session.dialect, protocol.session.user = TypedDialect(), "u"  # as a login does
    return protocol, transport


def chunk_line(n: int, size: int) -> bytes:
    data = "QUJD" * (size // 4)
    return orjson.dumps({"type": "MEDIA_MESSAGE_DATA", "payload": {"mediaId": "m", "chunkIndex": n, "totalChunks": 9,
                                                                   "data": data}}) + b"\n"  # fmt: skip


def test_chunk_lines_may_reach_the_transfer_bound_once_logged_in_other_lines_may_not():
    clock, core = Clock(), RecordingCore()
    connections = Connections(core, Limits(max_line_bytes=100, max_transfer_frame_bytes=1000), clock)
    protocol, transport = chatting(connections, clock)
    line = chunk_line(1, 300)
    for i in range(0, len(line), 50):
        protocol.dataReceived(line[i : i + 50])
    assert [cmd.index for cmd, _ in core.calls] == [1]
    core.calls[0][1].errback(ChatError(errors.NO_SUCH_MEDIA))  # answered: the replies after it may leave
    protocol.dataReceived(ping(1)[:-1] + b', "pad": "' + b"x" * 300 + b'"}\n')  # not file data: refused
    protocol.dataReceived(chunk_line(2, 1200))  # past the transfer bound: skipped
    protocol.dataReceived(ping(2) + b"\n")
    frames = replies(clock, transport)
    assert [(f["type"], f["payload"].get("code")) for f in frames] == [
        ("MEDIA_MESSAGE_DATA_ACK", errors.NO_SUCH_MEDIA),
        ("ERROR", errors.LINE_TOO_LONG),
        ("ERROR", errors.LINE_TOO_LONG),
        ("PONG", None),
    ]
    assert "only file-transfer frames" in frames[1]["payload"]["message"]
    assert [cmd.index for cmd, _ in core.calls] == [1]
    assert not connections.large_frames.holders
    # not logged in: the ordinary bound, and nothing past it is kept
    clock, anonymous, transport = connect(max_line_bytes=100, max_transfer_frame_bytes=1000)
    anonymous.dataReceived(ping(0) + b"\n" + chunk_line(1, 300)[:250])
    assert anonymous.buffered == 0
    assert replies(clock, transport)[-1]["payload"]["code"] == errors.LINE_TOO_LONG


def test_large_frames_wait_unread_for_one_of_the_servers_slots():
    clock, core = Clock(), RecordingCore()
    limits = Limits(max_line_bytes=100, max_transfer_frame_bytes=1000, max_large_frames=1)
    connections = Connections(core, limits, clock)
    (a, a_transport), (b, b_transport) = chatting(connections, clock), chatting(connections, clock)
    line_a, line_b = chunk_line(1, 300), chunk_line(2, 300)
    a.dataReceived(line_a[:200])
    assert a.gate.holding
    b.dataReceived(line_b[:200])  # no slot free: b is not read on
    assert b.gate.waiting and b_transport.producerState == "paused"
    b.dataReceived(line_b[200:250])  # (what was already on its way)
    assert b.buffered == 250 and not core.calls
    a.dataReceived(line_a[200:])  # a's frame is handed on: its slot goes to b
    assert [cmd.index for cmd, _ in core.calls] == [1] and not a.gate.holding
    clock.advance(0)
    assert b.gate.holding and b_transport.producerState == "producing"
    b.dataReceived(line_b[250:])
    assert [cmd.index for cmd, _ in core.calls] == [1, 2]
    assert not connections.large_frames.holders and a_transport.producerState == "producing"


def test_a_large_frame_keeps_its_slot_while_it_waits_in_the_inbox():
    clock, core = Clock(), RecordingCore()
    connections = Connections(core, Limits(max_line_bytes=100, max_transfer_frame_bytes=1000), clock)
    protocol, transport = chatting(connections, clock)
    protocol.dataReceived(orjson.dumps({"type": "USER_JOIN", "payload": {"room": "r"}}) + b"\n")  # a barrier
    protocol.dataReceived(chunk_line(1, 300))
    assert [type(cmd).__name__ for cmd, _ in core.calls] == ["JoinRoom"]
    assert protocol.gate in connections.large_frames.holders  # behind the join, in the inbox
    core.calls[0][1].errback(ChatError(errors.NO_SUCH_ROOM))
    assert [type(cmd).__name__ for cmd, _ in core.calls] == ["JoinRoom", "PutChunk"]
    assert not connections.large_frames.holders and transport.producerState == "producing"


def test_a_large_frame_that_does_not_arrive_in_time_closes_the_connection():
    clock, core = Clock(), RecordingCore()
    connections = Connections(core, Limits(max_line_bytes=100, large_frame_timeout=30), clock)
    protocol, transport = chatting(connections, clock)
    protocol.dataReceived(chunk_line(1, 300)[:200])
    clock.advance(29)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting
    [frame] = [orjson.loads(line) for line in transport.value().splitlines()]
    assert frame["type"] == "CONNECTION_CLOSED" and frame["payload"]["code"] == errors.FRAME_TIMEOUT
    protocol.connectionLost(None)
    assert not connections.large_frames.holders


class RefusingCore(NullCore):
    """Refuses every command, as the real core does for a connection that is not logged in."""

    def execute(self, session, command):
        from twisted.internet.defer import fail

        return fail(ChatError(errors.NOT_LOGGED_IN))


FRAMES = [
    ping(1),
    b'{"type": "TEXT_MESSAGE", "payload": {"receiver": "x", "content": "hi"}}',
    b'{"type": "LOGIN_REQUEST", "payload": {"username": "u", "password": "p"}}',
    b"/help",
    b"/join lobby",
    b"hello",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(st.sampled_from(FRAMES), st.binary(max_size=300)), max_size=12),
    st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=8),
)
def test_any_bytes_in_any_pieces_never_break_the_connection(frames, cuts):
    clock = Clock()
    factory = LineFactory(Connections(RefusingCore(), Limits(max_line_bytes=200, max_bad_frames=10**6), clock))
    protocol = factory.buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    data = b"\n".join(frames) + b"\n"
    position, i = 0, 0
    while position < len(data):
        size = cuts[i % len(cuts)]
        protocol.dataReceived(data[position : position + size])
        position, i = position + size, i + 1
    clock.advance(0)
    assert protocol.session.open
    assert protocol.buffered <= 200
    for line in transport.value().splitlines():
        if line.startswith(b"{"):
            orjson.loads(line)  # every JSON reply is valid JSON
        else:
            line.decode("utf-8")  # every text reply is valid UTF-8


class AnsweringCore(RecordingCore):
    """Keeps every command, and refuses it at once."""

    def execute(self, session, command):
        from twisted.internet.defer import fail

        self.calls.append((command, None))
        return fail(ChatError(errors.NO_SUCH_MEDIA))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.integers(min_value=1, max_value=800), st.sampled_from(FRAMES), st.binary(max_size=300)),
             max_size=10),
    st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=8),
)  # fmt: skip
def test_chunk_lines_in_any_pieces_reach_the_core_in_order_and_every_slot_is_given_back(frames, cuts):
    clock, core = Clock(), AnsweringCore()
    limits = Limits(max_line_bytes=200, max_transfer_frame_bytes=600, max_bad_frames=10**6)
    connections = Connections(core, limits, clock)
    protocol, transport = chatting(connections, clock)
    lines = [chunk_line(n, size=f) if isinstance(f, int) else f + b"\n" for n, f in enumerate(frames)]
    data = b"".join(lines)
    position, i = 0, 0
    while position < len(data):
        size = cuts[i % len(cuts)]
        protocol.dataReceived(data[position : position + size])
        assert protocol.buffered <= 600 + size
        position, i = position + size, i + 1
    clock.advance(0)
    expected = [n for n, line in enumerate(lines) if isinstance(frames[n], int) and len(line) - 1 <= 600]
    assert [cmd.index for cmd, _ in core.calls if type(cmd).__name__ == "PutChunk"] == expected
    assert protocol.session.open and not connections.large_frames.holders
    assert transport.producerState == "producing"
