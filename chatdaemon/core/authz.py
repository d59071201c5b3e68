"""Every "may this user do that to this room" rule, and nowhere else.

Each check returns None or raises ChatError with the code a client sees.
"""

from ..errors import NOT_A_MEMBER, NOT_INVITED, NOT_LEADER, PRIVATE_ROOM, ChatError
from .model import GROUP, PUBLIC, Room


def may_post(user: str, room: Room) -> None:
    if user not in room.members:
        raise ChatError(NOT_A_MEMBER, f"you are not a member of {room.id}")


may_read_history = may_post
may_leave = may_post


def may_join(user: str, room: Room) -> None:
    if room.kind == PUBLIC:
        return
    if room.kind == GROUP and user in room.invited:
        return
    raise ChatError(PRIVATE_ROOM, f"{room.id} is private: ask its leader for an invitation")


def may_enter(user: str, room: Room) -> None:
    """Naming a room in the action dialect (which has no join) joins it: only a public one."""
    if user in room.members or room.kind == PUBLIC:
        return
    if room.kind == GROUP:
        raise ChatError(PRIVATE_ROOM, f"{room.id} is a private group: you need an invitation (then join_room)")
    raise ChatError(NOT_A_MEMBER, f"you are not a member of {room.id}")


def may_answer_invite(user: str, room: Room) -> None:
    if room.kind != GROUP or user not in room.invited:
        raise ChatError(NOT_INVITED, f"you have no invitation to {room.id}")


def may_invite(user: str, room: Room) -> None:
    if room.kind != GROUP or room.leader != user:
        raise ChatError(NOT_LEADER, f"only the leader of a private group may invite to {room.id}")


def may_lead(user: str, room: Room) -> None:
    if room.kind != GROUP or room.leader != user:
        raise ChatError(NOT_LEADER, f"only the leader of {room.name} may do that")


def may_list_members(user: str, room: Room) -> None:
    if room.kind != PUBLIC:
        may_post(user, room)
