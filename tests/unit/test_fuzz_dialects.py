"""Properties of every dialect's decoder, for any input: arbitrary bytes, arbitrary JSON values, and frames of each
dialect's own shape with its own field names holding arbitrary JSON values. A decoder returns a Request (whose
refusal renders as frames) or raises ChatError; any other exception is a bug. (The framing property is in
test_line.py.)"""

import inspect
import os
import pathlib
import re

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatdaemon import errors
from chatdaemon.dialects import DIALECTS, Request, dialect_for
from chatdaemon.errors import ChatError

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
