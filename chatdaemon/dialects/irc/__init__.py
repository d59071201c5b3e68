"""The IRC dialect: RFC 1459/2812 clients (irssi, WeeChat, HexChat, ...) on the chat core, with the
IRCv3 parts current clients use. docs/protocols/irc.md is the reference; in short:

    registration  CAP LS/REQ/LIST/END; PASS + NICK + USER (the nick is the chatd account), or SASL
                  PLAIN (AUTHENTICATE); the welcome (001-005, MOTD) then JOIN + NAMES of each room
                  and group the account is in. No events, and no offline replay, before it.
    rooms         #<room id> is a public room or a group; JOIN, PART, NAMES, WHO, TOPIC, LIST, MODE,
                  INVITE; a PRIVMSG to a nick is a direct message
    people        WHOIS, WHO nick, ISON, USERHOST, AWAY (the chatd status)
    the rest      PING/PONG, QUIT, MOTD, VERSION; anything else is 421

A connection keeps its registration here (caps chosen, PASS, NICK, USER, a SASL exchange) and
the nick it has. Every line is translated into core commands; what a command refuses comes back
as the numeric an IRC client expects (ERR_*), or else as a NOTICE naming the chatd code.
"""

import base64
import binascii
from collections.abc import Callable
from typing import Any

from twisted.words.protocols import irc
from twisted.words.protocols.irc import ctcpExtract

from ... import __version__, errors
from ...core import commands as c
from ...core.model import DIRECT, GROUP, ROOM_NAME, USER_NAME, Address, Room, Text
from ...errors import ChatError
from .. import Dialect, Request
from .encode import Encoder, closing
from .lines import (
    ERR_INPUTTOOLONG,
    ERR_INVALIDCAPCMD,
    ERR_SASLABORTED,
    ERR_SASLALREADY,
    ERR_SASLFAIL,
    ERR_SASLTOOLONG,
    MAX_BODY_BYTES,
    RPL_LOGGEDIN,
    RPL_SASLMECHS,
    RPL_SASLSUCCESS,
    RPL_TOPICWHOTIME,
    RPL_WHOISACCOUNT,
    BadLine,
    LineTooLong,
    Message,
    line,
    parse,
)

VERSION = f"chatd-{__version__}"
CAPS = ("away-notify", "echo-message", "message-tags", "sasl", "server-time")
CAP_VALUES = {"sasl": "PLAIN"}  # shown to CAP LS 302 clients
BEFORE_REGISTRATION = {"CAP", "PASS", "NICK", "USER", "AUTHENTICATE", "PING", "PONG", "QUIT"}
MAX_TARGETS = 4  # of one PRIVMSG or NOTICE
SASL_CHUNK = 400
MAX_SASL_BYTES = 4 * SASL_CHUNK
AWAY_CHARS = 64  # chatd's longest status
TOPIC_CHARS = 390
THROTTLED = (errors.TOO_MANY_ATTEMPTS, errors.TOO_MANY_REGISTRATIONS)  # core/throttle.py: "try again in N s"
ISUPPORT = (
    f"AWAYLEN={AWAY_CHARS}",
    "CASEMAPPING=ascii",
    "CHANLIMIT=#:",
    "CHANMODES=beI,,,int",
    "CHANNELLEN=65",
    "CHANTYPES=#",
    "NICKLEN=32",
    "PREFIX=(o)@",
    f"TARGMAX=JOIN:,PART:,PRIVMSG:{MAX_TARGETS},NOTICE:{MAX_TARGETS},NAMES:1,WHO:1,WHOIS:1,INVITE:1,LIST:",
    f"TOPICLEN={TOPIC_CHARS}",
    "LINELEN=512",
    "SAFELIST",
)


def _channel_name(name: str) -> str | None:
    """The room id a channel name stands for, or None if it cannot be one."""
    if name.startswith("#") and ROOM_NAME.fullmatch(name[1:]):
        return name[1:]
    return None


def _channel(room: Room) -> str:
    return "#" + room.id


class IrcDialect(Dialect):
    name = "irc"

    def __init__(self, options):
        """`options`: the [irc] section of the configuration (server_name, network, motd)."""
        self.options = options
        self.server: str = options.server_name
        self.nick = ""  # as the client asked (NICK); the account's name once registered
        self.user = ""  # the account logged in on this connection
        self.username = ""  # USER's first parameter
        self.password = ""  # PASS, until it is used
        self.caps: set[str] = set()
        self.negotiating = False  # a CAP exchange before registration: registration waits for CAP END
        self.registered = False
        self.ready = False
        self.umodes: set[str] = set()
        self._sasl: list[str] | None = None  # AUTHENTICATE PLAIN data so far, while an exchange runs
        self._encoder = Encoder(self.server)

    # -- what the session asks

    def greeting(self) -> list[bytes]:
        text = f"*** chatd {__version__}: log in with PASS <password> and NICK <your chatd name>, or SASL PLAIN"
        return [line(self.server, "NOTICE", "*", text)]

    def encode_event(self, event):
        return self._encoder.encode(event)

    def encode_personal(self, event) -> bytes | None:
        return self._encoder.personal(event, self.nick or "*")

    def error(self, error: ChatError) -> bytes:
        if error.code == errors.LINE_TOO_LONG:
            return self._num(ERR_INPUTTOOLONG, "Input line was too long (512 bytes with CRLF, tags apart)")
        if error.code == errors.NOT_LOGGED_IN:
            return self._num(irc.ERR_NOTREGISTERED, "You have not registered")
        return self._notice(f"{error.message} (chatd {error.code})")

    def farewell(self, error: ChatError) -> bytes:
        return closing(error.code, error.message)

    def decode(self, raw: bytes) -> Request:
        try:
            msg = parse(raw)
        except LineTooLong:
            raise ChatError(errors.LINE_TOO_LONG) from None
        except BadLine as e:
            raise ChatError(errors.BAD_FRAME, str(e)) from None
        if msg is None:
            return self._say()
        handler = getattr(self, "_on_" + msg.command.lower(), None)
        if handler is None:
            return self._say(self._num(irc.ERR_UNKNOWNCOMMAND, msg.command, "Unknown command"))
        if not self.registered and msg.command not in BEFORE_REGISTRATION:
            return self._say(self._num(irc.ERR_NOTREGISTERED, "You have not registered"))
        return handler(msg)

    # -- helpers

    def _num(self, numeric: str, *params: str) -> bytes:
        return line(self.server, numeric, self.nick or "*", *params)

    def _notice(self, text: str) -> bytes:
        return line(self.server, "NOTICE", self.nick or "*", text)

    def _refused(self, error: ChatError) -> list[bytes]:
        return [self._notice(f"{error.message} (chatd {error.code})")]

    def _say(self, *lines: bytes) -> Request:
        """An answer of the dialect alone (no command)."""
        return Request(None, lambda _: list(lines), self._refused)

    def _ask(self, command, reply: Callable[[Any], list[bytes]], fail=None, each: bool = False) -> Request:
        return Request(command, reply, fail or self._refused, each=each)

    def _need(self, msg: Message, n: int) -> Request | None:
        """461 if `msg` has fewer than `n` parameters."""
        if len(msg.params) < n or not msg.params[n - 1]:
            return self._say(self._num(irc.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters"))
        return None

    def _source(self) -> str:
        return f"{self.nick}!{self.nick}@{self.server}"

    def _caps_changed(self) -> None:
        caps = self.caps
        self._encoder = Encoder(self.server, "server-time" in caps, "message-tags" in caps, "away-notify" in caps)
        self.encoding = "irc " + " ".join(sorted(caps & {"server-time", "message-tags", "away-notify"}))

    def _each(self, commands: list, render: Callable[[Any, Any], list[bytes]], keys: list, early: list[bytes]):
        """Several commands answered one by one (`render(key, result or ChatError)`), after `early` lines."""
        if not commands:
            return self._say(*early)

        def reply(results) -> list[bytes]:
            out = list(early)
            for key, result in zip(keys, results, strict=True):
                out += render(key, result)
            return out

        return self._ask(tuple(commands), reply, each=True)

    def _each_channel(self, names: str, command: Callable[[str], Any], render: Callable[[Any, Any], list[bytes]]):
        """`command(room id)` for each channel of a comma-separated list, answered by `render(name, result)`;
        a name that is no channel is refused first."""
        early: list[bytes] = []
        commands, keys = [], []
        for name in names.split(","):
            room_id = _channel_name(name)
            if room_id is None:
                early += self._no_channel(name)
            else:
                commands.append(command(room_id))
                keys.append(name)
        return self._each(commands, render, keys, early)

    # -- registration

    def _on_cap(self, msg: Message) -> Request:
        p = msg.params
        sub = p[0].upper() if p else ""
        who = self.nick or "*"
        if sub in ("LS", "REQ") and not self.registered:
            self.negotiating = True
        if sub == "LS":
            modern = len(p) > 1 and p[1].isdigit() and int(p[1]) >= 302
            offered = [f"{cap}={CAP_VALUES[cap]}" if modern and cap in CAP_VALUES else cap for cap in CAPS]
            return self._say(line(self.server, "CAP", who, "LS", " ".join(offered)))
        if sub == "LIST":
            return self._say(line(self.server, "CAP", who, "LIST", " ".join(sorted(self.caps))))
        if sub == "REQ":
            asked = (p[1] if len(p) > 1 else "").split()
            if not asked or any(cap.lstrip("-") not in CAPS for cap in asked):
                return self._say(line(self.server, "CAP", who, "NAK", " ".join(asked)))
            for cap in asked:
                if cap.startswith("-"):
                    self.caps.discard(cap[1:])
                else:
                    self.caps.add(cap)
            self._caps_changed()
            return self._say(line(self.server, "CAP", who, "ACK", " ".join(asked)))
        if sub == "END":
            self.negotiating = False
            return self._register()
        return self._say(self._num(ERR_INVALIDCAPCMD, sub or "*", "Invalid CAP command"))

    def _on_pass(self, msg: Message) -> Request:
        if self.registered:
            return self._say(self._num(irc.ERR_ALREADYREGISTRED, "You may not reregister"))
        return self._need(msg, 1) or self._set_password(msg.params[0])

    def _set_password(self, password: str) -> Request:
        self.password = password
        return self._say()

    def _on_nick(self, msg: Message) -> Request:
        if not msg.params or not msg.params[0]:
            return self._say(self._num(irc.ERR_NONICKNAMEGIVEN, "No nickname given"))
        nick = msg.params[0]
        if self.registered:
            if nick == self.nick:
                return self._say()
            why = f"Your nick is your chatd account ({self.nick}); it cannot change"
            return self._say(self._num(irc.ERR_ERRONEUSNICKNAME, nick, why))
        if not USER_NAME.fullmatch(nick):
            why = "Erroneous nickname: a chatd name is 1-32 of A-Z a-z 0-9 _ . -"
            return self._say(self._num(irc.ERR_ERRONEUSNICKNAME, nick, why))
        self.nick = nick
        return self._register()

    def _on_user(self, msg: Message) -> Request:
        if self.registered:
            return self._say(self._num(irc.ERR_ALREADYREGISTRED, "You may not reregister"))
        missing = self._need(msg, 4)
        if missing is not None:
            return missing
        self.username = msg.params[0]
        return self._register()

    def _on_authenticate(self, msg: Message) -> Request:
        missing = self._need(msg, 1)
        if missing is not None:
            return missing
        arg = msg.params[0]
        if self.user:
            return self._say(self._num(ERR_SASLALREADY, "You have already authenticated using SASL"))
        if self._sasl is None:
            if arg.upper() != "PLAIN":
                return self._say(
                    self._num(RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms"),
                    self._num(ERR_SASLFAIL, "SASL authentication failed"),
                )
            self._sasl = []
            return self._say(line("", "AUTHENTICATE", "+"))
        if arg == "*":
            self._sasl = None
            return self._register(self._num(ERR_SASLABORTED, "SASL authentication aborted"))
        if arg != "+":
            self._sasl.append(arg)
        if sum(map(len, self._sasl)) > MAX_SASL_BYTES:
            self._sasl = None
            return self._register(self._num(ERR_SASLTOOLONG, "SASL message too long"))
        if len(arg) == SASL_CHUNK:
            return self._say()  # more follows
        data, self._sasl = "".join(self._sasl), None
        try:
            authzid, authcid, password = base64.b64decode(data, validate=True).decode("utf-8").split("\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return self._register(
                self._num(ERR_SASLFAIL, "SASL authentication failed: not PLAIN's authzid\\0authcid\\0passwd")
            )
        if authzid and authzid != authcid:
            return self._register(self._num(ERR_SASLFAIL, "SASL authentication failed: chatd logs in as oneself only"))

        def logged_in(result) -> list[bytes]:
            self.user = result.user
            return [
                self._num(RPL_LOGGEDIN, f"{self.nick or self.user}!{self.username or self.user}@{self.server}",
                          result.user, f"You are now logged in as {result.user}"),
                self._num(RPL_SASLSUCCESS, "SASL authentication successful"),
            ]  # fmt: skip

        def failed(error: ChatError) -> list[bytes]:
            why = f"{error.message} (chatd {error.code})" if error.code in THROTTLED else error.message
            return [self._num(ERR_SASLFAIL, f"SASL authentication failed: {why}")]

        return self._ask(c.Login(authcid, password), logged_in, failed)

    def _register(self, *early: bytes) -> Request:
        """Complete the registration if everything it needs has come (after `early` lines)."""
        if self.registered or self.negotiating or self._sasl is not None or not self.nick or not self.username:
            return self._say(*early)
        if self.user:
            command: c.Command | tuple[c.Command, ...] = c.ListRooms()
        elif self.password:
            command = (c.Login(self.nick, self.password), c.ListRooms())
            self.password = ""
        else:
            why = "Password required: PASS <your chatd password> before NICK and USER, or SASL PLAIN"
            request = self._say(*early, self._num(irc.ERR_PASSWDMISMATCH, why), closing(errors.NOT_LOGGED_IN, why))
            request.close = True
            return request

        def welcome(result) -> list[bytes]:
            return [*early, *self._welcome(result)]

        def refused(error: ChatError) -> list[bytes]:
            request.close = True
            if error.code in THROTTLED:  # not a wrong password: IRC servers say "Throttled" as they close
                why = f"Throttled: {error.message}"
                return [*early, self._notice(f"{why} (chatd {error.code})"), closing(error.code, why)]
            numeric = irc.ERR_YOUREBANNEDCREEP if error.code == errors.BANNED else irc.ERR_PASSWDMISMATCH
            return [
                *early,
                self._num(numeric, f"{error.message} (chatd {error.code})"),
                closing(error.code, error.message),
            ]

        request = self._ask(command, welcome, refused)
        return request

    def _welcome(self, result) -> list[bytes]:
        if isinstance(result, tuple):
            login, listings = result
            self.user = login.user
        else:
            listings = result
        out = []
        if self.nick != self.user:
            out.append(line(f"{self.nick}!{self.username}@{self.server}", "NICK", self.user))
        self.nick, self.registered, self.ready = self.user, True, True
        options = self.options
        out += [
            self._num(irc.RPL_WELCOME, f"Welcome to the {options.network} IRC network, {self._source()}"),
            self._num(irc.RPL_YOURHOST, f"Your host is {self.server}, running version {VERSION}"),
            self._num(irc.RPL_CREATED, f"This server runs chatd {__version__}"),
            line(self.server, irc.RPL_MYINFO, self.nick, self.server, VERSION, "i", "beIint"),
        ]
        tokens = [*ISUPPORT, f"NETWORK={options.network}"]
        for start in range(0, len(tokens), 12):
            out.append(self._num(irc.RPL_ISUPPORT, *tokens[start : start + 12], "are supported by this server"))
        out += self._motd()
        for listing in listings:
            if listing.joined and listing.room.kind != DIRECT:
                out += self._joined(listing.room)
        return out

    def _motd(self) -> list[bytes]:
        text = self.options.motd
        if not text.strip():
            return [self._num(irc.ERR_NOMOTD, "MOTD File is missing")]
        out = [self._num(irc.RPL_MOTDSTART, f"- {self.server} Message of the day -")]
        out += [self._num(irc.RPL_MOTD, f"- {text_line}") for text_line in text.splitlines()]
        return [*out, self._num(irc.RPL_ENDOFMOTD, "End of /MOTD command.")]

    # -- rooms

    def _joined(self, room: Room) -> list[bytes]:
        """What a client is told when it is in a channel: the JOIN, the topic, the names."""
        return [line(self._source(), "JOIN", _channel(room)), *self._topic(room, quiet=True), *self._names(room)]

    def _topic(self, room: Room, quiet: bool = False) -> list[bytes]:
        if not room.topic:
            return [] if quiet else [self._num(irc.RPL_NOTOPIC, _channel(room), "No topic is set")]
        return [
            self._num(irc.RPL_TOPIC, _channel(room), room.topic),
            self._num(RPL_TOPICWHOTIME, _channel(room), room.topic_by or self.server, str(room.topic_at // 1000)),
        ]

    def _names(self, room: Room) -> list[bytes]:
        name, kind = _channel(room), "*" if room.kind == GROUP else "="
        shown = [f"@{u}" if u == room.leader else u for u in sorted(room.members)]
        head = len(f":{self.server} {irc.RPL_NAMREPLY} {self.nick} {kind} {name} :".encode())
        out: list[bytes] = []
        batch: list[str] = []
        size = head
        for nick in shown:
            if batch and size + len(nick) + 1 > MAX_BODY_BYTES:
                out.append(self._num(irc.RPL_NAMREPLY, kind, name, " ".join(batch)))
                batch, size = [], head
            batch.append(nick)
            size += len(nick) + 1
        if batch:
            out.append(self._num(irc.RPL_NAMREPLY, kind, name, " ".join(batch)))
        return [*out, self._num(irc.RPL_ENDOFNAMES, name, "End of /NAMES list.")]

    def _no_channel(self, name: str) -> list[bytes]:
        return [self._num(irc.ERR_NOSUCHCHANNEL, name, "No such channel")]

    def _room_error(self, name: str, error: ChatError) -> list[bytes]:
        """What a refusal about a channel is, in numerics."""
        code = error.code
        if code in (errors.NO_SUCH_ROOM, errors.NAME_TAKEN, errors.BAD_NAME, errors.AMBIGUOUS_GROUP):
            return [self._num(irc.ERR_NOSUCHCHANNEL, name, error.message)]
        if code == errors.NOT_A_MEMBER:
            return [self._num(irc.ERR_NOTONCHANNEL, name, "You're not on that channel")]
        if code == errors.PRIVATE_ROOM:
            return [self._num(irc.ERR_INVITEONLYCHAN, name, f"Cannot join channel (+i): {error.message}")]
        if code == errors.NOT_LEADER:
            return [self._num(irc.ERR_CHANOPRIVSNEEDED, name, error.message)]
        return self._refused(error)

    def _on_join(self, msg: Message) -> Request:
        missing = self._need(msg, 1)
        if missing is not None:
            return missing

        def joined(name, result) -> list[bytes]:
            return self._room_error(name, result) if isinstance(result, ChatError) else self._joined(result)

        return self._each_channel(msg.params[0], c.JoinRoom, joined)

    def _on_part(self, msg: Message) -> Request:
        missing = self._need(msg, 1)
        if missing is not None:
            return missing
        reason = msg.params[1] if len(msg.params) > 1 else ""

        def parted(name, result) -> list[bytes]:
            if isinstance(result, ChatError):
                return self._room_error(name, result)
            return [line(self._source(), "PART", _channel(result), *([reason] if reason else []))]

        return self._each_channel(msg.params[0], c.LeaveRoom, parted)

    def _members(self, name: str, render: Callable[[Room, list], list[bytes]], end: list[bytes]) -> Request:
        """Members of the channel `name`, rendered; on a refusal only `end` (the end of an empty list)."""
        room_id = _channel_name(name)
        if room_id is None:
            return self._say(*end)
        return self._ask(c.Members(room_id), lambda result: render(*result), lambda e: end)

    def _on_names(self, msg: Message) -> Request:
        name = msg.params[0].split(",")[0] if msg.params else "*"
        return self._members(
            name, lambda room, _: self._names(room), [self._num(irc.RPL_ENDOFNAMES, name, "End of /NAMES list.")]
        )

    def _who_line(self, where: str, user: str, here: bool, operator: bool = False) -> bytes:
        flags = ("H" if here else "G") + ("@" if operator else "")
        return self._num(irc.RPL_WHOREPLY, where, user, self.server, self.server, user, flags, f"0 {user}")

    def _on_who(self, msg: Message) -> Request:
        mask = msg.params[0] if msg.params else "*"
        end = [self._num(irc.RPL_ENDOFWHO, mask, "End of /WHO list.")]
        if mask.startswith("#"):

            def listed(room: Room, members) -> list[bytes]:
                name = _channel(room)
                here = [
                    self._who_line(name, m.user, m.online and m.status == "online", m.user == room.leader)
                    for m in members
                ]
                return [*here, *end]

            return self._members(mask, listed, end)
        if not USER_NAME.fullmatch(mask):
            return self._say(*end)

        def found(p) -> list[bytes]:
            return [self._who_line("*", p.username, p.online and p.status == "online"), *end]

        return self._ask(c.UserInfo(mask), found, lambda e: end)

    def _on_whois(self, msg: Message) -> Request:
        if not msg.params:
            return self._say(self._num(irc.ERR_NONICKNAMEGIVEN, "No nickname given"))
        nick = msg.params[-1].split(",")[0]
        end = self._num(irc.RPL_ENDOFWHOIS, nick, "End of /WHOIS list.")

        def found(p) -> list[bytes]:
            out = [
                self._num(irc.RPL_WHOISUSER, p.username, p.username, self.server, "*", p.username),
                self._num(irc.RPL_WHOISSERVER, p.username, self.server, f"chatd {__version__}"),
                self._num(RPL_WHOISACCOUNT, p.username, p.username, "is logged in as"),
            ]
            if p.online and p.status != "online":
                out.append(self._num(irc.RPL_AWAY, p.username, p.status))
            elif p.friend and not p.online:
                out.append(self._num(irc.RPL_AWAY, p.username, "offline"))
            return [*out, end]

        def unknown(error: ChatError) -> list[bytes]:
            return [self._num(irc.ERR_NOSUCHNICK, nick, "No such nick/channel"), end]

        if not USER_NAME.fullmatch(nick):
            return self._say(*unknown(ChatError(errors.NO_SUCH_USER)))
        return self._ask(c.UserInfo(nick), found, unknown)

    def _on_topic(self, msg: Message) -> Request:
        missing = self._need(msg, 1)
        if missing is not None:
            return missing
        name = msg.params[0]
        room_id = _channel_name(name)
        if room_id is None:
            return self._say(*self._no_channel(name))
        fail = lambda e: self._room_error(name, e)  # noqa: E731
        if len(msg.params) < 2:
            return self._ask(c.Members(room_id), lambda result: self._topic(result[0]), fail)
        topic = msg.params[1][:TOPIC_CHARS]
        return self._ask(
            c.SetTopic(room_id, topic), lambda room: [line(self._source(), "TOPIC", _channel(room), room.topic)], fail
        )

    def _on_list(self, msg: Message) -> Request:
        wanted = set(msg.params[0].split(",")) if msg.params and msg.params[0].startswith("#") else None

        def listed(listings) -> list[bytes]:
            out = [self._num(irc.RPL_LISTSTART, "Channel", "Users  Name")]
            for listing in listings:
                room = listing.room
                if room.kind == DIRECT or (wanted is not None and _channel(room) not in wanted):
                    continue
                about = room.topic if room.kind != GROUP else f"[group: {room.name}] {room.topic}".rstrip()
                out.append(self._num(irc.RPL_LIST, _channel(room), str(listing.members), about))
            return [*out, self._num(irc.RPL_LISTEND, "End of /LIST")]

        return self._ask(c.ListRooms(), listed)

    def _on_mode(self, msg: Message) -> Request:
        missing = self._need(msg, 1)
        if missing is not None:
            return missing
        target, p = msg.params[0], msg.params
        if target.startswith("#"):
            if len(p) == 1:

                def shown(room: Room, _) -> list[bytes]:
                    return [self._num(irc.RPL_CHANNELMODEIS, _channel(room), "+int" if room.kind == GROUP else "+nt")]

                return self._members(target, shown, self._no_channel(target))
            ends = {"b": (irc.RPL_ENDOFBANLIST, "End of channel ban list"),
                    "e": (irc.RPL_ENDOFEXCEPTLIST, "End of channel exception list"),
                    "I": (irc.RPL_ENDOFINVITELIST, "End of channel invite list")}  # fmt: skip
            asked = p[1].lstrip("+")
            if len(p) == 2 and asked in ends:
                return self._say(self._num(ends[asked][0], target, ends[asked][1]))
            return self._say(self._num(irc.ERR_CHANOPRIVSNEEDED, target, "chatd keeps no channel modes"))
        if target != self.nick:
            return self._say(self._num(irc.ERR_USERSDONTMATCH, "Cant change mode for other users"))
        if len(p) == 1:
            return self._say(self._num(irc.RPL_UMODEIS, "+" + "".join(sorted(self.umodes))))
        adding, changed = True, ""
        for ch in p[1]:
            if ch in "+-":
                adding = ch == "+"
            elif ch != "i":
                return self._say(self._num(irc.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag"))
            elif adding != (ch in self.umodes):
                (self.umodes.add if adding else self.umodes.discard)(ch)
                changed += ("+" if adding else "-") + ch
        return self._say(line(self._source(), "MODE", self.nick, changed)) if changed else self._say()

    def _on_invite(self, msg: Message) -> Request:
        missing = self._need(msg, 2)
        if missing is not None:
            return missing
        nick, name = msg.params[0], msg.params[1]
        room_id = _channel_name(name)
        if room_id is None:
            return self._say(*self._no_channel(name))

        def refused(error: ChatError) -> list[bytes]:
            if error.code in (errors.NO_SUCH_USER, errors.FRIEND_USER_NOT_FOUND):
                return [self._num(irc.ERR_NOSUCHNICK, nick, "No such nick/channel")]
            if error.code == errors.ALREADY_MEMBER:
                return [self._num(irc.ERR_USERONCHANNEL, nick, name, "is already on channel")]
            return self._room_error(name, error)

        return self._ask(
            c.Invite(room_id, nick), lambda room: [self._num(irc.RPL_INVITING, nick, _channel(room))], refused
        )

    # -- messages

    def _on_privmsg(self, msg: Message) -> Request:
        return self._message(msg, "PRIVMSG")

    def _on_notice(self, msg: Message) -> Request:
        return self._message(msg, "NOTICE")

    def _message(self, msg: Message, command: str) -> Request:
        quiet = command == "NOTICE"  # RFC 1459: never an automatic answer to a NOTICE
        p = msg.params
        if not p or not p[0]:
            return (
                self._say() if quiet else self._say(self._num(irc.ERR_NORECIPIENT, f"No recipient given ({command})"))
            )
        if len(p) < 2 or not p[1]:
            return self._say() if quiet else self._say(self._num(irc.ERR_NOTEXTTOSEND, "No text to send"))
        targets, text = p[0].split(","), p[1]
        if len(targets) > MAX_TARGETS:
            return self._say(self._num(irc.ERR_TOOMANYTARGETS, p[0], f"Too many targets: at most {MAX_TARGETS}"))
        if text.startswith("\x01"):
            actions = [data for tag, data in ctcpExtract(text)["extended"] if tag == "ACTION"]
            if not actions:
                return self._say()  # other CTCP requests are not relayed
            text = "/me " + (actions[0] or "")
        early: list[bytes] = []
        commands, keys = [], []
        for target in targets:
            if target.startswith("#"):
                room_id = _channel_name(target)
                if room_id is None:
                    early += [] if quiet else self._no_channel(target)
                    continue
                address = Address.room(room_id)
            else:
                address = Address.user(target)
            commands.append(c.Send(address, Text(text)))
            keys.append(target)

        def sent(target, result) -> list[bytes]:
            if isinstance(result, ChatError):
                return [] if quiet else self._send_error(target, result)
            if "echo-message" in self.caps:
                echo = self._encoder.message(result.message, result.room, command)
                return [echo] if echo else []
            return []

        return self._each(commands, sent, keys, early)

    def _send_error(self, target: str, error: ChatError) -> list[bytes]:
        code = error.code
        if code == errors.NO_SUCH_USER:
            return [self._num(irc.ERR_NOSUCHNICK, target, "No such nick/channel")]
        if code in (errors.NO_SUCH_ROOM, errors.AMBIGUOUS_GROUP):
            return [self._num(irc.ERR_NOSUCHCHANNEL, target, error.message)]
        if code == errors.NOT_A_MEMBER:
            return [self._num(irc.ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel: join it first")]
        return [self._notice(f"{target}: {error.message} (chatd {code})")]

    # -- people

    def _on_away(self, msg: Message) -> Request:
        text = msg.params[0].strip() if msg.params else ""
        if not text:
            return self._ask(
                c.SetStatus("online"), lambda _: [self._num(irc.RPL_UNAWAY, "You are no longer marked as being away")]
            )
        return self._ask(
            c.SetStatus(text[:AWAY_CHARS]), lambda _: [self._num(irc.RPL_NOWAWAY, "You have been marked as being away")]
        )

    def _on_ison(self, msg: Message) -> Request:
        asked = " ".join(msg.params).split()

        def online(contacts) -> list[bytes]:
            here = {event.user for event in contacts}
            return [self._num(irc.RPL_ISON, " ".join(n for n in asked if n in here or n == self.nick))]

        return self._ask(c.OnlineContacts(), online)

    def _on_userhost(self, msg: Message) -> Request:
        mine = [f"{self.nick}=+{self.nick}@{self.server}" for n in msg.params[:5] if n == self.nick]
        return self._say(self._num(irc.RPL_USERHOST, " ".join(mine)))

    # -- the connection

    def _on_ping(self, msg: Message) -> Request:
        missing = self._need(msg, 1)
        return missing or self._say(line(self.server, "PONG", self.server, msg.params[0]))

    def _on_pong(self, msg: Message) -> Request:
        return self._say()

    def _on_quit(self, msg: Message) -> Request:
        reason = msg.params[0] if msg.params else "Client Quit"
        request = self._say(line("", "ERROR", f"Closing link: {self.nick or '*'} (Quit: {reason})"))
        request.close = True
        return request

    def _on_motd(self, msg: Message) -> Request:
        return self._say(*self._motd())

    def _on_version(self, msg: Message) -> Request:
        return self._say(self._num(irc.RPL_VERSION, VERSION, self.server, "chatd: one chat core, many dialects"))
