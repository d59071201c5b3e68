"""The typed translator on plain frames: frames in, commands out; events in, frames out."""

import orjson
import pytest

from chatdaemon import errors
from chatdaemon.core import commands as c
from chatdaemon.core.accounts import LoginResult
from chatdaemon.core.events import Invited, MemberJoined, MessagePosted, Notice, PresenceChanged
from chatdaemon.core.model import Address, Message, Room, Text
from chatdaemon.core.results import Sent
from chatdaemon.dialects import dialect_name
from chatdaemon.dialects.typed import TypedDialect
from chatdaemon.errors import ChatError


def frame(kind, **payload) -> bytes:
    return orjson.dumps({"type": kind, "timestamp": 1630000000, "payload": payload})


def decode(kind, **payload):
    return TypedDialect().decode(frame(kind, **payload))


def out(frames):
    [one] = frames
    parsed = orjson.loads(one)
    assert set(parsed) == {"type", "timestamp", "payload"} and isinstance(parsed["timestamp"], int)
    return parsed["type"], parsed["payload"]


def test_detection_per_the_contract():
    assert dialect_name(frame("LOGIN_REQUEST")) == "typed"
    assert dialect_name(b'{"action": "login", "data": {}}') == "action"
    assert dialect_name(b'{"type": "USER:LOGIN", "data": {}}') == "colon"
    assert dialect_name(b'{"event": "CLIENT_AUTH", "data": {}}') == "events"
    assert dialect_name(b"/login alice pw") == "text"
    assert dialect_name(b"   ") is None
    with pytest.raises(ChatError) as info:
        dialect_name(b'{"hello": 1}')
    assert info.value.code == errors.BAD_FRAME


def test_register_and_login_frames():
    request = decode("REGISTER_REQUEST", username="u", passwordHash="p")
    assert request.command == c.Register("u", "p")
    assert out(request.reply("u")) == ("REGISTER_RESPONSE", {"success": True, "code": 0, "username": "u"})
    kind, payload = out(request.fail(ChatError(errors.SERVER_ERROR)))
    assert (kind, payload["success"], payload["code"]) == ("REGISTER_RESPONSE", False, errors.REGISTER_SERVER_ERROR)
    login = decode("LOGIN_REQUEST", username="u", passwordHash="p")
    assert login.command == c.Login("u", "p")
    kind, payload = out(login.reply(LoginResult("u", "KEY")))
    assert (kind, payload["code"], payload["sessionKey"]) == ("LOGIN_RESPONSE", 0, "KEY")
    assert out(login.fail(ChatError(errors.SERVER_ERROR)))[1]["code"] == errors.LOGIN_SERVER_ERROR
    assert out(login.fail(ChatError(errors.INVALID_CREDENTIALS)))[1]["code"] == errors.INVALID_CREDENTIALS
    assert decode("LOGIN_REQUEST", sessionKey="KEY").command == c.Login(session_key="KEY")


def test_seed_000_auth_request_answers_auth_response_or_auth_error():
    request = decode("AUTH_REQUEST", username="u", password="p")
    assert request.command == c.Login("u", "p")
    assert out(request.reply(LoginResult("u", "K")))[0] == "AUTH_RESPONSE"
    kind, payload = out(request.fail(ChatError(errors.USER_NOT_FOUND)))
    assert (kind, payload["code"]) == ("AUTH_ERROR", errors.USER_NOT_FOUND)


def test_text_message_targets_ack_and_nack():
    to_user = decode("TEXT_MESSAGE", sender="a", receiver="b", content="hi", clientMessageId="x1")
    assert to_user.command == c.Send(Address("b"), Text("hi"), sender="a", client_id="x1")
    to_room = decode("TEXT_MESSAGE", room="lobby", content="hi")
    assert to_room.command == c.Send(Address.room("lobby"), Text("hi"))
    assert decode("TEXT_MESSAGE", room=None, receiver="b", content="hi").command == c.Send(Address("b"), Text("hi"))
    message = Message(7, "dm:a:b", "a", Text("hi"), 1630000000123)
    room = Room("dm:a:b", "direct", "dm:a:b", None, {"a", "b"})
    kind, payload = out(to_user.reply(Sent(message, room, room.members, lambda _: True)))
    assert (kind, payload) == (
        "MESSAGE_ACK",
        {"messageId": 7, "receiver": "b", "timestamp": 1630000000, "code": 0, "clientMessageId": "x1"},
    )
    kind, payload = out(to_user.fail(ChatError(errors.NO_SUCH_USER)))
    assert (kind, payload["code"], payload["clientMessageId"]) == ("MESSAGE_NACK", errors.NO_SUCH_USER, "x1")


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"not json", errors.BAD_JSON),
        (b"[1]", errors.BAD_FRAME),
        (b'{"payload": {}}', errors.BAD_FRAME),
        (b'{"type": "TEXT_MESSAGE", "payload": []}', errors.BAD_FIELD),
        (b'{"type": "TEXT_MESSAGE", "payload": {"receiver": "b"}}', errors.BAD_FIELD),
        (b'{"type": "TEXT_MESSAGE", "payload": {"receiver": ["b"], "content": "x"}}', errors.BAD_FIELD),
        (b'{"type": "REGISTER_REQUEST", "payload": {"username": "u"}}', errors.BAD_FIELD),
        (b'{"type": "WHATEVER", "payload": {}}', errors.UNKNOWN_TYPE),
        (b'{"type": "greeting", "payload": {}}', errors.UNKNOWN_TYPE),
        (b'{"type": "PING", "payload": {"x": NaN}}', errors.BAD_JSON),
        (b"[" * 5000, errors.BAD_JSON),
    ],
)
def test_bad_frames_raise_coded_errors(raw, code):
    dialect = TypedDialect()
    with pytest.raises(ChatError) as info:
        dialect.decode(raw)
    assert info.value.code == code
    kind, payload = out([dialect.error(info.value)])
    assert kind == "ERROR" and payload["code"] == code


def test_error_frames_name_the_type_they_answer_and_only_that():
    dialect = TypedDialect()
    with pytest.raises(ChatError) as info:
        dialect.decode(frame("NOT_A_TYPE", sender="a", receiver="b"))
    assert out([dialect.error(info.value)])[1]["originalType"] == "NOT_A_TYPE"
    # a later connection-level error does not inherit it
    _kind, payload = out([dialect.error(ChatError(errors.IDLE_TIMEOUT))])
    assert "originalType" not in payload


def test_ping_protocol_version_and_greeting_need_no_core():
    ping = decode("PING", n=1)
    assert ping.command is None and out(ping.reply(None)) == ("PONG", {"n": 1})
    version = decode("PROTOCOL_VERSION", version="2.0")
    assert out(version.reply(None))[1]["compatible"] is False
    kind, payload = out(TypedDialect().greeting())
    assert kind == "CONNECTION_ESTABLISHED" and payload["dialect"] == "typed"


def test_events_render_as_seed_frames():
    lobby = Room("lobby", "public", "lobby", None, {"a", "b"})
    dm = Room("dm:a:b", "direct", "dm:a:b", None, {"a", "b"})
    m = Message(3, "lobby", "a", Text("hello"), 1630000005000)
    encode = TypedDialect.encode_event
    kind, payload = out([encode(MessagePosted(message=m, room=lobby))])
    assert (kind, payload) == (
        "TEXT_MESSAGE",
        {
            "sender": "a",
            "receiver": "lobby",
            "room": "lobby",
            "content": "hello",
            "messageId": 3,
            "timestamp": 1630000005,
        },
    )
    kind, payload = out([encode(MessagePosted(message=Message(4, dm.id, "a", Text("psst"), 0), room=dm, offline=True))])
    assert (kind, payload["receiver"], "room" in payload) == ("OFFLINE_MESSAGE", "b", False)
    group = Room("crew", "group", "The Crew", "a", {"a", "b"})
    kind, payload = out([encode(MessagePosted(message=Message(5, "crew", "a", Text("hi crew"), 0), room=group))])
    assert (kind, payload["group"], payload["groupId"], payload["content"]) == (
        "GROUP_MESSAGE",
        "The Crew",
        "crew",
        "hi crew",
    )
    assert encode(PresenceChanged("a", True, "away", friend=False)) is None  # room presence: not seed 002's
    assert out([encode(PresenceChanged(user="a", online=True, status="away"))]) == (
        "USER_STATUS_UPDATE",
        {"username": "a", "status": "away"},
    )
    assert out([encode(PresenceChanged(user="a", online=False, status="offline"))]) == (
        "USER_LOGOUT",
        {"username": "a"},
    )
    assert out([encode(MemberJoined(room=lobby, user="b"))]) == (
        "USER_JOIN",
        {"username": "b", "receiver": "lobby", "room": "lobby"},
    )
    assert out([encode(Invited(room=group, inviter="a", invitee="b"))]) == (
        "GROUP_INVITE",
        {"sender": "a", "receiver": "b", "group": "The Crew", "groupId": "crew"},
    )
    assert out([encode(Notice(code=7012, text="bye"))]) == ("SERVER_NOTIFICATION", {"code": 7012, "message": "bye"})
