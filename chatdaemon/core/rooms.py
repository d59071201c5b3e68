"""Public rooms, private groups, direct conversations (a Core mixin)."""

import re
from dataclasses import dataclass

from twisted.internet.defer import Deferred

from .. import errors
from ..errors import ChatError
from . import authz, commands as c
from .commands import handles
from .events import Invited, MemberJoined, MemberLeft
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
        if client.user in room.invited:
            room.invited.discard(client.user)
            self._background(self.store.remove_invite(room.id, client.user), f"remove invite to {room.id}")
        await self._add_member(room, client.user)
        self.bus.publish(MemberJoined(room=room, user=client.user), room.members, client)
        return room

    @handles(c.LeaveRoom)
    async def _leave(self, client, cmd: c.LeaveRoom) -> Room:
        room = self._room(cmd.room)
        authz.may_leave(client.user, room)
        if room.kind == DIRECT:
            raise ChatError(errors.PRIVATE_ROOM, "a direct conversation cannot be left")
        await self._drop_member(room, client.user)
        if room.leader == client.user:
            room.leader = min(room.members, default=None)
            await self.store.set_leader(room.id, room.leader)
        self.bus.publish(MemberLeft(room=room, user=client.user), room.members | {client.user}, client)
        return room

    @handles(c.CreateGroup)
    async def _create_group(self, client, cmd: c.CreateGroup) -> Room:
        name = cmd.name.strip()
        if not 0 < len(name) <= 64 or not name.isprintable():
            raise ChatError(errors.BAD_NAME, "a group name is 1-64 printable characters")
        for invitee in cmd.invitees:
            self._user(invitee)
        base = room_id = _slug(name)
        n = 1
        while room_id in self.rooms or room_id in self.users:
            n += 1
            room_id = f"{base}-{n}"
        room = self.rooms[room_id] = Room(room_id, GROUP, name, client.user)
        self._background(self.store.create_room(room, self._now()), f"create group {room_id}")
        await self._add_member(room, client.user)
        for invitee in cmd.invitees:
            if invitee != client.user:
                await self._invite(client, c.Invite(room_id, invitee))
        return room

    @handles(c.Invite)
    async def _invite(self, client, cmd: c.Invite) -> Room:
        room = self._room(cmd.room)
        authz.may_invite(client.user, room)
        invitee = self._user(cmd.user)
        if invitee in room.members:
            raise ChatError(errors.ALREADY_MEMBER, f"{invitee} is already in {room.id}")
        room.invited.add(invitee)
        await self.store.add_invite(room.id, invitee, client.user, self._now())
        if self.bus.online(invitee):
            self.bus.publish(Invited(room=room, inviter=client.user, invitee=invitee), {invitee})
        else:
            await self.store.push_inbox(invitee, "invite", {"room": room.id, "inviter": client.user}, self._now())
        return room

    @handles(c.AnswerInvite)
    async def _answer_invite(self, client, cmd: c.AnswerInvite) -> Room:
        room = self._room(cmd.room)
        authz.may_answer_invite(client.user, room)
        if cmd.accept:
            return await self._join(client, c.JoinRoom(room.id))
        room.invited.discard(client.user)
        await self.store.remove_invite(room.id, client.user)
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
        room = self._room(cmd.room)
        authz.may_list_members(client.user, room)
        return room, [Member(u, self.bus.online(u), self.users.get(u, "")) for u in sorted(room.members)]

    @handles(c.ListRooms)
    async def _list_rooms(self, client, cmd: c.ListRooms) -> list[Room]:
        mine = self.rooms_of.get(client.user, set())
        return sorted(
            (r for r in self.rooms.values() if r.id in mine or r.kind == PUBLIC), key=lambda r: r.id
        )
