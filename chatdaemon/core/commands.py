"""Everything a client can ask of the core: one small frozen value per concept, and nowhere else.

Dialects map their frames onto these; `Core.execute` runs them. Two dialects offering the
same concept build the same command, so they get the same outcome (a read mark is a read mark,
whichever frame asked for it). Each command's docstring says what its handler returns.

Order on a connection: the session runs a client's commands in the order sent. A command that
is `pipelined` may start before the ones before it have finished (their writes still commit in
order); any other command waits until everything before it is done, and holds back what follows.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from .model import Address, Body


@dataclass(frozen=True, slots=True)
class Command:
    pipelined: ClassVar[bool] = False
    anonymous: ClassVar[bool] = False  # may run before a login


# -- accounts


@dataclass(frozen=True, slots=True)
class Register(Command):
    """Returns the new user's name."""

    anonymous: ClassVar[bool] = True
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Login(Command):
    """By password, or by a session key from an earlier login. Returns a LoginResult."""

    anonymous: ClassVar[bool] = True
    username: str = ""
    password: str = ""
    session_key: str = ""


@dataclass(frozen=True, slots=True)
class Logout(Command):
    """Ends this connection's login and revokes its key. Returns the user's name."""


@dataclass(frozen=True, slots=True)
class SetStatus(Command):
    """A custom status, told to whoever sees the user's presence. Returns (user, status)."""

    status: str


@dataclass(frozen=True, slots=True)
class OnlineContacts(Command):
    """Who of the people whose presence the caller sees is online now. Returns [PresenceChanged]."""


# -- rooms and groups


@dataclass(frozen=True, slots=True)
class JoinRoom(Command):
    """Join a public room (made on first use) or a group one is invited to; a room one is in is just returned.
    Returns the Room."""

    room: str


@dataclass(frozen=True, slots=True)
class LeaveRoom(Command):
    """Returns the Room."""

    room: str


@dataclass(frozen=True, slots=True)
class CreateRoom(Command):
    """A public room led by its creator, or (`private`) a group whose invitees must be the creator's friends.
    Returns the Room."""

    name: str
    private: bool = False
    invitees: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeleteRoom(Command):
    """By its leader (a group, or a public room with a creator), or by an operator (any room). Returns the Room."""

    room: str


@dataclass(frozen=True, slots=True)
class Invite(Command):
    """Returns the Room."""

    room: str
    user: str


@dataclass(frozen=True, slots=True)
class AnswerInvite(Command):
    """Returns the Room."""

    room: str
    accept: bool


@dataclass(frozen=True, slots=True)
class ChangeLeader(Command):
    """Returns the Room."""

    room: str
    leader: str


@dataclass(frozen=True, slots=True)
class SetTopic(Command):
    """What a public room or group is about ("" clears it); its members hear of it. Returns the Room."""

    room: str
    topic: str


@dataclass(frozen=True, slots=True)
class Members(Command):
    """Returns (Room, [Member]): who is in a room, and who of them is connected now."""

    room: str


@dataclass(frozen=True, slots=True)
class ListRooms(Command):
    """Every public room and every room the caller is in, by id. Returns [RoomListing]."""


@dataclass(frozen=True, slots=True)
class Conversations(Command):
    """The caller's rooms, newest activity first, with the last message and the unread count. Returns [Summary]."""


# -- messages


@dataclass(frozen=True, slots=True)
class Send(Command):
    """A message (Text, Encrypted, or Media naming a stored file) to an address. `sender`, if a frame names one,
    must be the caller. `client_id`, the client's own id for the message, makes the send idempotent: a resend
    of it within limits.resend_window returns the original's Sent and stores nothing (core/messages.py).
    `dry_run` checks everything and stores nothing (returns the Room). Otherwise returns a Sent, after the
    message is committed."""

    pipelined: ClassVar[bool] = True
    to: Address
    body: Body
    sender: str = ""
    client_id: str = ""
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Edit(Command):
    """A new text for one's own text message. Returns a MessageEdited."""

    message_id: int
    text: str


@dataclass(frozen=True, slots=True)
class Delete(Command):
    """By its author or the room's leader. Returns a MessageDeleted."""

    message_id: int


@dataclass(frozen=True, slots=True)
class React(Command):
    """Add (or remove) an emoji reaction. Returns a ReactionChanged."""

    message_id: int
    emoji: str
    add: bool = True


@dataclass(frozen=True, slots=True)
class History(Command):
    """A page of messages, oldest first, of one conversation (`where`) or of all the caller's (`where` None).

    Bounds, all optional: before a message id, after one (0: from the first), since a time (ms), up to an
    id. With neither `after` nor `since` the page is the newest (before `before`, if given); with either,
    the oldest after them. `limit` (at least 1) is capped by limits.history_page; bounds past 2**62 count as
    none. Negative bounds and a limit under 1 are refused (7004). Returns a Page."""

    where: Address | None = None
    before: int = 0
    after: int | None = None
    since: int | None = None
    upto: int = 0
    limit: int = 50


@dataclass(frozen=True, slots=True)
class GetMessage(Command):
    """One message the caller may see. Returns (Message, Room)."""

    pipelined: ClassVar[bool] = True
    message_id: int


@dataclass(frozen=True, slots=True)
class MarkRead(Command):
    """Everything up to this message, in its room, is read by the caller. Returns a ReadReceipt."""

    message_id: int


@dataclass(frozen=True, slots=True)
class SetTyping(Command):
    """Typing (or stopped) at an address; a start expires by itself after typing_seconds. Returns the Room."""

    pipelined: ClassVar[bool] = True
    where: Address
    typing: bool = True


# -- files


@dataclass(frozen=True, slots=True)
class StartUpload(Command):
    """Announce a file for an address; `key` is the client's own name for this upload (announcing it again
    resumes it). `chunks`: how many the client will send, if it says. With `data`, the whole file comes
    now: it is stored and posted at once (at most files.inline_max_bytes). Returns an Upload, or with
    `data` a ChunkResult."""

    key: str
    where: Address
    name: str
    mime: str
    size: int
    chunks: int = 0
    media: str = ""
    data: bytes | None = None


@dataclass(frozen=True, slots=True)
class PutChunk(Command):
    """Chunk `index` (1-based) of the upload `key`; sent again, it replaces itself. With `finish`, the chunk
    that completes the upload also stores and posts it; a last index with chunks missing names them.
    Returns a ChunkResult."""

    pipelined: ClassVar[bool] = True
    key: str
    index: int
    data: bytes
    total: int = 0
    finish: bool = True


@dataclass(frozen=True, slots=True)
class FinishUpload(Command):
    """Check every chunk arrived and the size matches, then store and post the file. Returns a ChunkResult."""

    key: str
    total: int


@dataclass(frozen=True, slots=True)
class ReadChunk(Command):
    """Chunk `index` (1-based, files.chunk_bytes each) of a stored file. Returns a Chunk."""

    pipelined: ClassVar[bool] = True
    file_id: str
    index: int


@dataclass(frozen=True, slots=True)
class FileInfo(Command):
    """A stored file the caller may read. Returns its FileRef."""

    pipelined: ClassVar[bool] = True
    file_id: str


@dataclass(frozen=True, slots=True)
class ListFiles(Command):
    """The files of a conversation, oldest first; with `name`, only those with that display name or id.
    Returns (Room, [FileRef])."""

    where: Address
    name: str = ""


# -- friends and blocks


@dataclass(frozen=True, slots=True)
class RequestFriend(Command):
    """Returns (sender, receiver)."""

    user: str


@dataclass(frozen=True, slots=True)
class AnswerFriend(Command):
    """The caller's answer to `requester`'s friend request. Returns (requester, caller)."""

    requester: str
    accept: bool


@dataclass(frozen=True, slots=True)
class RemoveFriend(Command):
    """Returns (caller, friend)."""

    friend: str


@dataclass(frozen=True, slots=True)
class ListFriends(Command):
    """Returns [(friend, online)]."""


@dataclass(frozen=True, slots=True)
class Block(Command):
    """Returns the blocked user's name."""

    user: str


@dataclass(frozen=True, slots=True)
class Unblock(Command):
    """Returns the user's name."""

    user: str


# -- profiles


@dataclass(frozen=True, slots=True)
class UserInfo(Command):
    """Returns a Profile."""

    user: str


@dataclass(frozen=True, slots=True)
class SetMetadata(Command):
    """One key of the caller's own metadata (message_id 0) or of a message they wrote. Returns a MetadataChanged."""

    key: str
    value: Any
    message_id: int = 0


@dataclass(frozen=True, slots=True)
class Feedback(Command):
    """Kept for the operators. Returns the text."""

    text: str
    rating: int | None = None


# -- operators (the admin shell's principal only)


@dataclass(frozen=True, slots=True)
class Kick(Command):
    """Returns how many connections were closed."""

    user: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Ban(Command):
    """Returns how many connections were closed."""

    user: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Unban(Command):
    """Returns the user's name."""

    user: str


@dataclass(frozen=True, slots=True)
class Broadcast(Command):
    """Returns how many users were told."""

    text: str


@dataclass(frozen=True, slots=True)
class SetPassword(Command):
    """Returns the user's name; their session keys are revoked."""

    user: str
    password: str


@dataclass(frozen=True, slots=True)
class DeleteUser(Command):
    """Returns the user's name."""

    user: str


@dataclass(frozen=True, slots=True)
class ReadFeedback(Command):
    """The newest `limit` entries, oldest first. Returns [FeedbackEntry]."""

    limit: int = 20
