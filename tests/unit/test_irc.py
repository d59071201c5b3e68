"""The IRC dialect, line by line: parsing and writing lines, registration (PASS/NICK/USER, CAP, SASL PLAIN),
each command's core command and its answer (success and refusal), events as lines, and a session on a
fake transport (nothing before the welcome)."""

import base64

import pytest
from twisted.internet.task import Clock

from chatdaemon import errors
from chatdaemon.config import IRC, Limits
from chatdaemon.core import commands as c
from chatdaemon.core.events import (
    FriendRequested,
    Invited,
    LeaderChanged,
    MemberJoined,
    MemberLeft,
    MessageDeleted,
    MessageEdited,
    MessagePosted,
    MissedSummary,
    Notice,
    PresenceChanged,
    RoomRemoved,
    TopicChanged,
    Typing,
)
from chatdaemon.core.model import Address, Encrypted, Media, Message, Room, Text
from chatdaemon.core.results import LoginResult, Member, Profile, RoomListing, Sent
from chatdaemon.dialects import PERSONAL
from chatdaemon.dialects.irc import IrcDialect
from chatdaemon.dialects.irc.lines import MAX_BODY_BYTES, BadLine, LineTooLong, line, parse, split_text
from chatdaemon.errors import ChatError
from chatdaemon.session import Flusher, Session
from tests.unit.test_session import FakeTransport, ScriptedCore

LOBBY = Room("lobby", "public", "lobby", None, {"alice", "bob"})
CLUB = Room("club", "group", "Book Club", "alice", {"alice", "bob"})
DM = Room("dm:alice:bob", "direct", "dm:alice:bob", None, {"alice", "bob"})
T = 1795286400000  # 2026-11-21T18:40:00Z, in ms


def dialect(**options) -> IrcDialect:
    return IrcDialect(IRC(**options))


def lines(frames: list[bytes]) -> list[str]:
    """Every line of a list of frames (a frame may hold several CRLF-separated lines)."""
    return [part for frame in frames for part in frame.decode().split("\r\n")]


def answer(d: IrcDialect, raw: bytes, result=None) -> list[str]:
    """The lines a line is answered with, given the core's result for its command."""
    return lines(d.decode(raw).reply(result))


def registered(nick: str = "alice", caps: str = "", **options) -> IrcDialect:
    d = dialect(**options)
    if caps:
        d.decode(b"CAP LS 302")
        d.decode(f"CAP REQ :{caps}".encode())
        d.decode(b"CAP END")
    d.decode(b"PASS secret")
    d.decode(f"NICK {nick}".encode())
    request = d.decode(b"USER u 0 * :Real Name")
    request.reply((LoginResult(nick, "KEY"), []))
    return d


# -- lines


def test_a_line_is_tags_then_rfc1459_prefix_command_and_parameters():
    msg = parse(b"@label=a\\sb\\:c;+draft/x :nick!u@h privmsg #lobby :hello  there")
    assert msg is not None
    assert (msg.command, msg.params, msg.tags) == (
        "PRIVMSG",
        ["#lobby", "hello  there"],
        {"label": "a b;c", "+draft/x": ""},
    )
    assert parse(b"") is None and parse(b"   ") is None  # empty lines are ignored
    assert parse(b"JOIN #a,#b key").params == ["#a,#b", "key"]
    assert parse(b"PRIVMSG #a ::-)").params == ["#a", ":-)"]
    assert parse("PRIVMSG #a :caf\xe9".encode("latin-1")).params[1] == "café"  # not UTF-8: read as Latin-1


@pytest.mark.parametrize("raw", [b":onlyaprefix", b'{"type": "LOGIN"}', b"PRIV MSG\x00", b"\x01"])
def test_what_is_not_an_irc_message_is_a_bad_line(raw):
    with pytest.raises(BadLine):
        parse(raw)


def test_a_line_may_be_512_bytes_with_its_crlf_and_its_tags_apart():
    parse(b"PRIVMSG #a :" + b"x" * (MAX_BODY_BYTES - 12))
    parse(b"@" + b"t" * 4000 + b" PRIVMSG #a :" + b"x" * (MAX_BODY_BYTES - 13))
    with pytest.raises(LineTooLong):
        parse(b"PRIVMSG #a :" + b"x" * (MAX_BODY_BYTES - 11))
    with pytest.raises(LineTooLong):
        parse(b"@" + b"t" * 4100 + b" PING x")


def test_lines_are_written_with_a_trailing_parameter_only_where_needed():
    assert line("chatd", "001", "alice", "Welcome here") == b":chatd 001 alice :Welcome here"
    assert line("a!a@chatd", "JOIN", "#lobby") == b":a!a@chatd JOIN #lobby"
    assert line("", "PONG", "chatd", "") == b"PONG chatd :"
    assert line("s", "PRIVMSG", "#a", "one\r\ntwo\nthree") == b":s PRIVMSG #a :one two three"  # never a line end
    assert line("s", "TAGMSG", "#a", tags={"time": "x y", "msgid": "1"}) == b"@time=x\\sy;msgid=1 :s TAGMSG #a"


def test_long_texts_are_split_within_the_byte_budget_and_never_inside_a_character():
    text = "é" * 300 + "\n\n" + "word " * 100
    pieces = split_text(text, 100)
    assert all(len(p.encode()) <= 100 for p in pieces)
    assert "".join(pieces[:6]) == "é" * 300  # 2-byte characters, 50 a piece
    assert all(not p.startswith(" ") for p in pieces)  # cut at spaces, which are dropped
    assert " ".join(pieces[6:]).split() == ["word"] * 100


# -- registration


def test_pass_nick_user_log_in_and_the_welcome_joins_the_rooms_one_is_in():
    d = dialect(server_name="irc.example", network="Example", motd="hi\nthere")
    assert d.greeting()[0].startswith(b":irc.example NOTICE * :*** chatd")
    assert d.decode(b"PASS :s3cret pw").command is None
    assert d.decode(b"NICK alice").command is None
    request = d.decode(b"USER al 0 * :Alice A")
    assert request.command == (c.Login("alice", "s3cret pw"), c.ListRooms())
    assert not d.ready  # no events before the welcome
    listings = [
        RoomListing(LOBBY, 2, 1, True),
        RoomListing(CLUB, 2, 1, True),
        RoomListing(Room("x", "public", "x", None), 0, 0, False),
    ]
    got = lines(request.reply((LoginResult("alice", "K"), listings)))
    assert d.ready and d.registered
    assert got[:4] == [
        ":irc.example 001 alice :Welcome to the Example IRC network, alice!alice@irc.example",
        ":irc.example 002 alice :Your host is irc.example, running version chatd-0.1.0",
        ":irc.example 003 alice :This server runs chatd 0.1.0",
        ":irc.example 004 alice irc.example chatd-0.1.0 i :beIint",
    ]
    isupport = " ".join(x for x in got if " 005 " in x)
    for token in ("CASEMAPPING=ascii", "CHANTYPES=#", "NICKLEN=32", "NETWORK=Example", "PREFIX=(o)@"):
        assert token in isupport
    assert [x for x in got if " 37" in x] == [
        ":irc.example 375 alice :- irc.example Message of the day -",
        ":irc.example 372 alice :- hi",
        ":irc.example 372 alice :- there",
        ":irc.example 376 alice :End of /MOTD command.",
    ]
    assert got[-6:] == [
        ":alice!alice@irc.example JOIN #lobby",
        ":irc.example 353 alice = #lobby :alice bob",
        ":irc.example 366 alice #lobby :End of /NAMES list.",
        ":alice!alice@irc.example JOIN #club",
        ":irc.example 353 alice * #club :@alice bob",  # a group is a private channel; its leader an op
        ":irc.example 366 alice #club :End of /NAMES list.",
    ]


def test_a_wrong_password_is_464_then_error_and_the_connection_closes():
    d = dialect()
    d.decode(b"PASS nope")
    d.decode(b"USER u 0 * :x")
    request = d.decode(b"NICK alice")  # NICK may come last
    assert request.command == (c.Login("alice", "nope"), c.ListRooms())
    got = lines(request.fail(ChatError(errors.INVALID_CREDENTIALS)))
    assert got == [
        ":chatd 464 alice :invalid credentials (chatd 2001)",
        "ERROR :Closing link: invalid credentials (chatd 2001)",
    ]
    assert request.close and not d.ready
    banned = dialect()
    banned.decode(b"PASS x")
    banned.decode(b"NICK bob")
    assert lines(banned.decode(b"USER u 0 * :x").fail(ChatError(errors.BANNED)))[0].startswith(":chatd 465 bob ")


def test_a_throttled_login_says_throttled_with_the_wait_and_closes():
    d = dialect()
    for raw in (b"PASS right", b"NICK alice"):
        d.decode(raw)
    request = d.decode(b"USER u 0 * :x")
    throttled = ChatError(errors.TOO_MANY_ATTEMPTS, "too many failed logins: try again in 60 s", retry_after=60)
    assert lines(request.fail(throttled)) == [
        ":chatd NOTICE alice :Throttled: too many failed logins: try again in 60 s (chatd 7030)",
        "ERROR :Closing link: Throttled: too many failed logins: try again in 60 s (chatd 7030)",
    ]
    assert request.close and not d.ready
    sasl = dialect()
    sasl.decode(b"NICK alice")
    sasl.decode(b"AUTHENTICATE PLAIN")
    failed = sasl.decode(f"AUTHENTICATE {_plain('', 'alice', 'right')}".encode()).fail(throttled)
    assert lines(failed) == [
        ":chatd 904 alice :SASL authentication failed: too many failed logins: try again in 60 s (chatd 7030)"
    ]


def test_without_a_password_registration_is_refused():
    d = dialect()
    d.decode(b"NICK alice")
    request = d.decode(b"USER u 0 * :x")
    assert request.command is None and request.close
    assert answer(d, b"USER u 0 * :x")[0].startswith(":chatd 464 alice :Password required")


def test_nicks_follow_chatd_names_and_cannot_change_once_registered():
    d = dialect()
    assert answer(d, b"NICK") == [":chatd 431 * :No nickname given"]
    assert answer(d, b"NICK [bot]") == [
        ":chatd 432 * [bot] :Erroneous nickname: a chatd name is 1-32 of A-Z a-z 0-9 _ . -"
    ]
    assert answer(d, b"NICK john.doe") == []  # '.' is fine: nicks are chatd names, as they are
    assert answer(d, b"USER a") == [":chatd 461 john.doe USER :Not enough parameters"]
    d = registered()
    assert answer(d, b"NICK alice") == []
    assert answer(d, b"NICK bob") == [":chatd 432 alice bob :Your nick is your chatd account (alice); it cannot change"]
    assert answer(d, b"USER u 0 * :x") == [":chatd 462 alice :You may not reregister"]


def test_commands_before_registration_get_451_and_unknown_ones_421():
    d = dialect()
    assert answer(d, b"JOIN #lobby") == [":chatd 451 * :You have not registered"]
    assert answer(d, b"FROB x") == [":chatd 421 * FROB :Unknown command"]
    assert answer(d, b"PING abc") == [":chatd PONG chatd abc"]
    assert answer(d, b"PONG abc") == []


def test_cap_negotiation_holds_registration_until_cap_end():
    d = dialect()
    assert answer(d, b"CAP LS") == [":chatd CAP * LS :away-notify echo-message message-tags sasl server-time"]
    assert answer(d, b"CAP LS 302") == [":chatd CAP * LS :away-notify echo-message message-tags sasl=PLAIN server-time"]
    d.decode(b"PASS pw")
    d.decode(b"NICK alice")
    assert d.decode(b"USER u 0 * :x").command is None  # waits for CAP END
    assert answer(d, b"CAP REQ :server-time sasl") == [":chatd CAP alice ACK :server-time sasl"]
    assert answer(d, b"CAP REQ :server-time batch") == [":chatd CAP alice NAK :server-time batch"]  # all or nothing
    assert answer(d, b"CAP REQ -sasl") == [":chatd CAP alice ACK :-sasl"]
    assert answer(d, b"CAP LIST") == [":chatd CAP alice LIST :server-time"]
    assert answer(d, b"CAP FOO") == [":chatd 410 alice FOO :Invalid CAP command"]
    assert d.decode(b"CAP END").command == (c.Login("alice", "pw"), c.ListRooms())


def _plain(authzid: str, authcid: str, password: str) -> str:
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()


def test_sasl_plain_logs_in_then_cap_end_welcomes():
    d = dialect()
    d.decode(b"CAP LS 302")
    d.decode(b"NICK al")
    d.decode(b"USER u 0 * :x")
    d.decode(b"CAP REQ sasl")
    assert answer(d, b"AUTHENTICATE PLAIN") == ["AUTHENTICATE +"]
    request = d.decode(f"AUTHENTICATE {_plain('', 'alice', 'pw')}".encode())
    assert request.command == c.Login("alice", "pw")
    assert lines(request.reply(LoginResult("alice", "K"))) == [
        ":chatd 900 al al!u@chatd alice :You are now logged in as alice",
        ":chatd 903 al :SASL authentication successful",
    ]
    assert not d.ready
    assert answer(d, b"AUTHENTICATE PLAIN") == [":chatd 907 al :You have already authenticated using SASL"]
    welcome = d.decode(b"CAP END")
    assert welcome.command == c.ListRooms()
    got = lines(welcome.reply([]))
    assert got[0] == ":al!u@chatd NICK alice"  # the nick becomes the account's name
    assert got[1].startswith(":chatd 001 alice ")


def test_sasl_refusals_and_long_payloads():
    d = dialect()
    d.decode(b"NICK alice")
    assert answer(d, b"AUTHENTICATE EXTERNAL") == [
        ":chatd 908 alice PLAIN :are available SASL mechanisms",
        ":chatd 904 alice :SASL authentication failed",
    ]
    d.decode(b"AUTHENTICATE PLAIN")
    failed = d.decode(f"AUTHENTICATE {_plain('', 'alice', 'bad')}".encode()).fail(ChatError(errors.INVALID_CREDENTIALS))
    assert lines(failed) == [":chatd 904 alice :SASL authentication failed: invalid credentials"]
    d.decode(b"AUTHENTICATE PLAIN")
    assert answer(d, f"AUTHENTICATE {_plain('bob', 'alice', 'pw')}".encode()) == [
        ":chatd 904 alice :SASL authentication failed: chatd logs in as oneself only"
    ]
    d.decode(b"AUTHENTICATE PLAIN")
    assert answer(d, b"AUTHENTICATE !!!") == [
        ":chatd 904 alice :SASL authentication failed: not PLAIN's authzid\\0authcid\\0passwd"
    ]
    d.decode(b"AUTHENTICATE PLAIN")
    assert answer(d, b"AUTHENTICATE *") == [":chatd 906 alice :SASL authentication aborted"]
    # a payload of exactly 400 bytes continues in the next line; "+" ends it
    payload = _plain("", "alice", "p" * 293)
    assert len(payload) == 400
    d.decode(b"AUTHENTICATE PLAIN")
    assert d.decode(f"AUTHENTICATE {payload}".encode()).command is None
    assert d.decode(b"AUTHENTICATE +").command == c.Login("alice", "p" * 293)
    d.decode(b"AUTHENTICATE PLAIN")
    for _ in range(4):
        assert d.decode(b"AUTHENTICATE " + b"A" * 400).command is None
    assert answer(d, b"AUTHENTICATE AAAA") == [":chatd 905 alice :SASL message too long"]


# -- rooms


def test_join_several_channels_answers_each():
    d = registered()
    request = d.decode(b"JOIN #lobby,#club,#secret,nohash,#dm:alice:bob")
    assert request.command == (c.JoinRoom("lobby"), c.JoinRoom("club"), c.JoinRoom("secret")) and request.each
    got = lines(request.reply((LOBBY, CLUB, ChatError(errors.PRIVATE_ROOM, "secret is private"))))
    assert got[:2] == [":chatd 403 alice nohash :No such channel", ":chatd 403 alice #dm:alice:bob :No such channel"]
    assert got[2:] == [
        ":alice!alice@chatd JOIN #lobby",
        ":chatd 353 alice = #lobby :alice bob",
        ":chatd 366 alice #lobby :End of /NAMES list.",
        ":alice!alice@chatd JOIN #club",
        ":chatd 353 alice * #club :@alice bob",
        ":chatd 366 alice #club :End of /NAMES list.",
        ":chatd 473 alice #secret :Cannot join channel (+i): secret is private",
    ]
    assert answer(d, b"JOIN") == [":chatd 461 alice JOIN :Not enough parameters"]


def test_join_shows_the_topic_and_long_name_lists_are_split():
    d = registered()
    big = Room(
        "big",
        "public",
        "big",
        None,
        {f"user{n:03d}" for n in range(200)},
        topic="all of us",
        topic_by="bob",
        topic_at=T,
    )
    got = answer(d, b"JOIN #big", (big,))
    assert got[1:3] == [":chatd 332 alice #big :all of us", ":chatd 333 alice #big bob :1795286400"]
    names = [x for x in got if " 353 " in x]
    assert len(names) > 1 and all(len(x.encode()) <= MAX_BODY_BYTES for x in names)
    assert sum(len(x.split(":")[2].split()) for x in names) == 200


def test_part():
    d = registered()
    request = d.decode(b"PART #lobby,#nope :see you")
    assert request.command == (c.LeaveRoom("lobby"), c.LeaveRoom("nope"))
    assert lines(request.reply((LOBBY, ChatError(errors.NOT_A_MEMBER)))) == [
        ":alice!alice@chatd PART #lobby :see you",
        ":chatd 442 alice #nope :You're not on that channel",
    ]
    assert answer(d, b"PART #club", (CLUB,)) == [":alice!alice@chatd PART #club"]


def test_names_who_and_mode_of_a_channel():
    d = registered()
    members = [Member("alice", True, "online"), Member("bob", True, "lunch"), Member("carol", False, "online")]
    names = d.decode(b"NAMES #club")
    assert names.command == c.Members("club")
    assert lines(names.reply((CLUB, members)))[-1] == ":chatd 366 alice #club :End of /NAMES list."
    assert lines(names.fail(ChatError(errors.NOT_A_MEMBER))) == [":chatd 366 alice #club :End of /NAMES list."]
    who = d.decode(b"WHO #club")
    assert who.command == c.Members("club")
    assert lines(who.reply((CLUB, members))) == [
        ":chatd 352 alice #club alice chatd chatd alice H@ :0 alice",  # here, and the group's leader
        ":chatd 352 alice #club bob chatd chatd bob G :0 bob",  # away (a status)
        ":chatd 352 alice #club carol chatd chatd carol G :0 carol",  # offline
        ":chatd 315 alice #club :End of /WHO list.",
    ]
    assert answer(d, b"WHO *.example") == [":chatd 315 alice *.example :End of /WHO list."]
    mode = d.decode(b"MODE #club")
    assert lines(mode.reply((CLUB, members))) == [":chatd 324 alice #club :+int"]
    assert answer(d, b"MODE #lobby", (LOBBY, [])) == [":chatd 324 alice #lobby :+nt"]
    assert answer(d, b"MODE #lobby +b") == [":chatd 368 alice #lobby :End of channel ban list"]
    assert answer(d, b"MODE #lobby +o bob") == [":chatd 482 alice #lobby :chatd keeps no channel modes"]


def test_topic_read_and_set():
    d = registered()
    read = d.decode(b"TOPIC #lobby")
    assert read.command == c.Members("lobby")
    assert lines(read.reply((LOBBY, []))) == [":chatd 331 alice #lobby :No topic is set"]
    set_it = d.decode(b"TOPIC #club :books, and more")
    assert set_it.command == c.SetTopic("club", "books, and more")
    room = Room("club", "group", "Book Club", "alice", {"alice"}, topic="books, and more")
    assert lines(set_it.reply(room)) == [":alice!alice@chatd TOPIC #club :books, and more"]
    assert lines(set_it.fail(ChatError(errors.NOT_LEADER, "only the leader"))) == [
        ":chatd 482 alice #club :only the leader"
    ]


def test_list_shows_public_rooms_and_ones_groups():
    d = registered()
    request = d.decode(b"LIST")
    assert request.command == c.ListRooms()
    listings = [
        RoomListing(Room("lobby", "public", "lobby", None, topic="hi"), 5, 2, True),
        RoomListing(CLUB, 2, 1, True),
        RoomListing(DM, 2, 2, True),
    ]
    assert lines(request.reply(listings)) == [
        ":chatd 321 alice Channel :Users  Name",
        ":chatd 322 alice #lobby 5 :hi",
        ":chatd 322 alice #club 2 :[group: Book Club]",
        ":chatd 323 alice :End of /LIST",
    ]
    assert lines(d.decode(b"LIST #club").reply(listings))[1:-1] == [":chatd 322 alice #club 2 :[group: Book Club]"]


def test_invite_to_a_group():
    d = registered()
    request = d.decode(b"INVITE bob #club")
    assert request.command == c.Invite("club", "bob")
    assert lines(request.reply(CLUB)) == [":chatd 341 alice bob :#club"]
    assert lines(request.fail(ChatError(errors.ALREADY_MEMBER))) == [
        ":chatd 443 alice bob #club :is already on channel"
    ]
    assert lines(request.fail(ChatError(errors.NOT_FRIENDS, "bob is not your friend"))) == [
        ":chatd NOTICE alice :bob is not your friend (chatd 8013)"
    ]


def test_user_modes_are_only_i():
    d = registered()
    assert answer(d, b"MODE alice") == [":chatd 221 alice :+"]
    assert answer(d, b"MODE alice +i") == [":alice!alice@chatd MODE alice +i"]
    assert answer(d, b"MODE alice +i") == []
    assert answer(d, b"MODE alice +w") == [":chatd 501 alice :Unknown MODE flag"]
    assert answer(d, b"MODE bob") == [":chatd 502 alice :Cant change mode for other users"]


# -- messages


def test_privmsg_to_channels_and_nicks():
    d = registered()
    request = d.decode(b"PRIVMSG #lobby,bob,#nope,carol :hello there")
    assert request.command == (
        c.Send(Address.room("lobby"), Text("hello there")),
        c.Send(Address.user("bob"), Text("hello there")),
        c.Send(Address.room("nope"), Text("hello there")),
        c.Send(Address.user("carol"), Text("hello there")),
    )
    sent = Sent(Message(7, "lobby", "alice", Text("hello there"), T), LOBBY, LOBBY.members, lambda _: True)
    outcome = (sent, sent, ChatError(errors.NOT_A_MEMBER), ChatError(errors.NO_SUCH_USER))
    assert lines(request.reply(outcome)) == [
        ":chatd 404 alice #nope :Cannot send to channel: join it first",
        ":chatd 401 alice carol :No such nick/channel",
    ]
    assert answer(d, b"PRIVMSG a,b,c,d,e :x") == [":chatd 407 alice a,b,c,d,e :Too many targets: at most 4"]
    assert answer(d, b"PRIVMSG") == [":chatd 411 alice :No recipient given (PRIVMSG)"]
    assert answer(d, b"PRIVMSG #lobby") == [":chatd 412 alice :No text to send"]
    assert answer(d, b"PRIVMSG #lobby :") == [":chatd 412 alice :No text to send"]


def test_notices_are_messages_that_are_never_answered_with_errors():
    d = registered()
    request = d.decode(b"NOTICE #nope,bob :psst")
    assert request.command == (c.Send(Address.room("nope"), Text("psst")), c.Send(Address.user("bob"), Text("psst")))
    assert lines(request.reply((ChatError(errors.NOT_A_MEMBER), ChatError(errors.SELF_MESSAGE)))) == []
    assert answer(d, b"NOTICE") == []


def test_ctcp_action_is_a_me_line_and_other_ctcp_is_not_relayed():
    d = registered()
    assert d.decode(b"PRIVMSG #lobby :\x01ACTION waves\x01").command == (
        c.Send(Address.room("lobby"), Text("/me waves")),
    )
    assert d.decode(b"PRIVMSG bob :\x01VERSION\x01").command is None


def test_echo_message_answers_a_send_with_the_message_as_stored():
    d = registered(caps="echo-message server-time message-tags")
    request = d.decode(b"PRIVMSG bob :hi")
    sent = Sent(Message(9, DM.id, "alice", Text("hi"), T), DM, DM.members, lambda _: True)
    assert lines(request.reply((sent,))) == [
        "@time=2026-11-21T18:40:00.000Z;msgid=9 :alice!alice@chatd PRIVMSG bob :hi"
    ]


def test_away_sets_the_chatd_status():
    d = registered()
    away = d.decode(b"AWAY :at lunch")
    assert away.command == c.SetStatus("at lunch")
    assert lines(away.reply(("alice", "at lunch"))) == [":chatd 306 alice :You have been marked as being away"]
    back = d.decode(b"AWAY")
    assert back.command == c.SetStatus("online")
    assert lines(back.reply(("alice", "online"))) == [":chatd 305 alice :You are no longer marked as being away"]
    assert d.decode(b"AWAY :" + b"z" * 100).command == c.SetStatus("z" * 64)


def test_whois_and_who_a_nick():
    d = registered()
    request = d.decode(b"WHOIS bob")
    assert request.command == c.UserInfo("bob")
    assert lines(request.reply(Profile("bob", True, "lunch", True, False, {}))) == [
        ":chatd 311 alice bob bob chatd * :bob",
        ":chatd 312 alice bob chatd :chatd 0.1.0",
        ":chatd 330 alice bob bob :is logged in as",
        ":chatd 301 alice bob :lunch",
        ":chatd 318 alice bob :End of /WHOIS list.",
    ]
    assert lines(request.fail(ChatError(errors.NO_SUCH_USER))) == [
        ":chatd 401 alice bob :No such nick/channel",
        ":chatd 318 alice bob :End of /WHOIS list.",
    ]
    assert answer(d, b"WHOIS")[0] == ":chatd 431 alice :No nickname given"
    who = d.decode(b"WHO bob")
    assert who.command == c.UserInfo("bob")
    assert (
        lines(who.reply(Profile("bob", True, "online", True, False, {})))[0]
        == ":chatd 352 alice * bob chatd chatd bob H :0 bob"
    )


def test_ison_userhost_version_motd_and_quit():
    d = registered()
    ison = d.decode(b"ISON bob carol alice")
    assert ison.command == c.OnlineContacts()
    assert lines(ison.reply([PresenceChanged("bob", True, "online")])) == [":chatd 303 alice :bob alice"]
    assert answer(d, b"USERHOST alice bob") == [":chatd 302 alice :alice=+alice@chatd"]
    assert answer(d, b"VERSION") == [":chatd 351 alice chatd-0.1.0 chatd :chatd: one chat core, many dialects"]
    assert answer(d, b"MOTD")[0] == ":chatd 375 alice :- chatd Message of the day -"
    assert registered(motd="").decode(b"MOTD").reply(None) == [b":chatd 422 alice :MOTD File is missing"]
    quit_ = d.decode(b"QUIT :bye now")
    assert quit_.close and lines(quit_.reply(None)) == ["ERROR :Closing link: alice (Quit: bye now)"]


def test_bad_lines_and_errors_in_irc_form():
    d = registered()
    with pytest.raises(ChatError) as e:
        d.decode(b"PRIVMSG #a :" + b"x" * 600)
    assert e.value.code == errors.LINE_TOO_LONG
    assert d.error(e.value) == b":chatd 417 alice :Input line was too long (512 bytes with CRLF, tags apart)"
    with pytest.raises(ChatError) as e:
        d.decode(b"\x01\x02")
    assert e.value.code == errors.BAD_FRAME
    assert d.error(ChatError(errors.NOT_LOGGED_IN)) == b":chatd 451 alice :You have not registered"
    assert d.farewell(ChatError(errors.IDLE_TIMEOUT, "idle")) == b"ERROR :Closing link: idle (chatd 7009)"


# -- events


def message(body, room=LOBBY, sender="bob", mid=5):
    return Message(mid, room.id, sender, body, T)


def encode(event, caps: str = "", nick: str = "alice") -> list[str]:
    d = registered(nick, caps)
    frame = d.encode_event(event)
    if frame is PERSONAL:
        frame = d.encode_personal(event)
    return lines([frame]) if frame else []


def test_messages_as_privmsg_lines():
    assert encode(MessagePosted(message(Text("hi all")), LOBBY)) == [":bob!bob@chatd PRIVMSG #lobby :hi all"]
    assert encode(MessagePosted(message(Text("psst"), DM), DM)) == [":bob!bob@chatd PRIVMSG alice :psst"]
    assert encode(MessagePosted(message(Text("/me waves")), LOBBY)) == [
        ":bob!bob@chatd PRIVMSG #lobby :\x01ACTION waves\x01"
    ]
    assert encode(MessagePosted(message(Text("one\ntwo")), LOBBY)) == [
        ":bob!bob@chatd PRIVMSG #lobby :one",
        ":bob!bob@chatd PRIVMSG #lobby :two",
    ]
    long = encode(MessagePosted(message(Text("ü" * 1000)), LOBBY))
    assert len(long) > 1 and all(len(x.encode()) <= MAX_BODY_BYTES for x in long)
    media = Media("f1", "cat.png", "image/png", 1234, "image")
    assert encode(MessagePosted(message(media), LOBBY)) == [
        ":bob!bob@chatd PRIVMSG #lobby :sent a file: cat.png (image/png, 1234 bytes)"
    ]
    assert encode(MessagePosted(message(Encrypted({"c": "x"})), LOBBY))[0].endswith(":(an encrypted message)")


def test_missed_messages_carry_their_time_as_a_tag_or_in_the_text():
    missed = MessagePosted(message(Text("while you slept")), LOBBY, offline=True)
    assert encode(missed) == [":bob!bob@chatd PRIVMSG #lobby :[2026-11-21 18:40] while you slept"]
    assert encode(missed, "server-time") == [
        "@time=2026-11-21T18:40:00.000Z :bob!bob@chatd PRIVMSG #lobby :while you slept"
    ]
    assert encode(missed, "message-tags")[0].startswith("@msgid=5 ")
    assert encode(MissedSummary(3, 1)) == [":chatd NOTICE alice :while you were away: 3 messages, 1 notices"]


def test_joins_parts_topics_leaders_invitations_and_presence():
    assert encode(MemberJoined(LOBBY, "carol")) == [":carol!carol@chatd JOIN #lobby"]
    assert encode(MemberLeft(CLUB, "bob")) == [":bob!bob@chatd PART #club"]
    assert encode(MemberJoined(DM, "bob")) == []
    topical = Room("lobby", "public", "lobby", None, topic="new topic")
    assert encode(TopicChanged(topical, "bob")) == [":bob!bob@chatd TOPIC #lobby :new topic"]
    assert encode(LeaderChanged(CLUB, "bob", "alice")) == [":chatd MODE #club -o+o alice bob"]
    assert encode(Invited(CLUB, "bob", "alice")) == [":bob!bob@chatd INVITE alice #club"]
    assert encode(PresenceChanged("bob", True, "lunch")) == []  # only with away-notify
    assert encode(PresenceChanged("bob", True, "lunch"), "away-notify") == [":bob!bob@chatd AWAY :lunch"]
    assert encode(PresenceChanged("bob", True, "online"), "away-notify") == [":bob!bob@chatd AWAY"]
    assert encode(PresenceChanged("bob", False, "offline", friend=False), "away-notify") == [
        ":bob!bob@chatd AWAY :offline"
    ]
    assert encode(FriendRequested("bob", "alice"))[0].startswith(":bob!bob@chatd NOTICE alice :wants to be your friend")
    assert encode(MessageEdited(message(Text("fixed")), LOBBY, T)) == [":bob!bob@chatd NOTICE #lobby :(edited) fixed"]
    assert encode(MessageDeleted(message(Text("x")), LOBBY, "bob")) == [
        ":bob!bob@chatd NOTICE #lobby :(deleted a message)"
    ]
    assert encode(Typing("bob", LOBBY, True)) == []


def test_a_removed_room_kicks_each_member_by_name():
    assert encode(RoomRemoved(CLUB, "bob"), nick="alice") == [":bob!bob@chatd KICK #club alice :removed this group"]
    assert encode(RoomRemoved(LOBBY, "admin", operator=True), nick="carol") == [
        ":chatd KICK #lobby carol :the operators deleted this room"
    ]
    assert encode(Notice(errors.ANNOUNCEMENT, "maintenance at 6"), nick="bob") == [
        ":chatd NOTICE bob :maintenance at 6"
    ]
    assert encode(Notice(errors.KICKED, "bye")) == ["ERROR :Closing link: bye (chatd 7014)"]


def test_connections_with_the_same_capabilities_share_encodings():
    plain, tagged, tagged_too = registered("a"), registered("b", "server-time"), registered("c", "server-time sasl")
    assert plain.encoding != tagged.encoding == tagged_too.encoding


# -- a session on a fake transport


def test_nothing_reaches_a_client_before_its_welcome_and_then_all_in_order():
    clock, core, transport = Clock(), ScriptedCore(), FakeTransport()
    session = Session(core, transport, Flusher(clock), Limits(), clock, "tcp", "test")
    session.start(dialect=IrcDialect(IRC()))
    session.frame_received(b"CAP LS 302")
    session.frame_received(b"NICK alice")
    session.frame_received(b"USER u 0 * :x")
    session.frame_received(b"CAP REQ sasl")
    session.frame_received(b"AUTHENTICATE PLAIN")
    session.frame_received(f"AUTHENTICATE {_plain('', 'alice', 'pw')}".encode())
    ((login, d),) = core.calls
    assert login == c.Login("alice", "pw")
    session.user = "alice"  # what the core does at a login (Delivery.attach): hold, then replay when writable
    session.hold()
    replay = session.writable()
    d.callback(LoginResult("alice", "K"))
    session.deliver(MessagePosted(message(Text("live")), LOBBY), {})
    clock.advance(0)
    assert not replay.called
    assert not [x for x in lines([f for w in transport.writes for f in w]) if "PRIVMSG" in x]
    session.frame_received(b"CAP END")
    core.calls[-1][1].callback([RoomListing(LOBBY, 2, 2, True)])
    assert replay.called  # the replay may begin: it comes after the welcome, and live events after it
    session.deliver(MessagePosted(message(Text("missed"), mid=2), LOBBY, offline=True), {})
    session.release()
    clock.advance(0)
    got = lines([f for w in transport.writes for f in w])
    assert got.index(":alice!alice@chatd JOIN #lobby") < got.index(
        ":bob!bob@chatd PRIVMSG #lobby :[2026-11-21 18:40] missed"
    )
    assert got[-1] == ":bob!bob@chatd PRIVMSG #lobby :live"


def irc_session():
    clock, core, transport = Clock(), ScriptedCore(), FakeTransport()
    session = Session(core, transport, Flusher(clock), Limits(), clock, "tcp", "test")
    session.start(dialect=IrcDialect(IRC()))
    return clock, core, transport, session


def written(transport: FakeTransport) -> list[str]:
    return lines([f for w in transport.writes for f in w])


def test_a_refused_registration_closes_the_connection_after_saying_why():
    clock, core, transport, session = irc_session()
    session.frame_received(b"PASS wrong")
    session.frame_received(b"NICK alice")
    session.frame_received(b"USER u 0 * :x")
    ((command, d),) = core.calls
    assert command == c.Login("alice", "wrong")
    d.errback(ChatError(errors.INVALID_CREDENTIALS))
    clock.advance(0)
    assert written(transport)[-2:] == [
        ":chatd 464 alice :invalid credentials (chatd 2001)",
        "ERROR :Closing link: invalid credentials (chatd 2001)",
    ]
    assert transport.closed and not session.open


def test_one_refused_channel_of_a_join_does_not_stop_the_others():
    clock, core, transport, session = irc_session()
    session.dialect.registered = session.dialect.ready = True
    session.dialect.nick = session.dialect.user = "alice"
    session.user = "alice"
    session.frame_received(b"JOIN #secret,#lobby")
    core.calls[0][1].errback(ChatError(errors.PRIVATE_ROOM, "secret is private"))
    assert [command for command, _ in core.calls] == [c.JoinRoom("secret"), c.JoinRoom("lobby")]
    core.calls[1][1].callback(LOBBY)
    clock.advance(0)
    assert written(transport)[1:3] == [
        ":chatd 473 alice #secret :Cannot join channel (+i): secret is private",
        ":alice!alice@chatd JOIN #lobby",
    ]


def test_holds_nest_what_is_held_leaves_at_the_last_release():
    clock, _core, transport, session = irc_session()  # not ready: one hold
    session.hold()  # a replay: another
    session.deliver(MessagePosted(message(Text("live")), LOBBY), {})
    session.release()
    clock.advance(0)
    assert not [x for x in written(transport) if "PRIVMSG" in x]
    session.release()
    clock.advance(0)
    assert written(transport)[-1] == ":bob!bob@chatd PRIVMSG #lobby :live"
