"""Public rooms, private groups, direct conversations (a Core mixin)."""

import re
from dataclasses import dataclass

from twisted.internet.defer import Deferred

from .. import errors
from ..errors import ChatError
from . import authz
from . import commands as c
from .commands import handles
from .events import GroupRemoved, InviteAnswered, Invited, LeaderChanged, MemberJoined, MemberLeft
from .model import DIRECT, GROUP, PUBLIC, ROOM_NAME, Room, direct_room_id


@dataclass(frozen=True)
class Member:
    user: str
    online: bool
    status: str


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48] or "group"


class Rooms:
    def _add_member(self, room: Room, user: str) -> Deferred:
        room.members.add(user)
        self.rooms_of.setdefault(user, set()).add(room.id)
        return self.store.add_member(room.id, user, self.fanout_upto)

    def _drop_member(self, room: Room, user: str) -> Deferred:
        room.members.discard(user)
        self.rooms_of.get(user, set()).discard(room.id)
        return self.store.remove_member(room.id, user)

    async def _drop_invite(self, room: Room, user: str) -> str | None:
        """Forget an invitation; the inviter's name, or None if there was none."""
        inviter = room.invited.pop(user, None)
        if inviter is not None:
            self.invited_to.get(user, set()).discard(room.id)
            await self.store.remove_invite(room.id, user)
        return inviter

    def _named_groups(self, user: str, name: str) -> list[Room]:
        """The user's groups (joined or inviting them) called `name`."""
        mine = self.rooms_of.get(user, set()) | self.invited_to.get(user, set())
        return [self.rooms[r] for r in mine if self.rooms[r].kind == GROUP and self.rooms[r].name == name]

    def _group(self, user: str, ref: str) -> Room:
        """A group (or any room) by id, or a group by the name it has among the user's groups and invitations."""
        room = self.rooms.get(ref)
        if room is not None:
            return room
        named = self._named_groups(user, ref)
        if len(named) > 1:
            raise ChatError(errors.AMBIGUOUS_GROUP, f"you have {len(named)} groups named {ref!r}: use its id")
        if not named:
            raise ChatError(errors.NO_SUCH_ROOM, f"no such group: {ref}")
        return named[0]

    @handles(c.JoinRoom)
    async def _join(self, client, cmd: c.JoinRoom) -> Room:
        room = self.rooms.get(cmd.room)
        if room is None:
            if not ROOM_NAME.fullmatch(cmd.room):
                raise ChatError(errors.BAD_NAME, "room names are 1-64 of A-Z a-z 0-9 _ . -")
            if cmd.room in self.users:
                raise ChatError(errors.NAME_TAKEN, f"{cmd.room} is a user's name")
            room = self.rooms[cmd.room] = Room(cmd.room, PUBLIC, cmd.room, None)
            self._background(self.store.create_room(room, self._now()), f"create room {room.id}")
        if client.user in room.members:
            return room
        authz.may_join(client.user, room)
        inviter = await self._drop_invite(room, client.user)
        await self._add_member(room, client.user)
        self.bus.publish(MemberJoined(room=room, user=client.user), room.members, client)
        if inviter is not None:
            await self._tell_inviter(room, inviter, client.user, True)
        return room

    async def _tell_inviter(self, room: Room, inviter: str, invitee: str, accepted: bool) -> None:
        event = InviteAnswered(room=room, inviter=inviter, invitee=invitee, accepted=accepted)
        await self._notify(inviter, event, "invite_answer", {"room": room.id, "invitee": invitee, "accepted": accepted})

    @handles(c.LeaveRoom)
    async def _leave(self, client, cmd: c.LeaveRoom) -> Room:
        room = self._group(client.user, cmd.room)
        authz.may_leave(client.user, room)
        if room.kind == DIRECT:
            raise ChatError(errors.PRIVATE_ROOM, "a direct conversation cannot be left")
        await self._drop_member(room, client.user)
        self.bus.publish(MemberLeft(room=room, user=client.user), room.members | {client.user}, client)
        if room.kind == GROUP and not room.members:
            await self._delete_room(room)  # nobody left to lead it
        elif room.leader == client.user and room.members:
            await self._set_leader(room, min(room.members), by=client.user)
        return room

    async def _set_leader(self, room: Room, leader: str, by: str, client=None) -> None:
        """Change the leader; every member hears of it, except the connection that asked (it gets the reply)."""
        room.leader = leader
        await self.store.set_leader(room.id, leader)
        self.bus.publish(LeaderChanged(room=room, leader=leader, by=by), room.members, client)

    async def _delete_room(self, room: Room) -> None:
        """Remove a room with its messages and files."""
        del self.rooms[room.id]
        for user in room.members:
            self.rooms_of.get(user, set()).discard(room.id)
        for user in room.invited:
            self.invited_to.get(user, set()).discard(room.id)
        files = await self.store.files_in_room(room.id)
        await self.store.delete_room(room.id)
        for ref in files:
            self.file_usage[ref.owner] = self.file_usage.get(ref.owner, 0) - ref.size
            self.file_store.remove(ref.id)

    @handles(c.CreateGroup)
    async def _create_group(self, client, cmd: c.CreateGroup) -> Room:
        name = cmd.name.strip()
        if not 0 < len(name) <= 64 or not name.isprintable():
            raise ChatError(errors.BAD_NAME, "a group name is 1-64 printable characters")
        invitees = [self._user(u) for u in dict.fromkeys(cmd.invitees) if u != client.user]
        strangers = [u for u in invitees if u not in self.friends.get(client.user, ())]
        if strangers:
            raise ChatError(errors.NOT_ALL_FRIENDS, f"not your friends: {', '.join(strangers)}", not_friends=strangers)
        base = room_id = _slug(name)
        n = 1
        while room_id in self.rooms or room_id in self.users:
            n += 1
            room_id = f"{base}-{n}"
        room = self.rooms[room_id] = Room(room_id, GROUP, name, client.user)
        self._background(self.store.create_room(room, self._now()), f"create group {room_id}")
        await self._add_member(room, client.user)
        for invitee in invitees:
            await self._invite(client, c.Invite(room_id, invitee))
        return room

    @handles(c.Invite)
    async def _invite(self, client, cmd: c.Invite) -> Room:
        room = self._group(client.user, cmd.room)
        authz.may_invite(client.user, room)
        invitee = self._user(cmd.user)
        if invitee in room.members:
            raise ChatError(errors.ALREADY_MEMBER, f"{invitee} is already in {room.id}")
        if invitee not in self.friends.get(client.user, ()):
            raise ChatError(errors.NOT_FRIENDS, f"{invitee} is not your friend", not_friends=[invitee])
        if self._blocks(invitee, client.user):
            return room  # silently: the blocker never hears of it
        room.invited[invitee] = client.user
        self.invited_to.setdefault(invitee, set()).add(room.id)
        await self.store.add_invite(room.id, invitee, client.user, self._now())
        event = Invited(room=room, inviter=client.user, invitee=invitee)
        await self._notify(invitee, event, "invite", {"room": room.id, "inviter": client.user})
        return room

    @handles(c.AnswerInvite)
    async def _answer_invite(self, client, cmd: c.AnswerInvite) -> Room:
        room = self._group(client.user, cmd.room)
        authz.may_answer_invite(client.user, room)
        if cmd.accept:
            return await self._join(client, c.JoinRoom(room.id))
        inviter = await self._drop_invite(room, client.user)
        await self._tell_inviter(room, inviter, client.user, False)
        return room

    @handles(c.RemoveGroup)
    async def _remove_group(self, client, cmd: c.RemoveGroup) -> Room:
        room = self._group(client.user, cmd.group)
        authz.may_lead(client.user, room)
        self.bus.publish(GroupRemoved(room=room, by=client.user), room.members, client)
        await self._delete_room(room)
        return room

    @handles(c.ChangeLeader)
    async def _change_leader(self, client, cmd: c.ChangeLeader) -> Room:
        room = self._group(client.user, cmd.group)
        authz.may_lead(client.user, room)
        if cmd.leader not in room.members:
            raise ChatError(errors.NOT_A_MEMBER, f"{cmd.leader} is not a member of {room.name}")
        await self._set_leader(room, cmd.leader, by=client.user, client=client)
        return room

    def _direct(self, user: str, peer: str) -> Room:
        """The direct conversation of two users, made (and stored) on first use."""
        room_id = direct_room_id(user, peer)
        room = self.rooms.get(room_id)
        if room is None:
            room = self.rooms[room_id] = Room(room_id, DIRECT, room_id, None)
            self._background(self.store.create_room(room, self._now()), f"create {room_id}")
            for member in (user, peer):
                self._background(self._add_member(room, member), f"add {member} to {room_id}")
        return room

    @handles(c.Who)
    async def _who(self, client, cmd: c.Who) -> tuple[Room, list[Member]]:
        room = self._group(client.user, cmd.room)
        authz.may_list_members(client.user, room)
        return room, [Member(u, self.bus.online(u), self.users.get(u, "")) for u in sorted(room.members)]

    @handles(c.ListRooms)
    async def _list_rooms(self, client, cmd: c.ListRooms) -> list[Room]:
        mine = self.rooms_of.get(client.user, set())
        return sorted((r for r in self.rooms.values() if r.id in mine or r.kind == PUBLIC), key=lambda r: r.id)
