"""The live state every handler reads: users, rooms, memberships, friends, blocks, bans, file usage.

It is loaded from the store's Snapshot at start and changed in memory by the handlers, each of
which also writes the change through the store. Reads on the hot path (who may post where, who
receives a message) never wait on the disk. Lookups that raise ChatError live here too.

Every change goes through one of the methods under "changes" (never by touching the dicts), as a
small value, a Change: the method applies it and hands it to `observe`, through which the core
shares it with the other nodes of a cluster; a node applies theirs with `apply`. Each Change
states a result, not a step ("alice is a member of lobby", "bob's usage is 1234 bytes"), so
applying one twice, or one that is already in a snapshot, changes nothing.
"""

from collections.abc import Callable

from .. import errors
from ..errors import ChatError
from .model import GROUP, Room

Change = tuple  # (operation name, *JSON-able arguments): see ChatState.OPERATIONS


class Stale(Exception):
    """A change from another node does not fit this node's state (it missed an earlier one): resync."""


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
        self.file_bytes = 0  # bytes of all stored files (files.max_total_bytes bounds it); moved by add_usage
        self.fanout_upto = 0  # every message up to this id has been committed and handed to the bus
        self.observe: Callable[[Change], None] = lambda change: None  # every change made here

    def load(self, snap) -> None:
        """Take the state of a store Snapshot (all but fanout_upto, which only the fan-out moves)."""
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

    # -- changes (each applied here, then shared through `observe`)

    OPERATIONS = ("user", "unuser", "room", "unroom", "member", "invite", "leader", "topic", "friends", "request",
                  "block", "banned", "usage")  # fmt: skip

    def _change(self, *change) -> None:
        getattr(self, f"_{change[0]}")(*change[1:])
        self.observe(change)

    def apply(self, change: Change) -> None:
        """A change made on another node; raises Stale if it does not fit."""
        if not change or change[0] not in self.OPERATIONS:
            raise Stale(f"unknown change {change!r}")
        try:
            getattr(self, f"_{change[0]}")(*change[1:])
        except (KeyError, TypeError) as e:
            raise Stale(f"{change!r}: {e!r}") from None

    def add_user(self, name: str, status: str = "online") -> None:
        self._change("user", name, status)

    set_status = add_user

    def remove_user(self, name: str) -> None:
        """Forget an account and everything of it: memberships, invitations, friends, requests, blocks."""
        self._change("unuser", name)

    def add_room(self, room_id: str, kind: str, name: str, leader: str | None) -> Room:
        self._change("room", room_id, kind, name, leader)
        return self.rooms[room_id]

    def remove_room(self, room_id: str) -> None:
        self._change("unroom", room_id)

    def set_member(self, room: Room, user: str, member: bool) -> None:
        self._change("member", room.id, user, member)

    def set_invite(self, room: Room, user: str, inviter: str | None) -> None:
        """`inviter` invited `user`; None: the invitation is gone."""
        self._change("invite", room.id, user, inviter)

    def set_leader(self, room: Room, leader: str | None) -> None:
        self._change("leader", room.id, leader)

    def set_topic(self, room: Room, topic: str, by: str, at: int) -> None:
        self._change("topic", room.id, topic, by, at)

    def set_friends(self, a: str, b: str, friends: bool) -> None:
        self._change("friends", a, b, friends)

    def set_request(self, sender: str, receiver: str, pending: bool) -> None:
        self._change("request", sender, receiver, pending)

    def set_block(self, user: str, other: str, blocked: bool) -> None:
        self._change("block", user, other, blocked)

    def set_banned(self, user: str, banned: bool) -> None:
        self._change("banned", user, banned)

    def add_usage(self, owner: str, size: int) -> None:
        """`size` more (or, negative, fewer) bytes stored by `owner` (and so in all: `file_bytes`)."""
        self._change("usage", owner, max(0, self.file_usage.get(owner, 0) + size))

    def _user(self, name: str, status: str) -> None:
        self.users[name] = status

    def _unuser(self, name: str) -> None:
        for room_id in self.rooms_of.pop(name, set()):
            room = self.rooms.get(room_id)
            if room is not None:
                room.members.discard(name)
        for room_id in self.invited_to.pop(name, set()):
            room = self.rooms.get(room_id)
            if room is not None:
                room.invited.pop(name, None)
        for friend in self.friends.pop(name, set()):
            self.friends.get(friend, set()).discard(name)
        self.friend_requests = {(s, r) for s, r in self.friend_requests if name not in (s, r)}
        for other in self.blocked.pop(name, set()):
            self.blocked_by.get(other, set()).discard(name)
        for other in self.blocked_by.pop(name, set()):
            self.blocked.get(other, set()).discard(name)
        self.file_usage.pop(name, None)  # (their files stay stored, and counted in file_bytes)
        self.banned.discard(name)
        self.users.pop(name, None)

    def _room(self, room_id: str, kind: str, name: str, leader: str | None) -> None:
        room = self.rooms.get(room_id)
        if room is None:
            self.rooms[room_id] = Room(room_id, kind, name, leader)
        else:
            room.kind, room.name, room.leader = kind, name, leader

    def _unroom(self, room_id: str) -> None:
        room = self.rooms.pop(room_id, None)
        if room is None:
            return
        for user in room.members:
            self.rooms_of.get(user, set()).discard(room_id)
        for user in room.invited:
            self.invited_to.get(user, set()).discard(room_id)

    def _member(self, room_id: str, user: str, member: bool) -> None:
        room = self.rooms[room_id]
        if member:
            room.members.add(user)
            self.rooms_of.setdefault(user, set()).add(room_id)
        else:
            room.members.discard(user)
            self.rooms_of.get(user, set()).discard(room_id)

    def _invite(self, room_id: str, user: str, inviter: str | None) -> None:
        room = self.rooms[room_id]
        if inviter is None:
            room.invited.pop(user, None)
            self.invited_to.get(user, set()).discard(room_id)
        else:
            room.invited[user] = inviter
            self.invited_to.setdefault(user, set()).add(room_id)

    def _leader(self, room_id: str, leader: str | None) -> None:
        self.rooms[room_id].leader = leader

    def _topic(self, room_id: str, topic: str, by: str, at: int) -> None:
        room = self.rooms[room_id]
        room.topic, room.topic_by, room.topic_at = topic, by, at

    def _friends(self, a: str, b: str, friends: bool) -> None:
        if friends:
            self.friends.setdefault(a, set()).add(b)
            self.friends.setdefault(b, set()).add(a)
        else:
            self.friends.get(a, set()).discard(b)
            self.friends.get(b, set()).discard(a)

    def _request(self, sender: str, receiver: str, pending: bool) -> None:
        if pending:
            self.friend_requests.add((sender, receiver))
        else:
            self.friend_requests.discard((sender, receiver))

    def _block(self, user: str, other: str, blocked: bool) -> None:
        if blocked:
            self.blocked.setdefault(user, set()).add(other)
            self.blocked_by.setdefault(other, set()).add(user)
        else:
            self.blocked.get(user, set()).discard(other)
            self.blocked_by.get(other, set()).discard(user)

    def _banned(self, user: str, banned: bool) -> None:
        if banned:
            self.banned.add(user)
        else:
            self.banned.discard(user)

    def _usage(self, owner: str, size: int) -> None:
        # the total follows each owner's result (so it too is the same on every node, and idempotent)
        self.file_bytes += size - self.file_usage.get(owner, 0)
        self.file_usage[owner] = size

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
