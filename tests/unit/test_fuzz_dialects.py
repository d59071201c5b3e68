"""Properties of every dialect's decoder, for any input: arbitrary bytes, arbitrary JSON values, and frames of each
dialect's own shape with its own field names holding arbitrary JSON values. A decoder returns a Request (whose
refusal renders as frames) or raises ChatError; any other exception is a bug. (The framing property is in
test_line.py.)

The same for the IRC dialect (any bytes, any command with any parameters, lines in a row through registration)
and for the packet decoders under Socket.IO: Engine.IO's packets and polling payloads, Socket.IO's packets and
their attachments. Those raise ProtocolError and nothing else, and a valid packet or line survives its encoder
and decoder unchanged."""

import contextlib
import inspect
import os
import pathlib
import re

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatdaemon import errors
from chatdaemon.config import IRC
from chatdaemon.core.results import LoginResult
from chatdaemon.dialects import DIALECTS, Request, dialect_for
from chatdaemon.dialects.irc import IrcDialect
from chatdaemon.dialects.irc.lines import MAX_BODY_BYTES, MAX_TAG_BYTES, BadLine, LineTooLong, Message, line, parse
from chatdaemon.errors import ChatError
from chatdaemon.transports import engineio, socketio
from chatdaemon.transports.engineio import ProtocolError

DIALECT_SOURCES = pathlib.Path(__file__).parents[2] / "chatdaemon" / "dialects"
# every quoted identifier in the dialects' source: frame types, field names, command words
WORDS = sorted(
    {
        w
        for path in DIALECT_SOURCES.rglob("*.py")
        for w in re.findall(r'"([A-Za-z_:][A-Za-z0-9_:\-]*)"', path.read_text())
    }
)
TEXT_COMMANDS = sorted(name[5:] for name in dir(DIALECTS["text"]) if name.startswith("_cmd_"))

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(WORDS)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(WORDS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=20,
)
fields = st.dictionaries(st.sampled_from(WORDS), json_values, max_size=8)


def quoted(source: str) -> set[str]:
    return set(re.findall(r'"([A-Za-z_:][A-Za-z0-9_:\-]*)"', source))


def fields_of(cls, method: str) -> list[str]:
    """The field names a handler reads: the quoted identifiers of its source and of the helpers it calls."""
    handler = getattr(cls, method)
    source = inspect.getsource(handler)
    module = inspect.getmodule(handler)
    words = quoted(source)
    for name in set(re.findall(r"\b([A-Za-z_]\w*)\(", source)):
        helper = getattr(module, name, None) or getattr(cls, name, None)
        if inspect.isfunction(helper) or inspect.ismethod(helper):
            words |= quoted(inspect.getsource(helper))
    return sorted(words) or ["data"]


# values a real client might send, beside any JSON value: names, ids, times, base64, edge numbers
plausible = st.sampled_from(
    ["alice", "bob", "lobby", "dm:alice:bob", "2024-01-01T00:00:00Z", "aGVsbG8=", "", " ", "0", "-1",
     "\u202e", "x" * 300, 0, 1, -1, 2**31, 2**62, 2**63 - 1, 2**64 - 1, 1e308, -1e308, 0.5, True, False, None,
     [], {}, ["alice"], [1, 2]]
)  # fmt: skip
values = plausible | json_values


KINDS = {  # dialect -> (the key naming a frame's kind, the key of its body, {kind: the fields its handler reads})
    name: (key, body, {kind_of(m[4:]): fields_of(DIALECTS[name], m) for m in dir(DIALECTS[name]) if m.startswith("_on_")})
    for name, key, body, kind_of in [
        ("typed", "type", "payload", str),
        ("action", "action", "data", str),
        ("events", "event", "data", str),
        ("colon", "type", "data", lambda m: m.replace("__", ":")),
    ]
}  # fmt: skip


USERS = {"chatid", "chat_id", "username", "sender", "user", "receiver", "newleader", "leader", "invitee"}
ROOMS = {"room_id", "groupid", "group", "room", "cid", "to", "name", "id"}
NUMBERS = {
    "limit",
    "before",
    "after",
    "after_message_id",
    "message_id",
    "messageid",
    "id",
    "chunkindex",
    "totalchunks",
    "sequence_number",
    "total_packets",
    "file_size",
    "mediasize",
    "size",
    "code",
    "rating",
    "upto",
    "index",
}
FLAGS = {"confirm", "typing", "membership", "add", "private", "binary"}
BYTES = {"data", "file_data"}


def typical_for(name: str) -> st.SearchStrategy:
    """What a real client puts in a field of this name (by its name)."""
    low = name.lower()
    choices: list = []
    if low in USERS:
        choices += ["alice", "bob"]
    if low in ROOMS:
        choices += ["lobby", "dm:alice:bob"]
    if low in NUMBERS:
        choices += [1, 2]
    if low in FLAGS:
        choices += [True, False]
    if low in BYTES:
        choices += ["aGVsbG8="]
    if "time" in low:
        choices += ["2024-01-01T00:00:00Z", 1700000000]
    if low in ("members", "invitees"):
        choices += [["bob"]]
    if low == "letter_frequencies":
        choices += [{"h": 1, "i": 1}]
    return st.sampled_from(choices or ["hi", "lobby", 1])


edges = st.sampled_from(
    [0, -1, 2**31, 2**62, 2**63 - 1, -(2**63), 2**64 - 1, 1e308, -1e308, 1.5, 1e-300, "", " ", "\u202e", "x" * 5000,
     "-1", "1e999", None, True, [], {}, [[[]]]]
)  # fmt: skip


@st.composite
def mutated(draw, names: list[str]) -> dict:
    """A body that looks valid (each field a typical value) but for one or two fields holding an edge or any value."""
    body = {n: draw(typical_for(n)) for n in names if draw(st.booleans())}
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        body[draw(st.sampled_from(names))] = draw(edges | values)
    return body


def frame_of(name: str, kind: str) -> st.SearchStrategy[dict]:
    """A frame of this kind: a body of the fields its handler reads, holding any values (or any JSON value)."""
    key, body, kinds = KINDS[name]
    names = kinds[kind]
    bodies = st.dictionaries(st.sampled_from(names), values, max_size=len(names)) | mutated(names) | json_values
    return st.fixed_dictionaries({key: st.just(kind), body: bodies}, optional={"timestamp": json_values})


def any_frame_of(name: str) -> st.SearchStrategy[dict]:
    key, body, kinds = KINDS[name]
    unknown = st.fixed_dictionaries({key: st.text(max_size=20), body: fields})
    return st.one_of(*[frame_of(name, kind) for kind in sorted(kinds)], unknown)


def new(name: str, logged_in: bool):
    """A dialect instance as a fresh connection has it, or as one logged in as alice (in room lobby)."""
    dialect = DIALECTS[name]()
    if logged_in:
        dialect.user = "alice"
        if name == "text":
            dialect.room = "lobby"
    return dialect


def decodes_cleanly(dialect, raw: bytes) -> None:
    try:
        request = dialect.decode(raw)
    except ChatError as e:
        assert isinstance(e.code, int) and e.code in errors.MESSAGES and isinstance(dialect.error(e), bytes)
        return
    assert isinstance(request, Request) and callable(request.reply) and callable(request.fail)
    refusal = request.fail(ChatError(errors.SERVER_ERROR))
    assert isinstance(refusal, list) and all(isinstance(f, bytes) for f in refusal)


def detects_cleanly(raw: bytes) -> None:
    try:
        dialect_for(raw)
    except ChatError as e:
        assert e.code in (errors.BAD_JSON, errors.BAD_FRAME)


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(name=st.sampled_from(sorted(DIALECTS)), logged_in=st.booleans(), raw=st.binary(max_size=300))
def test_any_bytes(name, logged_in, raw):
    detects_cleanly(raw)
    decodes_cleanly(new(name, logged_in), raw)


@SETTINGS
@given(name=st.sampled_from(sorted(DIALECTS)), logged_in=st.booleans(), value=json_values)
def test_any_json_value(name, logged_in, value):
    raw = orjson.dumps(value)
    detects_cleanly(raw)
    decodes_cleanly(new(name, logged_in), raw)


# examples per frame kind; CHATD_FUZZ_EXAMPLES=2000 (say) for a long run
EXAMPLES = int(os.environ.get("CHATD_FUZZ_EXAMPLES", "50"))


def every_kind(name: str):
    """A test of every frame kind of dialect `name` (EXAMPLES examples each), each field holding any value."""
    kinds = sorted(KINDS[name][2])

    @settings(max_examples=EXAMPLES * len(kinds), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data(), kind=st.sampled_from(kinds), logged_in=st.booleans())
    def test(data, kind, logged_in):
        raw = orjson.dumps(data.draw(frame_of(name, kind)))
        detects_cleanly(raw)
        decodes_cleanly(new(name, logged_in), raw)

    return test


test_every_typed_frame_with_any_values_in_its_fields = every_kind("typed")
test_every_action_frame_with_any_values_in_its_fields = every_kind("action")
test_every_events_frame_with_any_values_in_its_fields = every_kind("events")
test_every_colon_frame_with_any_values_in_its_fields = every_kind("colon")


text_args = st.lists(st.sampled_from(WORDS) | st.text(max_size=12) | st.integers().map(str), max_size=5)


@settings(max_examples=1000, deadline=None)
@given(command=st.sampled_from(TEXT_COMMANDS) | st.text(max_size=10), args=text_args, logged_in=st.booleans())
def test_text_commands_with_any_arguments(command, args, logged_in):
    line = " ".join([f"/{command}", *args]).encode("utf-8", "surrogatepass")
    decodes_cleanly(new("text", logged_in), line)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(KINDS)), frames=st.lists(st.data(), min_size=2, max_size=6))
def test_a_sequence_of_frames_on_one_connection(name, frames):
    """Dialects keep a little state per connection (a history sync, pending handshakes): frames in a row."""
    dialect = new(name, True)
    for data in frames:
        decodes_cleanly(dialect, orjson.dumps(data.draw(any_frame_of(name))))


# -- IRC (dialects/irc): lines, not JSON frames

IRC_COMMANDS = sorted(name[4:].upper() for name in dir(IrcDialect) if name.startswith("_on_"))
# what IRC parameters look like: channels, nicks, CAP and SASL words, numbers, texts (with spaces and colons)
irc_params = st.lists(
    st.sampled_from(["#lobby", "#a,#b", "alice", "bob", "*", "+", "PLAIN", "LS", "302", "REQ", "END", ":", "-i",
                     "sasl", "server-time", "AAAA" * 100, "#" + "x" * 80, "\x01ACTION waves\x01", "0", "-1"])
    | st.text(max_size=40),
    max_size=6,
)  # fmt: skip


def irc_dialect(registered: bool) -> IrcDialect:
    """An IRC dialect as a fresh connection has it, or as one registered as alice."""
    dialect = IrcDialect(IRC())
    if registered:
        dialect.decode(b"PASS secret")
        dialect.decode(b"NICK alice")
        dialect.decode(b"USER alice 0 * :Alice").reply((LoginResult("alice", "KEY"), []))
        assert dialect.registered
    return dialect


def irc_decodes_cleanly(dialect: IrcDialect, raw: bytes) -> None:
    """A Request or a ChatError; a Request's lines render, whether the dialect answers alone or the core refuses."""
    try:
        request = dialect.decode(raw)
    except ChatError as e:
        assert e.code in (errors.LINE_TOO_LONG, errors.BAD_FRAME) and isinstance(dialect.error(e), bytes)
        return
    assert isinstance(request, Request)
    frames = request.reply(None) if request.command is None else request.fail(ChatError(errors.SERVER_ERROR))
    assert isinstance(frames, list) and all(isinstance(f, bytes) for f in frames)


def irc_line(command: str, params: list[str]) -> bytes:
    words = [command, *params[:-1]] + ([":" + params[-1]] if params else [])
    return " ".join(words).encode("utf-8", "surrogatepass")


@SETTINGS
@given(registered=st.booleans(), raw=st.binary(max_size=600))
def test_irc_any_bytes(registered, raw):
    irc_decodes_cleanly(irc_dialect(registered), raw)
    with contextlib.suppress(BadLine, LineTooLong):
        parse(raw)


@settings(max_examples=EXAMPLES * 20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command=st.sampled_from(IRC_COMMANDS) | st.text(max_size=10), params=irc_params, registered=st.booleans(),
       tags=st.none() | st.text(max_size=60))  # fmt: skip
def test_every_irc_command_with_any_parameters(command, params, registered, tags):
    raw = irc_line(command, params)
    if tags is not None:
        raw = b"@" + tags.encode("utf-8", "surrogatepass") + b" " + raw
    irc_decodes_cleanly(irc_dialect(registered), raw)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.tuples(st.sampled_from(IRC_COMMANDS), irc_params), min_size=2, max_size=8))
def test_irc_lines_in_a_row_through_registration(lines):
    """CAP, PASS, NICK, USER and AUTHENTICATE keep state between lines: any of them in any order."""
    dialect = irc_dialect(False)
    for command, params in lines:
        irc_decodes_cleanly(dialect, irc_line(command, params))


# IRC's grammar: a middle parameter has no space (nor other whitespace, which twisted's parsemsg also splits on)
# and does not start with ":"; the last may hold anything but CR, LF and NUL.
no_controls = st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0")
middle = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=20).filter(
    lambda p: not p.startswith(":") and not any(ch.isspace() for ch in p)
)
tag_keys = st.from_regex(r"\A\+?[a-z][a-z0-9.-]{0,15}(/[a-z0-9-]{1,10})?\Z")


@settings(max_examples=EXAMPLES * 10, deadline=None)
@given(
    source=st.sampled_from(["", "chatd", "alice!alice@chatd"]),
    command=st.sampled_from(["PRIVMSG", "NOTICE", "JOIN", "PART", "MODE", "TOPIC", "CAP", "001", "353", "ERROR"]),
    middles=st.lists(middle, max_size=4),
    last=st.none() | st.text(no_controls, max_size=200),
    tags=st.dictionaries(tag_keys, st.text(no_controls, max_size=30), max_size=4),
)
def test_an_irc_line_round_trips(source, command, middles, last, tags):
    params = middles + ([] if last is None else [last])
    if last is not None and " " not in last and any(ch.isspace() for ch in last):
        return  # written bare, as RFC 1459 allows; twisted's parsemsg would split it at a tab or an NBSP
    raw = line(source, command, *params, tags=tags or None)
    body = raw.partition(b" ")[2] if tags else raw
    if len(body) > MAX_BODY_BYTES or len(raw) - len(body) > MAX_TAG_BYTES:
        return
    assert parse(raw) == Message(command, params, tags)


# -- Engine.IO (transports/engineio.py): packets and polling payloads

ENGINEIO_KINDS = range(engineio.OPEN, engineio.NOOP + 1)
text_data = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=EXAMPLES * 20, deadline=None)
@given(raw=st.text(max_size=200) | st.binary(max_size=200) | st.sampled_from("0123456b").map(lambda k: k + "AAA="))
def test_engineio_any_packet_decodes_or_is_a_protocol_error(raw):
    try:
        kind, data = engineio.decode_packet(raw)
    except ProtocolError:
        return
    assert kind in ENGINEIO_KINDS and isinstance(data, str | bytes)


@settings(max_examples=EXAMPLES * 20, deadline=None)
@given(body=st.binary(max_size=400) | st.lists(st.text(max_size=40), max_size=5).map(lambda p: "\x1e".join(p).encode()))
def test_engineio_any_polling_payload_decodes_or_is_a_protocol_error(body):
    try:
        packets = engineio.decode_payload(body)
    except ProtocolError:
        return
    assert packets and all(kind in ENGINEIO_KINDS for kind, _ in packets)


engineio_packets = st.tuples(st.sampled_from(ENGINEIO_KINDS), text_data) | st.tuples(
    st.just(engineio.MESSAGE), st.binary(max_size=200)
)


@settings(max_examples=EXAMPLES * 10, deadline=None)
@given(packet=engineio_packets)
def test_an_engineio_packet_round_trips_over_a_websocket_and_over_polling(packet):
    wire, binary = engineio.encode_packet(*packet)
    assert engineio.decode_packet(wire if binary else wire.decode("utf-8")) == packet  # a WebSocket message
    assert engineio.decode_packet(engineio.polling_form(wire, binary).decode("utf-8")) == packet


@settings(max_examples=EXAMPLES * 10, deadline=None)
@given(packets=st.lists(engineio_packets, min_size=1, max_size=6))
def test_engineio_packets_round_trip_in_a_polling_payload(packets):
    packets = [(k, d.replace("\x1e", "") if isinstance(d, str) else d) for k, d in packets]  # the separator
    assert engineio.decode_payload(engineio.encode_payload(engineio.encode_packet(*p) for p in packets)) == packets


# -- Socket.IO (transports/socketio.py): packets, their attachments

namespaces = st.just("/") | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters=","),
                                    max_size=30).map(lambda n: "/" + n)  # fmt: skip
socketio_heads = st.builds(
    lambda kind, count, ns, ack: f"{kind}{count}{'' if ns == '/' else ns + ','}{ack}",
    st.sampled_from("0123456") | st.text(max_size=1),
    st.sampled_from(["", "1-", "2-", "0-", "11-", "-", "x-", "9999999-"]),
    namespaces | st.text(max_size=10),
    st.sampled_from(["", "0", "12", "9" * 17, "x"]),
)


@settings(max_examples=EXAMPLES * 20, deadline=None)
@given(head=socketio_heads, data=st.none() | json_values.map(lambda v: orjson.dumps(v).decode()) | st.text(max_size=40),
       attachments=st.lists(st.binary(max_size=8), max_size=3))  # fmt: skip
def test_socketio_any_packet_decodes_or_is_a_protocol_error(head, data, attachments):
    try:
        packet = socketio.decode(head + (data or ""))
        socketio.reconstruct(packet.data, attachments)
    except ProtocolError:
        return
    assert packet.kind in range(socketio.CONNECT, socketio.BINARY_ACK + 1)


@SETTINGS
@given(text=st.text(max_size=300))
def test_socketio_any_text_decodes_or_is_a_protocol_error(text):
    with contextlib.suppress(ProtocolError):
        socketio.decode(text)


def no_placeholders(value) -> bool:
    """Whether `value` holds no object that looks like a binary placeholder (the protocol cannot tell them apart)."""
    if isinstance(value, list):
        return all(map(no_placeholders, value))
    if isinstance(value, dict):
        return "_placeholder" not in value and all(map(no_placeholders, value.values()))
    return True


socketio_values = st.recursive(
    scalars | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
).filter(no_placeholders)
event_names = st.text(max_size=20).filter(lambda name: name not in socketio.RESERVED_EVENTS)
ack_ids = st.integers(min_value=0, max_value=10**16 - 1)
socketio_packets = st.one_of(
    st.builds(socketio.Packet, st.just(socketio.CONNECT), namespaces,  # the auth payload: JSON, no attachments
              st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=4).filter(no_placeholders)),
    st.builds(socketio.Packet, st.just(socketio.DISCONNECT), namespaces),
    st.builds(socketio.Packet, st.just(socketio.EVENT), namespaces,
              st.builds(lambda name, args: [name, *args], event_names, st.lists(socketio_values, max_size=4)),
              st.none() | ack_ids),
    st.builds(socketio.Packet, st.just(socketio.ACK), namespaces, st.lists(socketio_values, max_size=4), ack_ids),
)  # fmt: skip


@settings(max_examples=EXAMPLES * 10, deadline=None)
@given(packet=socketio_packets)
def test_a_socketio_packet_round_trips_with_its_attachments(packet):
    text, *attachments = socketio.encode(packet)
    assert isinstance(text, str) and all(isinstance(a, bytes) for a in attachments)
    decoded = socketio.decode(text, max_attachments=len(attachments))
    assert decoded.attachments == len(attachments)
    kind = (
        {socketio.EVENT: socketio.BINARY_EVENT, socketio.ACK: socketio.BINARY_ACK}[packet.kind]
        if attachments
        else packet.kind
    )
    assert (decoded.kind, decoded.namespace, decoded.id) == (kind, packet.namespace, packet.id)
    assert socketio.reconstruct(decoded.data, attachments) == packet.data
