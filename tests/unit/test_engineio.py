"""Engine.IO without sockets: the codec, and sessions driven through the resource (treq's StubTreq) and
a stand-in WebSocket, on a MemoryReactorClock."""

import base64

import orjson
import pytest
from treq.testing import StubTreq
from twisted.internet.testing import MemoryReactorClock

from chatdaemon.transports.engineio import (
    CLOSE,
    MESSAGE,
    NOOP,
    OPEN,
    PING,
    PONG,
    UPGRADE,
    EngineIOOptions,
    EngineIOResource,
    EngineIOServer,
    ProtocolError,
    decode_packet,
    decode_payload,
    encode_packet,
    encode_payload,
)

BASE = "http://127.0.0.1/socket.io/?EIO=4&transport=polling"

# -- the codec


def test_packets_decode_to_their_type_and_data():
    assert decode_packet("4hello") == (MESSAGE, "hello")
    assert decode_packet("2probe") == (PING, "probe")
    assert decode_packet("3") == (PONG, "")
    assert decode_packet("1") == (CLOSE, "")
    assert decode_packet("5") == (UPGRADE, "")
    assert decode_packet("6") == (NOOP, "")
    assert decode_packet("0") == (OPEN, "")
    assert decode_packet(b"\x01\x02") == (MESSAGE, b"\x01\x02")  # a binary WebSocket message
    assert decode_packet("bAQIDBA==") == (MESSAGE, b"\x01\x02\x03\x04")  # binary in a polling payload
    assert decode_packet('4{"not": "parsed"}') == (MESSAGE, '{"not": "parsed"}')  # message data stays text


@pytest.mark.parametrize("raw", ["", "abc", "7", "9x", "b!!", "bAQI", " 4", "b\x80", "bé=="])
def test_bad_packets_are_protocol_errors(raw):
    with pytest.raises(ProtocolError):
        decode_packet(raw)


def test_encoding_for_a_websocket_and_for_polling():
    assert encode_packet(MESSAGE, "héllo") == ("4héllo".encode(), False)
    assert encode_packet(PING) == (b"2", False)
    assert encode_packet(MESSAGE, b"\x00\xff") == (b"\x00\xff", True)
    with pytest.raises(ValueError):
        encode_packet(PING, b"x")
    payload = encode_payload([encode_packet(MESSAGE, "a"), encode_packet(MESSAGE, b"\x01\x02\x03\x04"), (b"2", False)])
    assert payload == b"4a\x1ebAQIDBA==\x1e2"
    assert decode_payload(payload) == [(MESSAGE, "a"), (MESSAGE, b"\x01\x02\x03\x04"), (PING, "")]


def test_a_payload_must_be_utf8():
    with pytest.raises(ProtocolError):
        decode_payload(b"4\xff")
    with pytest.raises(ProtocolError):
        decode_payload(b"4a\x1e\x1e4b")  # an empty packet between two separators


# -- sessions over polling


class Receiver:
    def __init__(self, session):
        self.session = session
        self.messages, self.reasons, self.pressure = [], [], []

    def message(self, data):
        self.messages.append(data)

    def closed(self, reason):
        self.reasons.append(reason)

    def pause_producing(self):
        self.pressure.append("pause")

    def resume_producing(self):
        self.pressure.append("resume")


class Harness:
    def __init__(self, **options):
        self.clock = MemoryReactorClock()
        self.receivers: list[Receiver] = []
        options = {"ping_interval": 1.0, "ping_timeout": 0.5, **options}
        self.server = EngineIOServer(self._receiver, EngineIOOptions(**options), self.clock)
        self.resource = EngineIOResource(self.server)
        self.stub = StubTreq(self.resource)

    def _receiver(self, session):
        self.receivers.append(Receiver(session))
        return self.receivers[-1]

    def request(self, method: str, query: str = "", body: bytes | None = None, headers=None) -> list:
        """[(status, body)] once answered; [] while the request is held."""
        box = []
        d = self.stub.request(method, BASE + query, data=body, headers=headers)

        def got(response):
            self.stub.content(response).addCallback(lambda content: box.append((response.code, content)))

        d.addCallback(got)
        self.stub.flush()
        return box

    def advance(self, seconds: float = 0.0) -> None:
        self.clock.advance(seconds)
        self.stub.flush()

    def open(self) -> tuple[str, Receiver]:
        [(status, body)] = self.request("GET")
        assert status == 200 and body[:1] == b"0"
        return orjson.loads(body[1:])["sid"], self.receivers[-1]

    def get(self, sid: str) -> list:
        return self.request("GET", f"&sid={sid}")

    def post(self, sid: str, body: bytes) -> list:
        return self.request("POST", f"&sid={sid}", body)


def test_the_handshake_gives_sid_upgrades_and_the_timers_in_milliseconds():
    h = Harness(ping_interval=25.0, ping_timeout=20.0, max_payload=1000)
    [(status, body)] = h.request("GET")
    handshake = orjson.loads(body[1:])
    assert status == 200 and body[:1] == b"0"
    assert handshake == {
        "sid": handshake["sid"],
        "upgrades": ["websocket"],
        "pingInterval": 25000,
        "pingTimeout": 20000,
        "maxPayload": 1000,
    }
    assert handshake["sid"] in h.server.sessions and len(handshake["sid"]) == 20


@pytest.mark.parametrize(
    ("method", "query", "status", "code"),
    [
        ("GET", "&EIO=3", 400, 5),
        ("POST", "", 400, 2),
        ("PUT", "", 400, 2),
        ("GET", "&sid=unknown", 400, 1),
        ("POST", "&sid=unknown", 400, 1),
    ],
)
def test_bad_requests_get_engineio_errors(method, query, status, code):
    h = Harness()
    [(got, body)] = h.request(method, query)
    assert (got, orjson.loads(body)["code"]) == (status, code)


def test_missing_version_or_transport():
    h = Harness()
    for url, code in [
        ("http://127.0.0.1/socket.io/?transport=polling", 5),
        ("http://127.0.0.1/socket.io/?EIO=4", 0),
        ("http://127.0.0.1/socket.io/?EIO=4&transport=flying", 0),
    ]:
        box = []
        d = h.stub.get(url)
        d.addCallback(lambda r, box=box: h.stub.json_content(r).addCallback(lambda j: box.append((r.code, j))))
        h.stub.flush()
        assert box[0][0] == 400 and box[0][1]["code"] == code


def test_a_get_is_held_until_something_is_queued_then_gets_all_of_it():
    h = Harness()
    sid, receiver = h.open()
    held = h.get(sid)
    assert held == []
    session = receiver.session
    session.send("one")
    session.send(b"\x01\x02")
    session.send("two")
    assert held == []  # answered in a later turn, with all that this one queued
    h.advance(0)
    assert held == [(200, b"4one\x1ebAQI=\x1e4two")]


def test_posted_packets_reach_the_receiver_in_order():
    h = Harness()
    sid, receiver = h.open()
    assert h.post(sid, b"4hello\x1ebAQIDBA==\x1e4world") == [(200, b"ok")]
    assert receiver.messages == ["hello", b"\x01\x02\x03\x04", "world"]


def test_the_server_pings_and_a_pong_keeps_the_session():
    h = Harness()
    sid, receiver = h.open()
    for _ in range(3):
        held = h.get(sid)
        h.advance(1.0)  # ping_interval
        assert held == [(200, b"2")]
        h.advance(0.4)
        assert h.post(sid, b"3") == [(200, b"ok")]
    assert sid in h.server.sessions and receiver.reasons == []


def test_no_pong_closes_the_session_after_the_ping_timeout():
    h = Harness()
    sid, receiver = h.open()
    held = h.get(sid)
    h.advance(1.0)
    assert held == [(200, b"2")]
    h.advance(0.49)
    assert sid in h.server.sessions
    h.advance(0.02)
    assert sid not in h.server.sessions and receiver.reasons == ["ping timeout"]
    assert h.get(sid)[0][0] == 400


def test_a_session_that_stops_polling_is_closed_after_interval_plus_timeout():
    h = Harness()
    sid, receiver = h.open()
    h.advance(1.0)
    h.advance(0.49)
    assert sid in h.server.sessions
    h.advance(0.02)
    assert sid not in h.server.sessions and receiver.reasons == ["ping timeout"]


def test_two_gets_at_once_close_the_session():
    h = Harness()
    sid, receiver = h.open()
    first = h.get(sid)
    second = h.get(sid)
    assert second[0][0] == 400
    assert first == [(200, b"1")]
    assert receiver.reasons == ["transport error"] and sid not in h.server.sessions


def test_two_posts_at_once_close_the_session():
    h = Harness()
    sid, receiver = h.open()
    receiver.session.pause_reading()  # holds the first POST
    first = h.post(sid, b"4a")
    assert first == []
    assert h.post(sid, b"4b")[0][0] == 400
    assert receiver.reasons == ["transport error"]
    assert first == [(200, b"ok")] and receiver.messages == []


def test_a_bad_payload_is_400_and_ends_the_session():
    h = Harness()
    sid, receiver = h.open()
    [(status, body)] = h.post(sid, b"abc")
    assert status == 400 and orjson.loads(body)["code"] == 3
    assert receiver.reasons == ["parse error"] and sid not in h.server.sessions
    sid, receiver = h.open()
    assert h.post(sid, b"4ok\x1e0") == [(200, b"ok")]  # an open packet from the client
    assert receiver.messages == ["ok"] and receiver.reasons == ["parse error"]


def test_a_post_over_max_payload_is_413_and_ends_the_session():
    h = Harness(max_payload=100)
    sid, receiver = h.open()
    assert h.post(sid, b"4" + b"x" * 99) == [(200, b"ok")]
    [(status, _)] = h.post(sid, b"4" + b"x" * 100)
    assert status == 413 and receiver.reasons == ["transport error"]


def test_a_get_reply_holds_at_most_max_payload_and_the_rest_waits():
    h = Harness(max_payload=100)
    sid, receiver = h.open()
    for n in range(5):
        receiver.session.send(str(n) * 40)
    first = h.get(sid)
    h.advance(0)
    [(_, body)] = first
    assert body == b"4" + b"0" * 40 + b"\x1e4" + b"1" * 40
    second = h.get(sid)
    h.advance(0)
    assert second[0][1].split(b"\x1e") == [b"4" + b"2" * 40, b"4" + b"3" * 40]


def test_the_client_closing_ends_the_session_and_releases_the_held_get():
    h = Harness()
    sid, receiver = h.open()
    held = h.get(sid)
    assert h.post(sid, b"1") == [(200, b"ok")]
    assert held == [(200, b"6")]
    assert receiver.reasons == ["transport close"] and sid not in h.server.sessions


def test_the_server_closing_sends_what_is_queued_then_close_to_the_next_get():
    h = Harness()
    sid, receiver = h.open()
    receiver.session.send("bye")
    receiver.session.close()
    assert receiver.reasons == ["server close"]
    receiver.session.send("too late")
    assert sid in h.server.sessions  # until the client collects it
    held = h.get(sid)
    h.advance(0)
    assert held == [(200, b"4bye\x1e1")]
    assert sid not in h.server.sessions


def test_a_closing_session_not_collected_goes_after_the_ping_timeout():
    h = Harness()
    sid, receiver = h.open()
    receiver.session.close()
    h.advance(0.5)
    assert sid not in h.server.sessions


def test_back_pressure_pauses_resumes_and_a_slow_client_is_dropped():
    h = Harness(outgoing_high_water=100, max_outgoing_bytes=300)
    sid, receiver = h.open()
    session = receiver.session
    session.send("x" * 60)
    assert receiver.pressure == []
    session.send("x" * 60)
    assert receiver.pressure == ["pause"]
    held = h.get(sid)
    h.advance(0)
    assert len(held) == 1 and receiver.pressure == ["pause", "resume"] and session.queued_bytes == 0
    for _ in range(5):
        session.send("y" * 60)  # nobody polls
    assert receiver.reasons == ["slow client"] and sid not in h.server.sessions


def test_polling_past_the_rate_is_answered_late_not_refused():
    h = Harness(polls_per_second=10.0, poll_burst=2)
    sid, receiver = h.open()
    session = receiver.session
    for _ in range(2):  # the burst
        held = h.get(sid)
        session.send("m")
        h.advance(0)
        assert len(held) == 1
    held = h.get(sid)
    session.send("m")
    h.advance(0)
    assert held == []  # a token comes in 0.1 s
    h.advance(0.1)
    assert held == [(200, b"4m")]
    assert h.post(sid, b"4late") == []
    h.advance(0.1)
    assert receiver.messages == ["late"]


def test_pause_reading_holds_the_post_until_resumed():
    h = Harness()
    sid, receiver = h.open()
    session = receiver.session
    session.pause_reading()
    answer = h.post(sid, b"4a\x1e4b")
    assert answer == [] and receiver.messages == []
    session.resume_reading()
    h.stub.flush()
    assert answer == [(200, b"ok")] and receiver.messages == ["a", "b"]


def test_sessions_are_bounded_per_address_and_in_all():
    h = Harness(max_sessions_per_address=2, max_sessions=3)
    h.open()
    sid, _ = h.open()
    [(status, body)] = h.request("GET")
    assert status == 429 and orjson.loads(body) == {"code": 4, "message": "too many sessions from this address"}
    h.post(sid, b"1")
    h.open()
    h.server.per_address["10.0.0.9"] = 0  # another address; the total is the limit now
    h.server.open("10.0.0.9", "10.0.0.9:1", "polling")
    h.server.open("10.0.0.9", "10.0.0.9:2", "polling")
    assert h.request("GET")[0][0] == 503


def test_a_foreign_origin_is_refused_and_the_pages_own_accepted():
    h = Harness()
    [(status, body)] = h.request("GET", headers={"Origin": "https://evil.example"})
    assert status == 403 and orjson.loads(body)["code"] == 4
    assert h.request("GET", headers={"Origin": "null"})[0][0] == 403
    assert h.request("GET", headers={"Origin": "http://localhost:8080"})[0][0] == 200  # allowed_origins
    assert h.request("GET", headers={"Origin": "http://127.0.0.1", "Host": "127.0.0.1"})[0][0] == 200  # same origin
    assert len(h.server.sessions) == 2


# -- WebSocket sessions and the upgrade, with a stand-in for Autobahn's protocol


class FakeTCP:
    def __init__(self):
        self.producer = None
        self.reading = True

    def registerProducer(self, producer, streaming):
        assert self.producer is None and streaming
        self.producer = producer

    def pauseProducing(self):
        self.reading = False

    def resumeProducing(self):
        self.reading = True


class FakeWebSocket:
    STATE_CLOSED, STATE_CONNECTING, STATE_CLOSING, STATE_OPEN = range(4)

    def __init__(self):
        self.state = self.STATE_OPEN
        self.transport = FakeTCP()
        self.sent: list = []
        self.closed_with = None

    def sendMessage(self, payload, isBinary=False):
        assert self.state == self.STATE_OPEN
        self.sent.append(payload if isBinary else payload.decode())

    def sendClose(self, code=None):
        self.state, self.closed_with = self.STATE_CLOSING, code

    def dropConnection(self, abort=False):
        self.state, self.closed_with = self.STATE_CLOSED, "dropped"


def websocket_session(h: Harness):
    session = h.server.open("127.0.0.1", "127.0.0.1:9", "websocket")
    ws = FakeWebSocket()
    session.attach(ws)
    return session, ws, h.receivers[-1]


def test_a_websocket_session_sends_each_packet_as_a_message():
    h = Harness()
    session, ws, receiver = websocket_session(h)
    assert orjson.loads(session.handshake()[1:])["upgrades"] == []
    session.send("hi")
    session.send(b"\x00")
    assert ws.sent == ["4hi", b"\x00"]
    session.ws_message(ws, "4back")
    session.ws_message(ws, b"\x07")
    assert receiver.messages == ["back", b"\x07"]
    h.advance(1.0)
    assert ws.sent[-1] == "2"
    session.ws_message(ws, "3")
    h.advance(1.0)
    assert ws.sent[-1] == "2" and ws.sent.count("2") == 2 and receiver.reasons == []


def test_a_full_tcp_buffer_queues_and_its_drain_flushes():
    h = Harness()
    session, ws, _ = websocket_session(h)
    ws.transport.producer.pauseProducing()
    session.send("a")
    session.send("b")
    assert ws.sent == [] and session.queued_bytes == 4
    ws.transport.producer.resumeProducing()
    assert ws.sent == ["4a", "4b"] and session.queued_bytes == 0


def test_a_websocket_reader_that_stops_is_dropped_past_max_outgoing_bytes():
    h = Harness(outgoing_high_water=100, max_outgoing_bytes=300)
    session, ws, receiver = websocket_session(h)
    ws.transport.producer.pauseProducing()
    for _ in range(2):
        session.send("z" * 99)
    assert receiver.pressure == ["pause"] and receiver.reasons == []
    for _ in range(2):
        session.send("z" * 99)
    assert receiver.reasons == ["slow client"] and ws.closed_with == "dropped"
    assert session.sid not in h.server.sessions and ws.sent == []


def test_pause_reading_stops_reading_the_websocket_and_a_missing_pong_then_does_not_count():
    h = Harness()
    session, ws, receiver = websocket_session(h)
    session.pause_reading()
    assert not ws.transport.reading
    h.advance(1.0)
    h.advance(0.6)  # no pong: we were not listening
    assert receiver.reasons == []
    session.resume_reading()
    assert ws.transport.reading
    h.advance(0.6)
    assert receiver.reasons == ["ping timeout"] and ws.closed_with == "dropped"


@pytest.mark.parametrize("bad", ["abc", "5", "0", "b%%", "bé=="])
def test_a_bad_packet_on_a_websocket_closes_it(bad):
    h = Harness()
    session, ws, receiver = websocket_session(h)
    session.ws_message(ws, bad)
    assert receiver.reasons == ["parse error"] and ws.closed_with == 1000
    session.ws_closed(ws)
    assert session.sid not in h.server.sessions


def test_the_client_closing_a_websocket_session():
    h = Harness()
    session, ws, receiver = websocket_session(h)
    session.ws_message(ws, "1")
    assert receiver.reasons == ["transport close"] and session.sid not in h.server.sessions


def test_the_server_closing_a_websocket_session_flushes_then_closes():
    h = Harness()
    session, ws, receiver = websocket_session(h)
    session.send("last")
    session.close()
    assert ws.sent == ["4last", "1"] and ws.closed_with == 1000
    assert session.sid in h.server.sessions  # until the close handshake ends
    session.ws_closed(ws)
    assert session.sid not in h.server.sessions and receiver.reasons == ["server close"]


def test_the_upgrade_from_polling():
    h = Harness()
    sid, receiver = h.open()
    session = receiver.session
    held = h.get(sid)
    ws = FakeWebSocket()
    session.attach(ws)
    session.send("queued during the probe")
    session.ws_message(ws, "2probe")
    h.stub.flush()
    assert ws.sent == ["3probe"]
    assert held == [(200, b"6")]  # released with a noop, the queued packet kept for the WebSocket
    assert h.get(sid) == [(200, b"6")]  # and so is any GET until the upgrade ends
    assert h.post(sid, b"4still polling") == [(200, b"ok")]
    session.ws_message(ws, "5")
    assert session.transport == "websocket"
    assert ws.sent == ["3probe", "4queued during the probe"]
    assert h.get(sid)[0][0] == 400  # polling is over; the session is not
    assert sid in h.server.sessions
    session.ws_message(ws, "4over ws")
    assert receiver.messages == ["still polling", "over ws"]


def test_a_probe_that_does_not_follow_the_dance_is_closed_and_polling_goes_on():
    h = Harness(upgrade_timeout=0.3)
    sid, receiver = h.open()
    session = receiver.session
    ws = FakeWebSocket()
    session.attach(ws)
    session.ws_message(ws, "4too early")
    assert ws.closed_with == 1000 and session.transport == "polling"
    assert receiver.messages == []
    other = FakeWebSocket()
    session.attach(other)
    session.ws_message(other, "2probe")
    third = FakeWebSocket()
    session.attach(third)  # one probe at a time
    assert third.closed_with == 1000
    h.advance(0.3)  # upgrade_timeout: no "5"
    assert other.closed_with == 1000 and session.transport == "polling"
    held = h.get(sid)
    session.send("polling again")
    h.advance(0)
    assert held == [(200, b"4polling again")]


def test_no_second_websocket_after_the_upgrade():
    h = Harness()
    _, receiver = h.open()
    session = receiver.session
    ws = FakeWebSocket()
    session.attach(ws)
    session.ws_message(ws, "2probe")
    session.ws_message(ws, "5")
    again = FakeWebSocket()
    session.attach(again)
    assert again.closed_with == 1000 and ws.closed_with is None


def test_binary_sent_over_polling_is_base64():
    h = Harness()
    sid, receiver = h.open()
    receiver.session.send(bytes(range(5)))
    held = h.get(sid)
    h.advance(0)
    assert held == [(200, b"b" + base64.b64encode(bytes(range(5))))]


def test_a_post_waiting_for_its_turn_is_answered_only_after_its_packets():
    h = Harness(polls_per_second=10.0, poll_burst=1)
    sid, receiver = h.open()
    assert h.post(sid, b"4first") == [(200, b"ok")]
    waiting = h.post(sid, b"4second")
    session = receiver.session
    session.pause_reading()
    session.resume_reading()  # a drain with nothing in the inbox yet: still no "ok"
    h.stub.flush()
    assert waiting == [] and receiver.messages == ["first"]
    h.advance(0.1)
    assert waiting == [(200, b"ok")] and receiver.messages == ["first", "second"]
