"""Every "may this caller do that" rule of the core, and nowhere else.

Each check returns None or raises ChatError with the code the client sees. Handlers look up
what they need, then ask here before they change anything.
"""

from collections.abc import Iterable

from .. import errors
from ..errors import ChatError
from .model import DIRECT, GROUP, PUBLIC, Message, Room


def may_log_in(user: str, banned: set[str]) -> None:
    """By password or by key, over any transport or REST: a banned account may not."""
    if user in banned:
        raise ChatError(errors.BANNED)


def may_moderate(principal) -> None:
    """The operators' commands: the admin shell's principal only."""
    if not getattr(principal, "operator", False):
        raise ChatError(errors.OPERATORS_ONLY)


def is_sender(claimed: str, user: str) -> None:
    """A frame that names its sender must name the user logged in on it."""
    if claimed and claimed != user:
        raise ChatError(errors.BAD_FIELD, f"the sender must be {user}, the user logged in here")


def may_message(user: str, peer: str) -> None:
    if peer == user:
        raise ChatError(errors.SELF_MESSAGE)


def may_post(user: str, room: Room) -> None:
    if user not in room.members:
        raise ChatError(errors.NOT_A_MEMBER, f"you are not a member of {room.id}")


def may_read(user: str, room: Room) -> None:
    """A conversation's history and files: its members."""
    may_post(user, room)


def may_leave(user: str, room: Room) -> None:
    may_post(user, room)
    if room.kind == DIRECT:
        raise ChatError(errors.PRIVATE_ROOM, "a direct conversation cannot be left")


def may_join(user: str, room: Room) -> None:
    if room.kind == PUBLIC or user in room.members:
        return
    if room.kind == GROUP and user in room.invited:
        return
    raise ChatError(errors.PRIVATE_ROOM, f"{room.id} is private: ask its leader for an invitation")


def may_enter(user: str, room: Room) -> None:
    """Naming a room to enter it on the way (seed 001 has no join): a public one, or one the user is in. Anything
    else is refused as posting to or reading it is in every dialect (8003); only joining it is 8004."""
    if user in room.members or room.kind == PUBLIC:
        return
    hint = ", a private group: you need an invitation (then join it)" if room.kind == GROUP else ""
    raise ChatError(errors.NOT_A_MEMBER, f"you are not a member of {room.id}{hint}")


def may_set_topic(user: str, room: Room) -> None:
    """A member of a public room or group; of one with a leader, the leader."""
    may_post(user, room)
    if room.kind == DIRECT:
        raise ChatError(errors.PRIVATE_ROOM, "a direct conversation has no topic")
    if room.leader is not None and room.leader != user:
        raise ChatError(errors.NOT_LEADER, f"only the leader of {room.id} may set its topic")


def may_list_members(user: str, room: Room) -> None:
    if room.kind != PUBLIC:
        may_post(user, room)


def may_answer_invite(user: str, room: Room) -> None:
    if room.kind != GROUP or user not in room.invited:
        raise ChatError(errors.NOT_INVITED, f"you have no invitation to {room.id}")


def may_invite(user: str, room: Room, invitee: str, friends: set[str]) -> None:
    """The leader of a private group, a friend who is not in it yet."""
    if room.kind != GROUP or room.leader != user:
        raise ChatError(errors.NOT_LEADER, f"only the leader of a private group may invite to {room.id}")
    if invitee in room.members:
        raise ChatError(errors.ALREADY_MEMBER, f"{invitee} is already in {room.id}")
    if invitee not in friends:
        raise ChatError(errors.NOT_FRIENDS, f"{invitee} is not your friend", not_friends=[invitee])


def may_create_group(invitees: Iterable[str], friends: set[str]) -> None:
    strangers = [u for u in invitees if u not in friends]
    if strangers:
        raise ChatError(errors.NOT_ALL_FRIENDS, f"not your friends: {', '.join(strangers)}", not_friends=strangers)


def may_hand_lead(user: str, room: Room, successor: str) -> None:
    """Hand the lead over: the leader of a group, to one of its members."""
    if room.kind != GROUP or room.leader != user:
        raise ChatError(errors.NOT_LEADER, f"only the leader of {room.name} may do that")
    if successor not in room.members:
        raise ChatError(errors.NOT_A_MEMBER, f"{successor} is not a member of {room.name}")


def may_delete_room(principal, room: Room) -> None:
    """The operators, any room; otherwise the leader of a group or the creator of a public room."""
    if getattr(principal, "operator", False):
        return
    if room.kind not in (PUBLIC, GROUP) or room.leader != principal.user:
        raise ChatError(errors.NOT_LEADER, f"only the leader of {room.name} may delete it")


def may_see(user: str, room: Room | None, message_id: int) -> None:
    """A message is visible to the members of its room (to others it does not exist)."""
    if room is None or user not in room.members:
        raise ChatError(errors.NO_SUCH_MESSAGE, f"no message {message_id} in your rooms")


def _not_deleted(message: Message) -> None:
    if message.kind == "deleted":
        raise ChatError(errors.MESSAGE_DELETED, f"message {message.id} was deleted")


def may_edit(user: str, message: Message) -> None:
    _not_deleted(message)
    if message.sender != user:
        raise ChatError(errors.NOT_AUTHOR, "only the author may edit a message")
    if message.kind != "text":
        raise ChatError(errors.NOT_EDITABLE, f"a {message.kind} message cannot be edited")


def may_delete(user: str, message: Message, room: Room) -> None:
    _not_deleted(message)
    if message.sender != user and room.leader != user:
        raise ChatError(errors.NOT_AUTHOR, "only the author or the room's leader may delete a message")


def may_react(message: Message) -> None:
    _not_deleted(message)


def may_annotate(user: str, message: Message) -> None:
    """A message's metadata: its author."""
    if message.sender != user:
        raise ChatError(errors.NOT_AUTHOR, "only the author may set a message's metadata")


def may_read_file(user: str, room: Room | None, file_id: str) -> None:
    """A file is readable by the members of the conversation it was posted to."""
    if room is None or user not in room.members:
        raise ChatError(errors.NO_SUCH_MEDIA, f"no file {file_id!r} in your rooms")


def may_share_file(file_room: str, room: Room, file_id: str) -> None:
    """A stored file may be posted again only to the conversation it belongs to."""
    if file_room != room.id:
        raise ChatError(errors.NO_SUCH_MEDIA, f"file {file_id!r} belongs to another conversation")
