"""What a client can ask of the core: one small value per request.

Dialects build these from frames; Core.execute applies them. A command whose
`pipelined` is False is a barrier: the session finishes it before reading the
next frame, so that e.g. a message sent right after a join lands in the room.
"""

from dataclasses import dataclass


def handles(*kinds: type, anonymous: bool = False):
    """Mark a Core method as the handler of these command types (`anonymous`: no login needed)."""

    def mark(method):
        method.handles, method.anonymous = kinds, anonymous
        return method

    return mark


@dataclass(frozen=True)
class Command:
    pipelined = False


@dataclass(frozen=True)
class Register(Command):
    username: str
    password: str


@dataclass(frozen=True)
class Login(Command):
    username: str = ""
    password: str = ""
    session_key: str = ""


@dataclass(frozen=True)
class Logout(Command):
    pass


@dataclass(frozen=True)
class SetStatus(Command):
    status: str


@dataclass(frozen=True)
class JoinRoom(Command):
    room: str


@dataclass(frozen=True)
class LeaveRoom(Command):
    room: str


@dataclass(frozen=True)
class CreateGroup(Command):
    name: str
    invitees: tuple[str, ...] = ()


@dataclass(frozen=True)
class Invite(Command):
    room: str
    user: str


@dataclass(frozen=True)
class AnswerInvite(Command):
    room: str
    accept: bool


@dataclass(frozen=True)
class SendMessage(Command):
    """A text to a user (`to_user`), a room (`to_room`), or whichever of the two is named `to`.

    Users and rooms share one namespace, so `to` is never ambiguous.
    """

    pipelined = True
    text: str
    to_user: str = ""
    to_room: str = ""
    to: str = ""
    sender: str = ""  # the sender a client claims to be, checked against its login
    kind: str = "text"  # or "encrypted": `text` is then ciphertext the server never reads


@dataclass(frozen=True)
class History(Command):
    """Up to `limit` messages of a room (or of the direct conversation with `with_user`) before id `before`."""

    room: str = ""
    with_user: str = ""
    before: int = 0
    limit: int = 50


@dataclass(frozen=True)
class Who(Command):
    room: str


@dataclass(frozen=True)
class ListRooms(Command):
    pass


@dataclass(frozen=True)
class RequestFriend(Command):
    receiver: str


@dataclass(frozen=True)
class AnswerFriend(Command):
    """The answer of the logged-in user to `requester`'s friend request."""

    requester: str
    accept: bool


@dataclass(frozen=True)
class RemoveFriend(Command):
    friend: str


@dataclass(frozen=True)
class ListFriends(Command):
    pass


@dataclass(frozen=True)
class Block(Command):
    user: str


@dataclass(frozen=True)
class Unblock(Command):
    user: str


@dataclass(frozen=True)
class RemoveGroup(Command):
    group: str  # id or name


@dataclass(frozen=True)
class ChangeLeader(Command):
    group: str  # id or name
    leader: str


@dataclass(frozen=True)
class SetTyping(Command):
    to: str  # a user, a room or a group
    typing: bool = True


@dataclass(frozen=True)
class MarkRead(Command):
    message_id: int


@dataclass(frozen=True)
class HistorySync(Command):
    """A page of the user's whole history with after < id <= upto (upto 0: up to now)."""

    after: int = 0
    upto: int = 0
    limit: int = 100


@dataclass(frozen=True)
class SetMetadata(Command):
    """One key of the user's own metadata (message_id 0) or of a message they wrote."""

    key: str
    value: object
    message_id: int = 0


@dataclass(frozen=True)
class UserInfo(Command):
    username: str


@dataclass(frozen=True)
class Feedback(Command):
    text: str
    rating: int | None = None


@dataclass(frozen=True)
class StartUpload(Command):
    """Announce a file for a user, room or group; `upload` is the client's own id for it."""

    upload: str
    to: str
    name: str
    mime: str
    size: int


@dataclass(frozen=True)
class PutChunk(Command):
    """Chunk `index` (1-based) of `total` of the client's upload `upload`."""

    pipelined = True
    upload: str
    index: int
    total: int
    data: bytes


@dataclass(frozen=True)
class ReadChunk(Command):
    """Chunk `index` (1-based) of a stored file."""

    pipelined = True
    file_id: str
    index: int
