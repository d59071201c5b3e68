"""Socket.IO without sockets: the packet codec, and a connection over a stand-in Engine.IO session on a
MemoryReactorClock, seen from the application's side of the seam."""

import pytest
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from chatdaemon.transports.engineio import EngineIOOptions, ProtocolError
from chatdaemon.transports.socketio import (
    ACK,
    BINARY_ACK,
    BINARY_EVENT,
    CONNECT,
    CONNECT_ERROR,
    DISCONNECT,
    ERROR_ACK,
    EVENT,
    ConnectRefused,
    ISocket,
    ISocketHandler,
    ISocketIOApplication,
    Packet,
    SocketIOConnection,
    SocketIOOptions,
    SocketIOServer,
    decode,
    encode,
    reconstruct,
)

# -- the codec: the spec's examples (socket.io-protocol Readme, "Packet encoding")

PLACEHOLDER = {"_placeholder": True, "num": 0}


@pytest.mark.parametrize(
    ("text", "packet"),
    [
        ("0", Packet(CONNECT)),
        ('0{"token":"123"}', Packet(CONNECT, data={"token": "123"})),
        ("0/admin,", Packet(CONNECT, "/admin")),
        ("0/custom", Packet(CONNECT, "/custom")),  # no comma: the test-suite sends this
        ('0/admin,{"token":"abc"}', Packet(CONNECT, "/admin", {"token": "abc"})),
        ("1", Packet(DISCONNECT)),
        ("1/admin,", Packet(DISCONNECT, "/admin")),
        ('2["foo"]', Packet(EVENT, data=["foo"])),
        ('2/admin,["bar"]', Packet(EVENT, "/admin", ["bar"])),
        ('212["foo"]', Packet(EVENT, data=["foo"], id=12)),
        ('2/admin,13["bar",1,{"a":[true]}]', Packet(EVENT, "/admin", ["bar", 1, {"a": [True]}], 13)),
        ("3/admin,13[]", Packet(ACK, "/admin", [], 13)),
        ('51-["baz",{"_placeholder":true,"num":0}]', Packet(BINARY_EVENT, data=["baz", PLACEHOLDER], attachments=1)),
        (
            '52-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
            Packet(BINARY_EVENT, "/admin", ["baz", PLACEHOLDER, {"_placeholder": True, "num": 1}], attachments=2),
        ),
        (
            '61-15["bar",{"_placeholder":true,"num":0}]',
            Packet(BINARY_ACK, data=["bar", PLACEHOLDER], id=15, attachments=1),
        ),
    ],
)
def test_packets_decode_as_the_spec_writes_them(text, packet):
    assert decode(text) == packet


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",  # unknown type
        "7",
        '4{"message":"x"}',  # CONNECT_ERROR is the server's
        "2{}",  # an event payload must be an array
        "2[]",  # ... not empty
        "2[1]",  # ... with a string name first
        '2["disconnect"]',  # ... not a reserved one
        '2abc["message-with-ack"]',  # an invalid ack id
        "2",  # no payload
        '0"token"',  # a CONNECT payload is an object
        "0[]",
        "1{}",  # DISCONNECT has none
        "3[]",  # an ACK without id
        "3",
        "2[",  # not JSON
        '5["x"]',  # binary without its count
        '5x-["x"]',
        '5²-["x"]',
        '511-["x"]',  # more attachments than allowed (10)
        '212345678901234567["x"]',  # a 17-digit ack id
        "0/" + "n" * 201 + ",",
        "2[" * 2000 + "]" * 2000,  # deeper than the JSON parser goes
    ],
)
def test_malformed_packets_are_protocol_errors(text):
    with pytest.raises(ProtocolError):
        decode(text)


def test_encoding_events_acks_and_binary():
    assert encode(Packet(EVENT, data=["hey", "Jude"])) == ['2["hey","Jude"]']
    assert encode(Packet(EVENT, "/admin", ["x"])) == ['2/admin,["x"]']
    assert encode(Packet(ACK, data=[], id=12)) == ["312[]"]
    assert encode(Packet(CONNECT, data={"sid": "s"})) == ['0{"sid":"s"}']
    assert encode(Packet(CONNECT_ERROR, "/x", {"message": "Invalid namespace"})) == [
        '4/x,{"message":"Invalid namespace"}'
    ]
    assert encode(Packet(DISCONNECT, "/admin")) == ["1/admin,"]
    assert encode(Packet(DISCONNECT)) == ["1"]
    assert encode(Packet(EVENT, data=["up", {"f": b"\x01", "g": [bytearray(b"\x02")]}])) == [
        '52-["up",{"f":{"_placeholder":true,"num":0},"g":[{"_placeholder":true,"num":1}]}]',
        b"\x01",
        b"\x02",
    ]
    assert encode(Packet(ACK, "/admin", [b"\xff"], id=1)) == ['61-/admin,1[{"_placeholder":true,"num":0}]', b"\xff"]
    assert encode(Packet(EVENT, data=["text", "\x1e\u2028é"])) == ['2["text","\\u001e\u2028é"]']  # no raw separator


def test_placeholders_are_replaced_and_checked():
    assert reconstruct(["x", {"a": [PLACEHOLDER]}], [b"1"]) == ["x", {"a": [b"1"]}]
    assert reconstruct([{"_placeholder": False, "num": 0}], [b"1"]) == [{"_placeholder": False, "num": 0}]
    for bad in [{"_placeholder": True, "num": 1}, {"_placeholder": True, "num": -1}, {"_placeholder": True}]:
        with pytest.raises(ProtocolError):
            reconstruct([bad], [b"1"])
    with pytest.raises(ProtocolError):
        reconstruct([{"_placeholder": True, "num": True}], [b"1", b"2"])  # a bool is not a num


# -- a connection, over a stand-in Engine.IO session


class FakeSession:
    def __init__(self):
        self.sent: list = []
        self.peer, self.transport = "127.0.0.1:4000", "polling"
        self.closed_with: str | None = None
        self.read_paused = 0
        self.connection: SocketIOConnection | None = None

    def send(self, data):
        self.sent.append(data)

    def close(self, reason="server close"):
        if self.closed_with is None:
            self.closed_with = reason
            self.connection.closed(reason)

    def pause_reading(self):
        self.read_paused += 1

    def resume_reading(self):
        self.read_paused -= 1

    def take(self) -> list:
        sent, self.sent = self.sent, []
        return sent


@implementer(ISocketHandler)
class Handler:
    def __init__(self, user="kim"):
        self.user = user
        self.socket = None
        self.seen: list = []

    def connected(self, socket):
        self.seen.append(("connected", socket))
        self.socket = socket

    def event(self, name, args, ack):
        self.seen.append(("event", name, args, ack))
        if name == "raise":
            raise RuntimeError("boom")
        if name == "echo" and ack is not None:
            ack(*args)

    def disconnected(self, reason):
        self.seen.append(("disconnected", reason))


@implementer(ISocketIOApplication)
class App:
    def __init__(self):
        self.asked: list = []
        self.pending: defer.Deferred | None = None
        self.handlers: list[Handler] = []

    def connect(self, auth, peer):
        self.asked.append((auth, peer))
        if auth == {"token": "later"}:
            self.pending = defer.Deferred()
            return self.pending
        if auth == {"token": "crash"}:
            raise RuntimeError("the core fell over")
        if auth != {"token": "good"}:
            return defer.fail(ConnectRefused("Not authorized", {"retry": False}) if auth else ConnectRefused("no auth"))
        self.handlers.append(Handler())
        return defer.succeed(self.handlers[-1])


class Rig:
    def __init__(self, **options):
        self.clock = MemoryReactorClock()
        self.app = App()
        self.session = FakeSession()
        self.connection = SocketIOConnection(
            self.session, {"/": self.app, "/admin": self.app}, SocketIOOptions(**options), self.clock
        )
        self.session.connection = self.connection

    def client(self, *messages) -> list:
        for message in messages:
            self.connection.message(message)
        return self.session.take()

    def connect(self, namespace_prefix="") -> Handler:
        [reply] = self.client(f'0{namespace_prefix}{{"token":"good"}}')
        assert reply.startswith(f'0{namespace_prefix}{{"sid":')
        return self.app.handlers[-1]


def test_connect_with_auth_gives_the_handler_its_socket():
    rig = Rig()
    verifyObject(ISocketIOApplication, rig.app)
    handler = rig.connect()
    verifyObject(ISocketHandler, handler)
    assert rig.app.asked == [({"token": "good"}, "127.0.0.1:4000")]
    [(what, socket)] = handler.seen
    assert what == "connected"
    verifyObject(ISocket, socket)
    assert socket.namespace == "/" and socket.peer == "127.0.0.1:4000" and socket.connected
    assert socket.transport_name == "polling" and len(socket.sid) == 20


def test_a_refusal_is_connect_error_with_its_message_and_the_session_stays():
    rig = Rig()
    assert rig.client('0{"token":"bad"}') == ['4{"message":"Not authorized","data":{"retry":false}}']
    assert rig.client("0") == ['4{"message":"no auth"}']
    assert rig.client('0{"token":"crash"}') == ['4{"message":"server error"}']  # logged, not told
    assert rig.session.closed_with is None
    rig.connect()


def test_an_unknown_namespace_is_refused():
    rig = Rig()
    assert rig.client("0/random,") == ['4/random,{"message":"Invalid namespace"}']
    handler = rig.connect("/admin,")
    assert handler.socket.namespace == "/admin"


def test_events_reach_the_handler_and_acks_go_back():
    rig = Rig()
    handler = rig.connect()
    assert rig.client('2["hello",1,{"a":null}]') == []
    assert rig.client('27["echo","x",[1]]') == ['37["x",[1]]']
    _, name, args, ack = handler.seen[1]
    assert (name, args, ack) == ("hello", [1, {"a": None}], None)
    ack = handler.seen[2][3]
    ack("twice")  # answered already: nothing
    assert rig.session.take() == []


def test_a_handler_that_raises_answers_its_ack_with_the_error_value():
    rig = Rig()
    rig.connect()
    assert rig.client('29["raise"]') == ['39[{"error":{"message":"server error"}}]']
    assert ERROR_ACK == {"error": {"message": "server error"}}
    assert rig.client('2["raise"]') == []
    assert rig.session.closed_with is None


def test_emit_sends_events_with_attachments():
    rig = Rig()
    handler = rig.connect()
    handler.socket.emit("SERVER_CHAT_RECEIVE", {"text": "hi"})
    handler.socket.emit("media", {"name": "a.png", "data": b"\x89PNG"}, b"more")
    assert rig.session.take() == [
        '2["SERVER_CHAT_RECEIVE",{"text":"hi"}]',
        '52-["media",{"name":"a.png","data":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1}]',
        b"\x89PNG",
        b"more",
    ]
    with pytest.raises(ValueError):
        handler.socket.emit("disconnect")


def test_binary_events_are_reassembled_from_the_following_messages():
    rig = Rig()
    handler = rig.connect()
    assert rig.client('52-3["up",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]', b"zero") == []
    assert len(handler.seen) == 1  # waiting for the second attachment
    rig.client(b"one")
    _, name, args, ack = handler.seen[1]
    assert (name, args, ack.id) == ("up", [b"one", b"zero"], 3)
    ack(b"back")
    assert rig.session.take() == ['61-3[{"_placeholder":true,"num":0}]', b"back"]


@pytest.mark.parametrize(
    "messages",
    [
        ['51-["up",{"_placeholder":true,"num":0}]', '2["text instead"]'],  # text where an attachment is due
        [b"stray"],  # an attachment where none is
        ['52-["up",{"_placeholder":true,"num":0}]', b"x" * 60, b"y" * 60],  # over max_attachment_bytes
        ['51-["up",{"_placeholder":true,"num":3}]', b"x"],  # a placeholder without its attachment
        ["2{}"],
    ],
)
def test_malformed_traffic_closes_the_session(messages):
    rig = Rig(max_attachment_bytes=100)
    handler = rig.connect()
    rig.client(*messages)
    assert rig.session.closed_with == "parse error"
    rig.clock.advance(0)
    assert handler.seen[-1] == ("disconnected", "parse error")


def test_no_connect_within_the_timeout_closes_and_one_in_time_does_not():
    rig = Rig(connect_timeout=2.0)
    rig.clock.advance(1.9)
    assert rig.session.closed_with is None
    rig.clock.advance(0.2)
    assert rig.session.closed_with == "connect timeout"
    rig = Rig(connect_timeout=2.0)
    rig.connect()
    rig.clock.advance(5)
    assert rig.session.closed_with is None


def test_the_deadline_comes_back_when_the_last_namespace_leaves():
    rig = Rig(connect_timeout=2.0)
    handler = rig.connect()
    assert rig.client("1") == []
    assert not handler.socket.connected and rig.connection.sockets == {}
    rig.clock.advance(0)
    assert handler.seen[-1] == ("disconnected", "client namespace disconnect")
    rig.clock.advance(2.0)
    assert rig.session.closed_with == "connect timeout"


def test_events_before_connect_or_for_another_namespace_are_ignored():
    rig = Rig()
    assert rig.client('2["early"]', '2/admin,["elsewhere"]', '31["unasked"]') == []
    handler = rig.connect()
    assert handler.seen[1:] == [] and rig.session.closed_with is None


def test_a_server_disconnect_tells_the_client_and_then_the_handler():
    rig = Rig()
    handler = rig.connect()
    handler.socket.disconnect()
    assert rig.session.take() == ["1"]
    assert handler.seen[-1][0] == "connected"  # not from inside disconnect()
    rig.clock.advance(0)
    assert handler.seen[-1] == ("disconnected", "server namespace disconnect")
    assert rig.session.closed_with == "server namespace disconnect"  # nothing left on this session
    handler.socket.emit("after")  # ended: nothing sent
    handler.socket.disconnect()
    assert rig.session.take() == []


def test_a_connect_that_resolves_after_the_session_ended_still_hears_both_ends():
    rig = Rig()
    rig.client('0{"token":"later"}')
    rig.session.close("transport close")
    handler = Handler()
    rig.app.pending.callback(handler)
    rig.clock.advance(0)
    assert [what[0] for what in handler.seen] == ["connected", "disconnected"]
    assert handler.seen[1] == ("disconnected", "transport close") and rig.session.take() == []


def test_one_connect_at_a_time_per_namespace():
    rig = Rig()
    rig.client('0{"token":"later"}')
    rig.client('0{"token":"good"}')
    assert len(rig.app.asked) == 1
    rig.app.pending.callback(Handler())
    assert rig.session.take()[0].startswith('0{"sid":')


class ProducingHandler(Handler):
    def __init__(self):
        super().__init__()
        self.states: list[str] = []

    def pauseProducing(self):
        self.states.append("paused")

    def resumeProducing(self):
        self.states.append("resumed")

    def stopProducing(self):
        self.states.append("stopped")


def test_back_pressure_reaches_a_registered_producer():
    rig = Rig()
    handler = rig.connect()
    producer = ProducingHandler()
    handler.socket.registerProducer(producer, True)
    rig.connection.pause_producing()
    rig.connection.resume_producing()
    late = ProducingHandler()
    rig.connection.pause_producing()
    handler.socket.unregisterProducer()
    handler.socket.registerProducer(late, True)  # registered while paused: told at once
    rig.session.close("slow client")
    assert producer.states == ["paused", "resumed", "paused"]
    assert late.states == ["paused", "stopped"]
    with pytest.raises(ValueError):
        handler.socket.registerProducer(late, False)


def test_pause_reading_is_counted_per_socket_and_given_back_when_it_ends():
    rig = Rig()
    main = rig.connect().socket
    admin = rig.connect("/admin,").socket
    main.pause_reading()
    main.pause_reading()
    admin.pause_reading()
    assert rig.session.read_paused == 2
    main.resume_reading()
    assert rig.session.read_paused == 1
    admin.disconnect()
    assert rig.session.read_paused == 0


# -- the server object, end to end over polling without sockets


def test_socketio_server_over_a_polling_session():
    from treq.testing import StubTreq

    clock = MemoryReactorClock()
    app = App()
    server = SocketIOServer(app, clock, EngineIOOptions(ping_interval=10, ping_timeout=5))
    assert server.namespaces == {"/": app}
    stub = StubTreq(server.resource)
    url = "http://127.0.0.1/socket.io/?EIO=4&transport=polling"

    def call(method, query="", body=None):
        box = []
        d = stub.request(method, url + query, data=body)
        d.addCallback(lambda r: stub.content(r).addCallback(box.append))
        stub.flush()
        return box

    [opened] = call("GET")
    sid = opened[opened.index(b'"sid":"') + 7 :].split(b'"')[0].decode()
    assert call("POST", f"&sid={sid}", b'40{"token":"good"}\x1e42["echo",1]\x1e421["echo",2]') == [b"ok"]
    held = call("GET", f"&sid={sid}")
    clock.advance(0)
    stub.flush()
    [body] = held
    connect, ack = body.split(b"\x1e")
    assert connect.startswith(b'40{"sid":') and ack == b"431[2]"
    server.close_all()
    held = call("GET", f"&sid={sid}")
    clock.advance(0)
    stub.flush()
    assert held == [b"1"] and not server.engine.sessions


def test_socketio_md_documents_every_limit_with_its_default():
    import dataclasses
    import pathlib

    text = (pathlib.Path(__file__).parents[2] / "docs" / "protocols" / "socketio.md").read_text()
    for cls in (EngineIOOptions, SocketIOOptions):
        for field in dataclasses.fields(cls):
            row = f"| `{field.name}` | "
            assert row in text, field.name
            if isinstance(field.default, int | float) and not isinstance(field.default, bool):
                assert f"{row}{field.default}" in text, (field.name, field.default)
