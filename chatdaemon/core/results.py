"""What commands return, where a plain value or an event would not say enough (see each command's docstring)."""

from collections.abc import Callable, Set
from dataclasses import dataclass, field
from typing import Any

from .model import FileRef, Message, Room


@dataclass(frozen=True, slots=True)
class LoginResult:
    user: str
    session_key: str


@dataclass(frozen=True, slots=True)
class Sent:
    """A committed message. `delivered` (computed when asked, at the reply) is who had a connection open."""

    message: Message
    room: Room
    recipients: Set[str]
    online: Callable[[str], bool]
    client_id: str = ""

    @property
    def delivered(self) -> tuple[str, ...]:
        sender = self.message.sender
        return tuple(sorted(u for u in self.recipients if u != sender and self.online(u)))


@dataclass(frozen=True, slots=True)
class Member:
    user: str
    online: bool
    status: str


@dataclass(frozen=True, slots=True)
class RoomListing:
    room: Room
    members: int
    online: int
    joined: bool


@dataclass(frozen=True, slots=True)
class Summary:
    room: Room
    last: Message | None
    unread: int


@dataclass(frozen=True, slots=True)
class Page:
    """Messages oldest first. `room` is None for a page of all the caller's conversations (`rooms` has each
    message's room). `more`: older messages exist (a newest-first page) or newer ones (a page after a bound);
    `next_after` is the id the next forward page starts after; `upto`, for a page of all conversations, the
    last id of the snapshot it pages through. `changes`: {id: {"edited", "deleted", "reactions"}}; `reads`:
    {user: the last id they read} in `room`."""

    room: Room | None
    messages: list[Message]
    rooms: dict[str, Room]
    more: bool
    next_after: int
    upto: int = 0
    changes: dict[int, dict[str, Any]] = field(default_factory=dict)
    reads: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Upload:
    """A file being received, chunk by chunk, into the file store."""

    id: str  # the server's, names its directory
    key: str  # the client's
    owner: str
    room: Room
    name: str
    mime: str
    size: int
    media: str
    touched: float
    total: int = 0
    chunks: dict[int, int] = field(default_factory=dict)  # index -> bytes
    received: int = 0  # bytes of the chunks stored: the sum of `chunks`, kept as they come

    def missing(self) -> list[int]:
        return [i for i in range(1, self.total + 1) if i not in self.chunks]


@dataclass(frozen=True, slots=True)
class ChunkResult:
    key: str
    index: int
    total: int
    missing: list[int]  # named when the last index came with chunks missing
    message: Message | None = None  # the posted media message, once complete
    file: FileRef | None = None


@dataclass(frozen=True, slots=True)
class Chunk:
    file: FileRef
    index: int
    total: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Profile:
    username: str
    online: bool
    status: str
    friend: bool
    blocked: bool
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FeedbackEntry:
    id: int
    user: str
    text: str
    rating: int | None
    ts: int  # ms since the epoch
