"""The text dialect: plain lines for a person at nc or telnet.

A line starting with "/" is a command; any other line is said in the current
room. Server lines start with "*" (information), "!" (an error, with its code)
or "[" (a message). docs/protocols/text.md lists every command.
"""

import re
import time

from .. import __version__, errors
from ..core import commands as c
from ..core.events import (
    FriendAnswered,
    FriendRemoved,
    FriendRequested,
    InviteAnswered,
    Invited,
    LeaderChanged,
    MemberJoined,
    MemberLeft,
    MessagePosted,
    MissedSummary,
    Notice,
    PresenceChanged,
    RoomRemoved,
    TopicChanged,
)
from ..core.model import Address, Body, Encrypted, Media, Message, Room, Text
from ..errors import ChatError
from . import Dialect, Request

HELP = """\
* commands:
*   /register NAME PASSWORD   create an account
*   /login NAME PASSWORD      log in (also: /login KEY, with a session key)
*   /join ROOM                join (or create) a public room and talk in it
*   /leave [ROOM]             leave a room (default: the current one)
*   /msg USER TEXT            send a private message
*   /history [ROOM|@USER] [N] the last N messages (default 20) of a room or conversation
*   /who [ROOM]               who is in a room, and who of them is online
*   /rooms                    your rooms and the public ones
*   /status TEXT              set your status (online, away, or anything short)
*   /create NAME [USER ...]   make a private group and invite friends to it
*   /invite USER [ROOM]       invite a friend to your group
*   /accept GROUP, /decline GROUP   answer an invitation
*   /leader GROUP USER        hand the lead of your group to a member
*   /disband GROUP            remove your group
*   /friend add|accept|reject|remove USER, /friends   friends (presence goes to friends)
*   /block USER, /unblock USER   stop (or again allow) a user's messages and requests
*   /info USER                what is known of a user
*   /ping [WORDS]             answered "* pong WORDS" (a line client's keepalive)
*   /logout, /quit, /help
* any other line is said in the current room"""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def _clean(text: str) -> str:
    """Text safe for a terminal: no escape sequences; continuation lines indented."""
    return _CONTROL.sub("\ufffd", text).replace("\n", "\n    ")


def _line(text: str) -> bytes:
    return text.encode("utf-8")


def _stamp(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))


def _body(body: Body) -> str:
    match body:
        case Text(text):
            return _clean(text)
        case Media(name=name, mime=mime, size=size):
            return f"sent a file: {_clean(name)} ({_clean(mime)}, {size} bytes)"
        case Encrypted():
            return "(an encrypted message)"
    return "(deleted)"


def _message_line(m: Message, room: Room, with_time: bool) -> str:
    where = "private" if room.kind == "direct" else f"#{room.id}"
    if with_time:
        where = f"{where} {_stamp(m.ts)}"
    return f"[{where}] <{m.sender}> {_body(m.body)}"


def encode_event(event) -> bytes | None:
    match event:
        case MessagePosted(offline=offline):
            return _line(_message_line(event.message, event.room, with_time=offline))
        case PresenceChanged(friend=False):
            return None  # presence goes to friends (seed 002's rule)
        case PresenceChanged(online=False):
            return _line(f"* {event.user} is offline")
        case PresenceChanged():
            return _line(
                f"* {event.user} is online"
                if event.status == "online"
                else f"* {event.user} is now: {_clean(event.status)}"
            )
        case MemberJoined():
            return _line(f"* {event.user} joined #{event.room.id}")
        case MemberLeft():
            return _line(f"* {event.user} left #{event.room.id}")
        case Invited():
            return _line(
                f'* {event.inviter} invites you to the group "{_clean(event.room.name)}": '
                f"/accept {event.room.id} or /decline {event.room.id}"
            )
        case FriendRequested():
            return _line(
                f"* {event.sender} wants to be your friend: /friend accept {event.sender} or /friend reject {event.sender}"
            )
        case FriendAnswered():
            return _line(f"* {event.receiver} {'accepted' if event.accepted else 'declined'} your friend request")
        case FriendRemoved():
            return _line(f"* {event.by} is no longer your friend")
        case InviteAnswered():
            verb = "accepted" if event.accepted else "declined"
            return _line(f"* {event.invitee} {verb} your invitation to #{event.room.id}")
        case RoomRemoved(operator=True):
            return _line(f"! {errors.ROOM_DELETED} #{event.room.id} was deleted by the operators")
        case RoomRemoved():
            return _line(f"* {event.by} removed the group #{event.room.id}")
        case TopicChanged(room=room) if room.topic:
            return _line(f"* {event.by} set the topic of #{room.id}: {_clean(room.topic)}")
        case TopicChanged():
            return _line(f"* {event.by} cleared the topic of #{event.room.id}")
        case LeaderChanged():
            return _line(f"* {event.leader} now leads #{event.room.id}")
        case MissedSummary():
            return _line(f"* while you were away: {event.messages} messages, {event.notices} notices")
        case Notice():
            return _line(f"! {event.code} {_clean(event.text)}")
    return None


def _room_arg(word: str) -> str:
    return word[1:] if word.startswith("#") else word


class TextDialect(Dialect):
    name = "text"
    encode_event = staticmethod(encode_event)

    def __init__(self):
        self.room = ""  # the current room, where plain lines go
        self.user = ""  # who logged in on this connection, as the replies said

    def greeting(self) -> list[bytes]:
        return [_line(f"* chatd {__version__}: /register NAME PASSWORD or /login NAME PASSWORD; /help for more")]

    def error(self, error: ChatError) -> bytes:
        return _line(f"! {error.code} {_clean(error.message)}")

    farewell = error

    def _advise(self, code: int, message: str) -> Request:
        """An answer that is an error line, without counting the line as a bad frame."""
        line = self.error(ChatError(code, message))
        return Request(None, lambda _: [line], self._errors)

    def _errors(self, error: ChatError) -> list[bytes]:
        return [self.error(error)]

    def _info(self, text: str):
        return lambda _: [_line(f"* {text}")]

    def decode(self, raw: bytes) -> Request:
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ChatError(errors.BAD_JSON, "lines must be UTF-8 text") from None
        if not line.startswith("/"):
            if not line:
                return Request(None, lambda _: [], self._errors)
            if not self.user:
                return self._advise(
                    errors.NOT_LOGGED_IN, "log in first: /login NAME PASSWORD (or /register NAME PASSWORD)"
                )
            if not self.room:
                return self._advise(errors.NOT_A_MEMBER, "join a room first: /join ROOM (or /msg USER TEXT)")
            return Request(c.Send(Address.room(self.room), Text(line)), lambda _: [], self._errors)
        word, _, rest = line[1:].partition(" ")
        handler = getattr(self, "_cmd_" + word.lower(), None) if word.isalpha() else None
        if handler is None:
            raise ChatError(errors.UNKNOWN_TYPE, f"unknown command /{word[:32]}; try /help")
        return handler(rest.strip())

    @staticmethod
    def _words(rest: str, usage: str) -> list[str]:
        """At least one word."""
        words = rest.split()
        if not words:
            raise ChatError(errors.BAD_FIELD, f"usage: {usage}")
        return words

    @staticmethod
    def _word_and_text(rest: str, usage: str) -> tuple[str, str]:
        """A word, then the rest of the line (which may hold spaces)."""
        words = rest.split(None, 1)
        if len(words) < 2:
            raise ChatError(errors.BAD_FIELD, f"usage: {usage}")
        return words[0], words[1]

    # -- accounts

    def _cmd_ping(self, rest: str) -> Request:
        """`/ping [WORDS]` -> `* pong [WORDS]`: proves every earlier line was handled; keeps an idle connection alive."""
        return Request(None, lambda _: [_line(f"* pong {_clean(rest)}".rstrip())], self._errors)

    def _cmd_help(self, rest: str) -> Request:
        return Request(None, lambda _: [_line(HELP)], self._errors)

    def _cmd_register(self, rest: str) -> Request:
        name, password = self._word_and_text(rest, "/register NAME PASSWORD")
        return Request(
            c.Register(name, password), self._info(f"registered {name}; now /login {name} PASSWORD"), self._errors
        )

    def token_login(self, key: str) -> Request:
        """A login by the session key given at a WebSocket handshake."""
        return self._cmd_login(key)

    def _cmd_login(self, rest: str) -> Request:
        words = rest.split(None, 1)
        if len(words) == 1:
            command = c.Login(session_key=words[0])
        else:
            name, password = self._word_and_text(rest, "/login NAME PASSWORD")
            command = c.Login(name, password)

        def welcome(result):
            self.user = result.user
            return [_line(f"* welcome, {result.user}! your session key: {result.session_key}")]

        return Request(command, welcome, self._errors)

    def _cmd_logout(self, rest: str) -> Request:
        def logged_out(user):
            self.room = self.user = ""
            return [_line(f"* logged out {user}")]

        return Request(c.Logout(), logged_out, self._errors)

    def _cmd_quit(self, rest: str) -> Request:
        return Request(None, lambda _: [_line("* bye")], self._errors, close=True)

    def _cmd_status(self, rest: str) -> Request:
        return Request(c.SetStatus(rest), lambda r: [_line(f"* your status is now: {_clean(r[1])}")], self._errors)

    # -- rooms

    def _cmd_join(self, rest: str) -> Request:
        room_id = _room_arg(self._words(rest, "/join ROOM")[0])

        def joined(room):
            self.room = room.id
            return [_line(f"* you are in #{room.id} ({len(room.members)} members); lines you type go there")]

        return Request(c.JoinRoom(room_id), joined, self._errors)

    def _cmd_leave(self, rest: str) -> Request:
        room_id = _room_arg(rest.split()[0]) if rest else self.room
        if not room_id:
            raise ChatError(errors.BAD_FIELD, "usage: /leave ROOM")

        def left(room):
            if self.room == room.id:
                self.room = ""
            return [_line(f"* you left #{room.id}")]

        return Request(c.LeaveRoom(room_id), left, self._errors)

    def _cmd_create(self, rest: str) -> Request:
        name, *invitees = self._words(rest, "/create NAME [USER ...]")

        def created(room):
            self.room = room.id
            return [_line(f"* created the private group #{room.id}; you lead it, /invite USER to add people")]

        return Request(c.CreateRoom(name, private=True, invitees=tuple(invitees)), created, self._errors)

    def _cmd_invite(self, rest: str) -> Request:
        words = self._words(rest, "/invite USER [ROOM]")
        user, room_id = words[0], _room_arg(words[1]) if len(words) > 1 else self.room
        return Request(c.Invite(room_id, user), self._info(f"invited {user} to #{room_id}"), self._errors)

    def _answer(self, rest: str, accept: bool) -> Request:
        room_id = _room_arg(self._words(rest, "/accept GROUP" if accept else "/decline GROUP")[0])

        def answered(room):
            if accept:
                self.room = room.id
                return [_line(f"* you are in #{room.id} ({len(room.members)} members)")]
            return [_line(f"* declined #{room.id}")]

        return Request(c.AnswerInvite(room_id, accept), answered, self._errors)

    def _cmd_accept(self, rest: str) -> Request:
        return self._answer(rest, True)

    def _cmd_decline(self, rest: str) -> Request:
        return self._answer(rest, False)

    def _cmd_who(self, rest: str) -> Request:
        room_id = _room_arg(rest.split()[0]) if rest else self.room
        if not room_id:
            raise ChatError(errors.BAD_FIELD, "usage: /who ROOM")

        def listed(result):
            room, members = result
            names = ", ".join(f"{m.user}{'' if m.online else ' (offline)'}" for m in members)
            return [_line(f"* #{room.id}: {names or 'nobody'}")]

        return Request(c.Members(room_id), listed, self._errors)

    def _cmd_rooms(self, rest: str) -> Request:
        def listed(listings):
            if not listings:
                return [_line("* no rooms yet: /join ROOM makes one")]
            return [_line(self._listing(e.room, e.members, e.online)) for e in listings]

        return Request(c.ListRooms(), listed, self._errors)

    def _listing(self, room: Room, members: int, online: int) -> str:
        if room.kind == "direct":
            return f"* @{room.peer_of(self.user)} (direct)"
        return f"* #{room.id} ({room.kind}, {members} members, {online} online)"

    def _cmd_leader(self, rest: str) -> Request:
        group, user = self._word_and_text(rest, "/leader GROUP USER")
        return Request(
            c.ChangeLeader(_room_arg(group), user.strip()),
            lambda r: [_line(f"* {user.strip()} now leads #{r.id}")],
            self._errors,
        )

    def _cmd_disband(self, rest: str) -> Request:
        group = _room_arg(self._words(rest, "/disband GROUP")[0])
        return Request(c.DeleteRoom(group), lambda r: [_line(f"* removed the group #{r.id}")], self._errors)

    # -- friends and blocks

    def _cmd_friend(self, rest: str) -> Request:
        usage = "/friend add|accept|reject|remove USER"
        action, user = self._word_and_text(rest, usage)
        user = user.strip()
        if action == "add":
            return Request(c.RequestFriend(user), self._info(f"friend request sent to {user}"), self._errors)
        if action in ("accept", "reject"):
            verb = "accepted" if action == "accept" else "rejected"
            return Request(
                c.AnswerFriend(user, action == "accept"), self._info(f"{verb} {user}'s friend request"), self._errors
            )
        if action == "remove":
            return Request(c.RemoveFriend(user), self._info(f"{user} is no longer your friend"), self._errors)
        raise ChatError(errors.BAD_FIELD, f"usage: {usage}")

    def _cmd_friends(self, rest: str) -> Request:
        def listed(friends):
            names = ", ".join(f"{name}{'' if online else ' (offline)'}" for name, online in friends)
            return [_line(f"* friends: {names or 'none yet: /friend add USER'}")]

        return Request(c.ListFriends(), listed, self._errors)

    def _cmd_block(self, rest: str) -> Request:
        user = self._words(rest, "/block USER")[0]
        return Request(c.Block(user), self._info(f"blocked {user}: you will not hear from them"), self._errors)

    def _cmd_unblock(self, rest: str) -> Request:
        user = self._words(rest, "/unblock USER")[0]
        return Request(c.Unblock(user), self._info(f"unblocked {user}"), self._errors)

    def _cmd_info(self, rest: str) -> Request:
        def info(p):
            state = ("online" if p.online else "offline") + (
                "" if p.status in ("online", "offline") else f", {_clean(p.status)}"
            )
            extra = "".join([", your friend" if p.friend else "", ", blocked by you" if p.blocked else ""])
            return [_line(f"* {p.username}: {state}{extra}")]

        return Request(c.UserInfo(self._words(rest, "/info USER")[0]), info, self._errors)

    # -- messages

    def _cmd_msg(self, rest: str) -> Request:
        user, text = self._word_and_text(rest, "/msg USER TEXT")
        return Request(
            c.Send(Address.user(user), Text(text)), lambda _: [_line(f"[to {user}] {_clean(text)}")], self._errors
        )

    def _cmd_history(self, rest: str) -> Request:
        words = rest.split()
        limit = 20
        if words and words[-1].isascii() and words[-1].isdigit():
            digits = words.pop().lstrip("0") or "0"
            limit = int(digits) if len(digits) <= 18 else 1 << 62  # (capped by history_page anyway)
        target = words[0] if words else self.room
        if not target or len(words) > 1:
            raise ChatError(errors.BAD_FIELD, "usage: /history [ROOM|@USER] [N]")
        where = Address.user(target[1:]) if target.startswith("@") else Address.room(_room_arg(target))

        def listed(page):
            lines = [_message_line(m, page.room, with_time=True) for m in page.messages]
            return [_line(line) for line in lines] or [_line("* no messages yet")]

        command = c.History(where, limit=limit)
        return Request(command, listed, self._errors)
