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
