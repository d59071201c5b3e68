"""The text translator on plain lines."""

import pytest

from chatdaemon import errors
from chatdaemon.core import commands as c
from chatdaemon.core.accounts import LoginResult
from chatdaemon.core.events import MemberLeft, MessagePosted, Notice, PresenceChanged
from chatdaemon.core.model import Address, Message, Room, Text
from chatdaemon.core.results import Member, Page
from chatdaemon.dialects.text import TextDialect
from chatdaemon.errors import ChatError

LOBBY = Room("lobby", "public", "lobby", None, {"alice", "bob"})


def lines(frames) -> list[str]:
    return [f.decode("utf-8") for f in frames]


def logged_in(room: str = "") -> TextDialect:
    dialect = TextDialect()
    dialect.decode(b"/login alice pw").reply(LoginResult("alice", "KEY"))
    if room:
        dialect.decode(f"/join {room}".encode()).reply(Room(room, "public", room, None, {"alice"}))
    return dialect


def test_commands_become_core_commands():
    d = TextDialect()
    assert d.decode(b"/register alice s3cret pass").command == c.Register("alice", "s3cret pass")
    assert d.decode(b"/login alice pw").command == c.Login("alice", "pw")
    assert d.decode(b"/login SESSIONKEY").command == c.Login(session_key="SESSIONKEY")
    assert d.decode(b"/join #lobby").command == c.JoinRoom("lobby")
    assert d.decode(b"/msg bob hello there").command == c.Send(Address.user("bob"), Text("hello there"))
    assert d.decode(b"/history lobby 5").command == c.History(Address.room("lobby"), limit=5)
    assert d.decode(b"/history @bob").command == c.History(Address.user("bob"), limit=20)
    assert d.decode(b"/create crew ann ben").command == c.CreateRoom("crew", private=True, invitees=("ann", "ben"))
    assert d.decode(b"/invite ann crew").command == c.Invite("crew", "ann")
    assert d.decode(b"/accept #crew").command == c.AnswerInvite("crew", True)
    assert d.decode(b"/decline crew").command == c.AnswerInvite("crew", False)
    assert d.decode(b"/status out to lunch").command == c.SetStatus("out to lunch")
    assert d.decode(b"/rooms").command == c.ListRooms()
    assert d.decode(b"/LOGOUT").command == c.Logout()
    quit_ = d.decode(b"/quit")
    assert quit_.command is None and quit_.close and lines(quit_.reply(None)) == ["* bye"]


def test_plain_lines_go_to_the_current_room():
    d = logged_in("lobby")
    assert d.decode(b"  hello all  ").command == c.Send(Address.room("lobby"), Text("hello all"))
    assert d.decode(b"").command is None  # blank lines are ignored
    assert d.decode(b"/who").command == c.Members("lobby")
    assert d.decode(b"/leave").command == c.LeaveRoom("lobby")
    d.decode(b"/leave").reply(LOBBY)
    assert d.room == ""


@pytest.mark.parametrize(
    "line, code, state",
    [
        (b"/nosuch", errors.UNKNOWN_TYPE, "fresh"),
        (b"/msg bob", errors.BAD_FIELD, "fresh"),
        (b"/register alice", errors.BAD_FIELD, "fresh"),
        (b"/join", errors.BAD_FIELD, "fresh"),
        (b"/who", errors.BAD_FIELD, "logged in"),
        (b"/history", errors.BAD_FIELD, "logged in"),
        (b"\xff\xfe", errors.BAD_JSON, "fresh"),
    ],
)
def test_mistakes_get_coded_error_lines(line, code, state):
    d = TextDialect() if state == "fresh" else logged_in()
    with pytest.raises(ChatError) as info:
        d.decode(line)
    assert info.value.code == code
    assert lines([d.error(info.value)])[0].startswith(f"! {code} ")


@pytest.mark.parametrize("state, code", [("fresh", errors.NOT_LOGGED_IN), ("logged in", errors.NOT_A_MEMBER)])
def test_chatting_too_early_is_advice_not_a_bad_frame(state, code):
    d = TextDialect() if state == "fresh" else logged_in()
    request = d.decode(b"hello?")
    assert request.command is None
    assert lines(request.reply(None))[0].startswith(f"! {code} ")


def test_error_lines_are_cleaned_too():
    assert (
        TextDialect().error(ChatError(errors.NO_SUCH_ROOM, "no such room: \x1b[2J"))
        == "! 8002 no such room: \ufffd[2J".encode()
    )


def test_replies_and_events_read_well():
    d = logged_in()
    join = d.decode(b"/join lobby")
    assert lines(join.reply(LOBBY)) == ["* you are in #lobby (2 members); lines you type go there"]
    assert d.room == "lobby"
    who = d.decode(b"/who").reply((LOBBY, [Member("alice", True, "online"), Member("bob", False, "away")]))
    assert lines(who) == ["* #lobby: alice, bob (offline)"]
    m = Message(1, "lobby", "bob", Text("hi\nthere"), 1630000000000)
    encode = TextDialect.encode_event
    assert lines([encode(MessagePosted(message=m, room=LOBBY))]) == ["[#lobby] <bob> hi\n    there"]
    assert lines([encode(MessagePosted(message=m, room=LOBBY, offline=True))]) == [
        "[#lobby 2021-08-26 17:46] <bob> hi\n    there"
    ]
    dm = Room("dm:alice:bob", "direct", "dm:alice:bob", None, {"alice", "bob"})
    assert lines([encode(MessagePosted(message=Message(2, dm.id, "bob", Text("psst"), 0), room=dm))]) == [
        "[private] <bob> psst"
    ]
    assert lines([encode(PresenceChanged(user="bob", online=True, status="online"))]) == ["* bob is online"]
    assert lines([encode(PresenceChanged("bob", False, "offline"))]) == ["* bob is offline"]
    assert encode(PresenceChanged("bob", True, "online", friend=False)) is None  # presence goes to friends
    assert lines([encode(MemberLeft(room=LOBBY, user="bob"))]) == ["* bob left #lobby"]
    assert lines([encode(Notice(code=7012, text="server is shutting down"))]) == ["! 7012 server is shutting down"]
    history = d.decode(b"/history").reply(Page(LOBBY, [], {}, False, 0))
    assert lines(history) == ["* no messages yet"]


def test_terminal_escapes_from_other_users_are_neutralised():
    m = Message(1, "lobby", "eve", Text("\x1b]0;pwned\x07\x1b[2Jgone\r"), 0)
    [line] = lines([TextDialect.encode_event(MessagePosted(message=m, room=LOBBY))])
    assert "\x1b" not in line and "\x07" not in line and "\r" not in line
