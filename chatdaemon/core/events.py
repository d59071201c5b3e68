"""What the core tells clients: one value per happening, fanned out to users.

A session turns an event into bytes through its dialect; `encoded` caches the
bytes per dialect so that one event is encoded once per dialect, however many
recipients share that dialect.
"""

from dataclasses import dataclass, field

from .model import Message, Room


@dataclass(frozen=True)
class Event:
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def encoded(self, dialect) -> bytes | None:
        """This event as `dialect` renders it, computed once per dialect."""
        try:
            return self._cache[dialect.name]
        except KeyError:
            data = self._cache[dialect.name] = dialect.encode_event(self)
            return data


@dataclass(frozen=True)
class MessagePosted(Event):
    message: Message = None
    room: Room = None
    offline: bool = False  # replayed at login rather than delivered live

    @property
    def receiver(self) -> str:
        """The seed-002 `receiver`: the room id, or for a direct message the addressee."""
        if self.room.kind == "direct":
            return self.room.peer_of(self.message.sender)
        return self.room.id


@dataclass(frozen=True)
class PresenceChanged(Event):
    user: str = ""
    online: bool = True
    status: str = "online"


@dataclass(frozen=True)
class MemberJoined(Event):
    room: Room = None
    user: str = ""


@dataclass(frozen=True)
class MemberLeft(Event):
    room: Room = None
    user: str = ""


@dataclass(frozen=True)
class Invited(Event):
    room: Room = None
    inviter: str = ""
    invitee: str = ""
    offline: bool = False


@dataclass(frozen=True)
class Notice(Event):
    """A server notice: shutdown, a dropped connection's reason, an operator broadcast."""

    code: int = 0
    text: str = ""


@dataclass(frozen=True)
class FriendRequested(Event):
    sender: str = ""
    receiver: str = ""
    offline: bool = False


@dataclass(frozen=True)
class FriendAnswered(Event):
    """The receiver's answer to `sender`'s friend request; sent to `sender`."""

    sender: str = ""
    receiver: str = ""
    accepted: bool = False
    offline: bool = False


@dataclass(frozen=True)
class FriendRemoved(Event):
    """`by` ended the friendship with `friend`; sent to `friend`."""

    by: str = ""
    friend: str = ""
    offline: bool = False


@dataclass(frozen=True)
class InviteAnswered(Event):
    """An invitee's answer to a group invitation; sent to the inviter."""

    room: Room = None
    inviter: str = ""
    invitee: str = ""
    accepted: bool = False
    offline: bool = False


@dataclass(frozen=True)
class GroupRemoved(Event):
    room: Room = None
    by: str = ""


@dataclass(frozen=True)
class LeaderChanged(Event):
    room: Room = None
    leader: str = ""
    by: str = ""


@dataclass(frozen=True)
class Typing(Event):
    """`user` started or stopped typing in `room` (a direct conversation: to the peer)."""

    user: str = ""
    room: Room = None
    typing: bool = True


@dataclass(frozen=True)
class ReadReceipt(Event):
    reader: str = ""
    message: Message = None
    room: Room = None


@dataclass(frozen=True)
class MetadataChanged(Event):
    """A user's own metadata (message_id 0) or a message's, changed by `user`."""

    user: str = ""
    message_id: int = 0
    key: str = ""
    value: object = None


@dataclass(frozen=True)
class MissedSummary(Event):
    """After a login replay: how much arrived while the user was away."""

    messages: int = 0
    notices: int = 0
