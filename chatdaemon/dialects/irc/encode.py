"""Core events as IRC lines.

What an IRC client is shown depends on the capabilities it chose (server-time, message-tags,
away-notify), so an Encoder is built per combination and its lines are shared by every connection
with the same one (the dialect's `encoding` names the combination). The few events that name
their recipient (a room removed: a KICK of you; server notices) are rendered per connection
(`personal`).

Users are `name!name@HOST` (HOST: the server's name); a public room or group is the channel
`#<room id>`; a direct conversation is a PRIVMSG between two nicks. Message bodies other dialects
send become readable lines, as the text dialect shows them; a text starting "/me " is a CTCP ACTION.
"""

from twisted.words.protocols.irc import ctcpStringify

from ... import errors
from ...core.events import (
    FriendAnswered,
    FriendRemoved,
    FriendRequested,
    InviteAnswered,
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
)
from ...core.model import DIRECT, Body, Encrypted, Media, Message, Room, Text
from .. import PERSONAL, Encoded
from .lines import MAX_BODY_BYTES, line, server_time, split_text, stamp

ACTION = "/me "


def body_text(body: Body) -> str:
    match body:
        case Text(text):
            return text
        case Media(name=name, mime=mime, size=size):
            return f"sent a file: {name} ({mime}, {size} bytes)"
        case Encrypted():
            return "(an encrypted message)"
    return "(deleted)"


def channel(room: Room) -> str:
    return "#" + room.id


class Encoder:
    def __init__(self, server: str, server_time: bool = False, msgid: bool = False, away_notify: bool = False):
        self.server = server
        self.server_time, self.msgid, self.away_notify = server_time, msgid, away_notify

    def source(self, user: str) -> str:
        return f"{user}!{user}@{self.server}"

    # -- messages

    def target(self, message: Message, room: Room) -> str:
        return room.peer_of(message.sender) or message.sender if room.kind == DIRECT else channel(room)

    def tags(self, message: Message) -> dict[str, str]:
        tags = {}
        if self.server_time:
            tags["time"] = server_time(message.ts)
        if self.msgid:
            tags["msgid"] = str(message.id)
        return tags

    def message(self, message: Message, room: Room, command: str = "PRIVMSG", history: bool = False) -> bytes | None:
        """A message as PRIVMSG (or NOTICE) lines; `history`: replayed, so stamped with its time (as a tag, or
        for a client without server-time at the head of the text)."""
        source, target = self.source(message.sender), self.target(message, room)
        text = body_text(message.body)
        if history and not self.server_time:
            text = f"[{stamp(message.ts)}] {text}"
        action = text.startswith(ACTION) and "\n" not in text
        if action:
            text = text[len(ACTION) :]
        head = len(f":{source} {command} {target} :".encode())
        budget = MAX_BODY_BYTES - head - (len("\x01ACTION \x01") if action else 0)
        tags = self.tags(message)
        lines = [
            line(source, command, target, ctcpStringify([("ACTION", piece)]) if action else piece, tags=tags)
            for piece in split_text(text, budget)
        ]
        return b"\r\n".join(lines) or None  # a message of blank lines: nothing

    # -- events

    def encode(self, event) -> Encoded:
        match event:
            case MessagePosted(offline=offline):
                return self.message(event.message, event.room, history=offline)
            case MessageEdited():
                m = event.message
                text = f"(edited) {body_text(m.body)}"
                return self._notice_lines(self.source(m.sender), self.target(m, event.room), text)
            case MessageDeleted():
                return self._notice_lines(
                    self.source(event.by), self.target(event.message, event.room), "(deleted a message)"
                )
            case PresenceChanged():
                if not self.away_notify:
                    return None
                if event.online and event.status == "online":
                    return line(self.source(event.user), "AWAY")
                return line(self.source(event.user), "AWAY", event.status if event.online else "offline")
            case MemberJoined():
                return None if event.room.kind == DIRECT else line(self.source(event.user), "JOIN", channel(event.room))
            case MemberLeft():
                return None if event.room.kind == DIRECT else line(self.source(event.user), "PART", channel(event.room))
            case TopicChanged():
                return line(self.source(event.by), "TOPIC", channel(event.room), event.room.topic)
            case LeaderChanged():
                modes = ("+o", event.leader) if event.by == event.leader else ("-o+o", event.by, event.leader)
                return line(self.server, "MODE", channel(event.room), *modes)
            case Invited():
                return line(self.source(event.inviter), "INVITE", event.invitee, channel(event.room))
            case InviteAnswered():
                verb = "accepted" if event.accepted else "declined"
                text = f"{event.invitee} {verb} your invitation to {channel(event.room)}"
                return line(self.server, "NOTICE", event.inviter, text)
            case FriendRequested():
                text = "wants to be your friend (IRC has no command for friends: answer from another chatd client)"
                return line(self.source(event.sender), "NOTICE", event.receiver, text)
            case FriendAnswered():
                verb = "accepted" if event.accepted else "declined"
                return line(self.source(event.receiver), "NOTICE", event.sender, f"{verb} your friend request")
            case FriendRemoved():
                return line(self.source(event.by), "NOTICE", event.friend, "is no longer your friend")
            case RoomRemoved() | MissedSummary() | Notice():
                return PERSONAL
        return None

    def _notice_lines(self, source: str, target: str, text: str) -> bytes | None:
        budget = MAX_BODY_BYTES - len(f":{source} NOTICE {target} :".encode())
        return b"\r\n".join(line(source, "NOTICE", target, piece) for piece in split_text(text, budget)) or None

    def personal(self, event, nick: str) -> bytes | None:
        """An event rendered for the connection of `nick`."""
        match event:
            case RoomRemoved():
                reason = "the operators deleted this room" if event.operator else "removed this group"
                source = self.server if event.operator else self.source(event.by)
                return line(source, "KICK", channel(event.room), nick, reason)
            case MissedSummary():
                text = f"while you were away: {event.messages} messages, {event.notices} notices"
                return line(self.server, "NOTICE", nick, text)
            case Notice(code=errors.ANNOUNCEMENT):
                return self._notice_lines(self.server, nick, event.text)
            case Notice():
                return closing(event.code, event.text)
        return None


def closing(code: int, text: str) -> bytes:
    """The last line before the server closes a connection."""
    return line("", "ERROR", f"Closing link: {text} (chatd {code})")
