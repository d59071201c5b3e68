"""What the core tells clients: one frozen value per happening, published through the bus to users.

Events carry no wire form: each session's dialect renders them (and the layer that fans an event out
encodes it once per dialect). `offline` marks what is replayed at login rather than delivered live.
"""

from dataclasses import dataclass
from typing import Any

from .model import Message, Room


@dataclass(frozen=True, slots=True)
class Event:
    pass


@dataclass(frozen=True, slots=True)
class MessagePosted(Event):
    message: Message
    room: Room
    offline: bool = False

    @property
    def receiver(self) -> str:
        """Seed 002's `receiver`: the room id, or for a direct message the addressee."""
        if self.room.kind == "direct":
            return self.room.peer_of(self.message.sender) or self.message.sender
        return self.room.id


@dataclass(frozen=True, slots=True)
class MessageEdited(Event):
    message: Message  # with its new body
    room: Room
    edited: int  # ms since the epoch


@dataclass(frozen=True, slots=True)
class MessageDeleted(Event):
    message: Message  # as it was
    room: Room
    by: str


@dataclass(frozen=True, slots=True)
class ReactionChanged(Event):
    message: Message
    room: Room
    user: str
    emoji: str
    added: bool


@dataclass(frozen=True, slots=True)
class ReadReceipt(Event):
    """`reader` has read everything up to `message` in `room`; sent to the message's author."""

    reader: str
    message: Message
    room: Room


@dataclass(frozen=True, slots=True)
class Typing(Event):
    """`user` started or stopped typing in `room` (a stop also comes by itself when a start expires)."""

    user: str
    room: Room
    typing: bool


@dataclass(frozen=True, slots=True)
class PresenceChanged(Event):
    """`user` came online, went offline or changed status. `friend`: told to a friend (seed 002's presence);
    otherwise to someone who shares a room with the user (room presence)."""

    user: str
    online: bool
    status: str
    friend: bool = True


@dataclass(frozen=True, slots=True)
class MemberJoined(Event):
    room: Room
    user: str


@dataclass(frozen=True, slots=True)
class MemberLeft(Event):
    room: Room
    user: str


@dataclass(frozen=True, slots=True)
class TopicChanged(Event):
    """`by` set the topic of `room` (its new topic is `room.topic`)."""

    room: Room
    by: str


@dataclass(frozen=True, slots=True)
class RoomAdded(Event):
    """A public room was made by `by` (told to everyone online, for their room lists)."""

    room: Room
    by: str


@dataclass(frozen=True, slots=True)
class RoomRemoved(Event):
    """A room was deleted by its leader or, with `operator`, by the operators."""

    room: Room
    by: str
    operator: bool = False


@dataclass(frozen=True, slots=True)
class LeaderChanged(Event):
    room: Room
    leader: str
    by: str


@dataclass(frozen=True, slots=True)
class Invited(Event):
    room: Room
    inviter: str
    invitee: str
    offline: bool = False


@dataclass(frozen=True, slots=True)
class InviteAnswered(Event):
    """An invitee's answer to a group invitation; sent to the inviter."""

    room: Room
    inviter: str
    invitee: str
    accepted: bool
    offline: bool = False


@dataclass(frozen=True, slots=True)
class FriendRequested(Event):
    sender: str
    receiver: str
    offline: bool = False


@dataclass(frozen=True, slots=True)
class FriendAnswered(Event):
    """The receiver's answer to `sender`'s friend request; sent to `sender`."""

    sender: str
    receiver: str
    accepted: bool
    offline: bool = False


@dataclass(frozen=True, slots=True)
class FriendRemoved(Event):
    """`by` ended the friendship with `friend`; sent to `friend`."""

    by: str
    friend: str
    offline: bool = False


@dataclass(frozen=True, slots=True)
class MetadataChanged(Event):
    """A user's own metadata (message_id 0) or a message's, changed by `user`."""

    user: str
    key: str
    value: Any
    message_id: int = 0


@dataclass(frozen=True, slots=True)
class MissedSummary(Event):
    """After a login replay: how much arrived while the user was away."""

    messages: int
    notices: int


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """A server notice: shutdown, a kick or ban, an operator broadcast."""

    code: int
    text: str
