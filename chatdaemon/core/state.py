"""The live state every handler reads: users, rooms, memberships, friends, blocks, bans, file usage.

It is loaded from the store's Snapshot at start and changed in memory by the handlers, each of
which also writes the change through the store. Reads on the hot path (who may post where, who
receives a message) never wait on the disk. Lookups that raise ChatError live here too.
"""

from .. import errors
from ..errors import ChatError
from .model import GROUP, Room


class ChatState:
    def __init__(self) -> None:
        self.users: dict[str, str] = {}  # name -> custom status
        self.rooms: dict[str, Room] = {}
        self.rooms_of: dict[str, set[str]] = {}  # user -> ids of the rooms they are in
        self.invited_to: dict[str, set[str]] = {}  # user -> ids of the groups inviting them
        self.friends: dict[str, set[str]] = {}
        self.friend_requests: set[tuple[str, str]] = set()  # (sender, receiver), pending
        self.blocked: dict[str, set[str]] = {}  # user -> whom they blocked
        self.blocked_by: dict[str, set[str]] = {}  # user -> who blocked them
        self.banned: set[str] = set()
        self.file_usage: dict[str, int] = {}  # owner -> bytes stored
        self.file_bytes = 0  # bytes of all stored files (files.max_total_bytes bounds it)
        self.fanout_upto = 0  # every message up to this id has been committed and handed to the bus

    def load(self, snap) -> None:
        """Take the state of a store Snapshot."""
        self.users, self.rooms = snap.users, snap.rooms
        self.rooms_of, self.invited_to, self.blocked_by = {}, {}, {}
        for room in self.rooms.values():
            for user in room.members:
                self.rooms_of.setdefault(user, set()).add(room.id)
            for user in room.invited:
                self.invited_to.setdefault(user, set()).add(room.id)
        self.friends, self.friend_requests, self.blocked = snap.friends, snap.friend_requests, snap.blocked
        for user, blocked in self.blocked.items():
            for other in blocked:
                self.blocked_by.setdefault(other, set()).add(user)
        self.banned = set(snap.banned)
        self.file_usage = snap.file_usage
        self.file_bytes = snap.file_bytes
        self.fanout_upto = snap.last_message_id

    # -- lookups

    def room(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            raise ChatError(errors.NO_SUCH_ROOM, f"no such room: {room_id}")
        return room

    def user(self, name: str, code: int = errors.NO_SUCH_USER) -> str:
        if name not in self.users:
            raise ChatError(code, f"no such user: {name}")
        return name

    def named_groups(self, user: str, name: str) -> list[Room]:
        """The user's groups (joined or inviting them) called `name`."""
        mine = self.rooms_of.get(user, set()) | self.invited_to.get(user, set())
        return [self.rooms[r] for r in mine if self.rooms[r].kind == GROUP and self.rooms[r].name == name]

    def group(self, user: str, ref: str) -> Room:
        """A room by id, or a group by the name it has among the user's groups and invitations."""
        room = self.rooms.get(ref)
        if room is not None:
            return room
        named = self.named_groups(user, ref)
        if len(named) > 1:
            raise ChatError(errors.AMBIGUOUS_GROUP, f"you have {len(named)} groups named {ref!r}: use its id")
        if not named:
            raise ChatError(errors.NO_SUCH_ROOM, f"no such room or group: {ref}")
        return named[0]

    def blocks(self, user: str, other: str) -> bool:
        """Whether `user` has blocked `other`."""
        return other in self.blocked.get(user, ())

    def recipients(self, sender: str, room: Room) -> set[str]:
        """Who receives what `sender` posts in `room`: its members, minus those who blocked the sender."""
        blockers = self.blocked_by.get(sender)
        return room.members - blockers if blockers else room.members

    def friend_audience(self, user: str) -> set[str]:
        """Who sees `user`'s presence as a friend (seed 002): their friends, minus those who blocked them."""
        return self.friends.get(user, set()) - self.blocked_by.get(user, set())

    def room_audience(self, user: str) -> set[str]:
        """Who shares a conversation (room, group or direct) with `user` (room presence), minus those who
        blocked them."""
        out: set[str] = set()
        for room_id in self.rooms_of.get(user, ()):
            out |= self.rooms[room_id].members
        out.discard(user)
        return out - self.blocked_by.get(user, set())

    def hidden_from(self, user: str) -> set[str]:
        """Senders whose messages `user` does not see (whom they blocked)."""
        return self.blocked.get(user, set())
