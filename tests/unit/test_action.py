"""The action dialect's translator on plain dicts: letter frequencies, times, frames, the handshake state."""

import orjson
import pytest

from chatdaemon import errors
from chatdaemon.core import commands as c
from chatdaemon.core.events import MessagePosted, Notice, PresenceChanged
from chatdaemon.core.model import Address, Encrypted, Media, Message, Room, Text
from chatdaemon.core.results import Sent
from chatdaemon.dialects import dialect_for
from chatdaemon.dialects.action import MAX_PENDING, ActionDialect, iso, letter_frequencies, parse_time
from chatdaemon.errors import ChatError


def raw(action: str, **data) -> bytes:
    return orjson.dumps({"action": action, "data": data})


def frames(out: list[bytes]) -> list[dict]:
    return [orjson.loads(f) for f in out]


def test_letter_frequencies_count_casefolded_letters_of_any_script_and_nothing_else():
    assert letter_frequencies("Ærø Ünïcode ß") == {
        "c": 1,
        "d": 1,
        "e": 1,
        "ï": 1,
        "n": 1,
        "o": 1,
        "r": 1,
        "s": 2,
        "ü": 1,
        "æ": 1,
        "ø": 1,
    }
    assert letter_frequencies("Hello, World! 123 🙂") == {"d": 1, "e": 1, "h": 1, "l": 3, "o": 2, "r": 1, "w": 1}
    assert letter_frequencies("ÄÄä") == {"ä": 3}
    assert letter_frequencies("A\u0308") == {"ä": 1}  # decomposed input is NFC-normalised first
    assert letter_frequencies("ΣΣ") == {"σ": 2}  # noqa: RUF001 (casefold maps final and medial sigma alike)
    assert letter_frequencies("日本") == {"日": 1, "本": 1}
    assert letter_frequencies("42 ... !") == {}
    assert list(letter_frequencies("zyxa")) == ["a", "x", "y", "z"]


def test_times_are_iso_8601_utc():
    assert iso(1704110400000) == "2024-01-01T12:00:00Z"
    assert parse_time("2024-01-01T12:00:00Z") == 1704110400000
    assert parse_time("2024-01-01T13:00:00+01:00") == 1704110400000
    assert parse_time("2024-01-01T12:00:00") == 1704110400000  # no zone: UTC
    assert parse_time(None) == 0 and parse_time(1704110400) == 1704110400000
    for bad in ("yesterday", "", True, [], "9" * 100):
        with pytest.raises(ChatError) as e:
            parse_time(bad)
        assert e.value.code == errors.BAD_FIELD


def test_detection_picks_the_action_dialect():
    assert isinstance(dialect_for(raw("login", chatid="a", password="b")), ActionDialect)


def test_errors_carry_original_action_and_the_seeds_status():
    d = ActionDialect()
    for bad, code in (
        (b'{"action": "nope"}', errors.UNKNOWN_TYPE),
        (raw("send_message", room_id="x"), errors.BAD_FIELD),
        (b'{"action": "login", "data": 5}', errors.BAD_FIELD),
    ):
        with pytest.raises(ChatError) as e:
            d.decode(bad)
        out = orjson.loads(d.error(e.value))
        assert (out["action"], out["status"], out["code"]) == ("error", "error", code)
        assert out["original_action"] == orjson.loads(bad)["action"]
    with pytest.raises(ChatError) as e:
        d.decode(b'{"type": "x"}')
    assert e.value.code == errors.BAD_FRAME


def test_login_replies_in_the_seeds_words():
    d = ActionDialect()
    request = d.decode(raw("login", chatid="user123", password="password123"))
    assert request.command == c.Login("user123", "password123")
    assert frames(request.fail(ChatError(errors.INVALID_CREDENTIALS))) == [
        {
            "action": "login_fail",
            "status": "error",
            "message": "Invalid credentials or user already logged in",
            "code": 2001,
        }
    ]

    class Result:
        user, session_key = "user123", "unique_session_key"

    assert frames(request.reply(Result())) == [
        {
            "action": "login_success",
            "status": "success",
            "message": "Login successful",
            "data": {"chatid": "user123", "session_key": "unique_session_key"},
        }
    ]
    assert d.user == "user123"
    with pytest.raises(ChatError) as e:  # another user's chatid on this connection
        d.decode(raw("get_messages", chatid="someone", room_id="r"))
    assert e.value.code == errors.BAD_FIELD


def test_the_handshake_state_confirm_refuse_expire():
    d = ActionDialect()
    send = d.decode(raw("send_message", chatid="", room_id="lobby", content="Hi Ünï"))
    lobby = Address("lobby", enter=True, create=True)
    assert send.command == c.Send(lobby, Text("Hi Ünï"), dry_run=True) and send.expires is not None
    [count] = frames(send.reply("lobby"))
    tx = count["data"]["transaction_id"]
    assert count == {
        "action": "character_count",
        "data": {
            "transaction_id": tx,
            "letter_frequencies": {"h": 1, "i": 1, "n": 1, "ï": 1, "ü": 1},
            "original_action": "send_message",
        },
    }
    # the client may count for itself: the server says whether it matches
    check = d.decode(
        raw("character_count", transaction_id=tx, letter_frequencies={"h": 1, "i": 1, "n": 1, "ï": 1, "ü": 1, "x": 0})
    )
    assert check.command is None and frames(check.reply(None))[0]["data"] == {"transaction_id": tx, "confirm": True}
    confirm = d.decode(raw("confirm_count", transaction_id=tx, confirm=True))
    assert confirm.command == c.Send(lobby, Text("Hi Ünï"))
    message = Message(7, "lobby", "alice", Text("Hi Ünï"), 1704110400000)
    [ack] = frames(confirm.reply(Sent(message, Room("lobby", "public", "lobby", None), set(), lambda _: False)))
    assert ack == {
        "action": "ack",
        "status": "success",
        "message": "Action processed successfully.",
        "data": {"transaction_id": tx, "message_id": 7, "room_id": "lobby", "timestamp": "2024-01-01T12:00:00Z"},
    }
    assert send.expires(30.0) == []  # confirmed: the deadline passes quietly
    with pytest.raises(ChatError) as e:
        d.decode(raw("confirm_count", transaction_id=tx, confirm=True))
    assert e.value.code == errors.NO_SUCH_TRANSACTION

    refused = d.decode(raw("send_message", room_id="lobby", content="no"))
    tx2 = frames(refused.reply("lobby"))[0]["data"]["transaction_id"]
    no = d.decode(raw("confirm_count", transaction_id=tx2, confirm=False))
    [err] = frames(no.reply(None))
    assert (err["original_action"], err["code"], err["data"]) == (
        "send_message",
        errors.COUNT_NOT_CONFIRMED,
        {"transaction_id": tx2},
    )

    late = d.decode(raw("send_message", room_id="lobby", content="late"))
    tx3 = frames(late.reply("lobby"))[0]["data"]["transaction_id"]
    [err] = frames(late.expires(0.5))
    assert (err["original_action"], err["code"], err["data"]) == (
        "send_message",
        errors.HANDSHAKE_TIMEOUT,
        {"transaction_id": tx3},
    )
    with pytest.raises(ChatError):
        d.decode(raw("confirm_count", transaction_id=tx3, confirm=True))
    with pytest.raises(ChatError) as e:
        d.decode(raw("confirm_count", transaction_id=tx3, confirm="yes"))
    assert e.value.code == errors.BAD_FIELD


def test_pending_handshakes_are_bounded():
    d = ActionDialect()
    for _ in range(MAX_PENDING):
        d.decode(raw("send_message", room_id="r", content="x")).reply("r")
    with pytest.raises(ChatError) as e:
        d.decode(raw("send_message", room_id="r", content="x"))
    assert e.value.code == errors.TOO_MANY_PENDING


def test_receiving_side_count_and_ack_name_the_message():
    d = ActionDialect()
    count = d.decode(
        raw("character_count", transaction_id="msg-42", letter_frequencies={"a": 1}, original_action="receive_message")
    )
    assert count.command == c.GetMessage(42)
    message = Message(42, "r", "bob", Text("A!"), 0)
    assert frames(count.reply((message, None))) == [
        {"action": "confirm_count", "data": {"transaction_id": "msg-42", "confirm": True}}
    ]
    assert d.decode(raw("ack", transaction_id="msg-42")).command == c.MarkRead(42)
    for bad in ("tx-1", "msg-", "msg-1x"):
        with pytest.raises(ChatError) as e:
            d.decode(raw("ack", transaction_id=bad))
        assert e.value.code == errors.NO_SUCH_TRANSACTION


def test_events_render_as_receive_message_and_receive_file():
    room = Room("lobby", "public", "lobby", None, {"alice", "bob"})
    text = MessagePosted(Message(3, "lobby", "alice", Text("Hello everyone!"), 1704110400000), room)
    assert orjson.loads(ActionDialect.encode_event(text)) == {
        "action": "receive_message",
        "status": "success",
        "message": "New message received.",
        "data": {
            "transaction_id": "msg-3",
            "room_id": "lobby",
            "sender_chatid": "alice",
            "content": "Hello everyone!",
            "timestamp": "2024-01-01T12:00:00Z",
            "message_id": 3,
        },
    }
    body = Media("ab" * 16, "uploaded_file.txt", "text/plain", 1024)
    media = MessagePosted(Message(4, "lobby", "alice", body, 1704110700000), room, offline=True)
    out = orjson.loads(ActionDialect.encode_event(media))
    assert (out["action"], out["message"]) == ("receive_file", "New file received.")
    assert out["data"] == {
        "room_id": "lobby",
        "sender_chatid": "alice",
        "file_path": "uploaded_file.txt",
        "file_size": 1024,
        "file_type": "text/plain",
        "file_id": "ab" * 16,
        "timestamp": "2024-01-01T12:05:00Z",
        "message_id": 4,
    }
    secret = MessagePosted(Message(5, "lobby", "alice", Encrypted({"ciphertext": "x"}), 0), room)
    assert ActionDialect.encode_event(secret) is None
    assert ActionDialect.encode_event(PresenceChanged("alice", True, "online")) is None


def test_file_frames_translate_sequence_numbers_from_0_to_the_cores_1():
    d = ActionDialect()
    init = d.decode(
        raw(
            "file_send_init",
            chat_id="",
            room_id="r",
            file_path="my_document.pdf",
            file_size=10,
            file_type="application/pdf",
            total_packets=2,
        )
    )
    room = Address("r", enter=True, create=True)
    assert init.command == c.StartUpload("r/my_document.pdf", room, "my_document.pdf", "application/pdf", 10, chunks=2)
    data = d.decode(
        raw("file_send_data", room_id="r", file_path="my_document.pdf", sequence_number=0, file_data="aGVsbG8=")
    )
    assert data.command == c.PutChunk("r/my_document.pdf", 1, b"hello", finish=False)
    assert frames(data.reply(1))[0]["data"]["sequence_number"] == 0
    [err] = frames(data.fail(ChatError(errors.BAD_CHUNK)))
    assert err["message"] == "sequence_number is outside 0..total_packets-1" and err["data"] == {"sequence_number": 0}
    fin = d.decode(raw("file_send_fin", room_id="r", file_path="my_document.pdf", total_packets=2))
    [err] = frames(fin.fail(ChatError(errors.INCOMPLETE_MEDIA, "x", missing=[2])))
    assert (err["original_action"], err["data"]["missing"]) == ("file_send_fin", [1])
    for bad in ({"sequence_number": -1, "file_data": ""}, {"sequence_number": 0, "file_data": "###"}):
        with pytest.raises(ChatError) as e:
            d.decode(raw("file_send_data", room_id="r", file_path="f", **bad))
        assert e.value.code == errors.BAD_CHUNK


def test_server_notices_reach_action_clients():
    frame = orjson.loads(ActionDialect.encode_event(Notice(7016, "maintenance at 22:00")))
    assert frame == {
        "action": "server_notification",
        "status": "success",
        "message": "maintenance at 22:00",
        "data": {"code": 7016},
    }
