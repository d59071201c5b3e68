"""Line framing on a StringTransport: partial lines, CRLF, over-long lines, timeouts."""

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from chatdaemon import errors
from chatdaemon.config import Limits
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


class RefusingCore(NullCore):
    """Refuses every command, as the real core does for a connection that is not logged in."""

    def execute(self, session, command):
        from twisted.internet.defer import fail

        from chatdaemon.errors import ChatError

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
