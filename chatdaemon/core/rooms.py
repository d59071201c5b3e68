"""Rooms: public rooms, private groups, direct conversations; membership, invitations, leaders; addresses.

- A public room is made by joining it (no leader) or by CreateRoom (led by its creator, who may
  delete it). A private group is made with CreateRoom(private=True) and grows by invitations
  of its leader to the leader's friends; the last member leaving removes it, and a leader who
  leaves hands the lead to the first remaining member by name.
- A direct conversation exists for any two users, made (and stored) on first use.
- A public room or group may have a topic, set by a member (by the leader, if it has one).
- An Address names a user (their direct conversation), a room id, or one of the caller's groups
  by name (`target`); with `enter`, a public room is joined on the way, and made if new.
"""

import re

from twisted.internet.defer import Deferred

from .. import errors
from ..errors import ChatError
from ..store import Conflict
from . import authz
from .commands import (
    AnswerInvite,
    ChangeLeader,
    CreateRoom,
    DeleteRoom,
    Invite,
    JoinRoom,
    LeaveRoom,
    ListRooms,
    Members,
    SetTopic,
)
from .events import (
    InviteAnswered,
    Invited,
    LeaderChanged,
    MemberJoined,
    MemberLeft,
    RoomAdded,
    RoomRemoved,
    TopicChanged,
)
from .handling import background, handles, log, now_ms
from .model import DIRECT, GROUP, PUBLIC, ROOM_NAME, Address, Room, direct_room_id, display_text
from .results import Member, RoomListing

MAX_GROUP_NAME = 64
MAX_TOPIC_CHARS = 390


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48] or "group"


def _check_room_name(name: str) -> None:
    if not ROOM_NAME.fullmatch(name):
        raise ChatError(errors.BAD_NAME, "room names are 1-64 of A-Z a-z 0-9 _ . -")


class Rooms:
    def __init__(self, state, store, file_store, bus, delivery, clock):
        self.state, self.store, self.file_store, self.bus = state, store, file_store, bus
        self.delivery, self.clock = delivery, clock

    # -- membership, as every handler changes it

    def add_member(self, room: Room, user: str) -> Deferred:
        self.state.set_member(room, user, True)
        return self.store.add_member(room.id, user, self.state.fanout_upto)

    def drop_member(self, room: Room, user: str) -> Deferred:
        self.state.set_member(room, user, False)
        return self.store.remove_member(room.id, user)

    async def drop_invite(self, room: Room, user: str) -> str | None:
        """Forget an invitation; the inviter's name, or None if there was none."""
        inviter = room.invited.get(user)
        if inviter is not None:
            self.state.set_invite(room, user, None)
            await self.store.remove_invite(room.id, user)
        return inviter

    async def set_leader(self, room: Room, leader: str, by: str, client=None) -> None:
        """Change the leader; every member hears of it, except the connection that asked (it gets the reply)."""
        self.state.set_leader(room, leader)
        await self.store.set_leader(room.id, leader)
        self.bus.publish(LeaderChanged(room, leader, by), room.members, client)

    async def delete(self, room: Room) -> None:
        """Remove a room with its messages and files."""
        state = self.state
        state.remove_room(room.id)
        files = await self.store.files_in_room(room.id)
        await self.store.delete_room(room.id)
        for ref in files:
            state.add_usage(ref.owner, -ref.size)  # (and so state.file_bytes)
            background(self.file_store.remove(ref.id), f"remove file {ref.id}")

    def _new_room(self, room_id: str, kind: str, name: str, leader: str | None) -> Room:
        room = self.state.add_room(room_id, kind, name, leader)
        d = self.store.create_room(room, now_ms(self.clock))
        background(d.addErrback(lambda f: f.trap(Conflict)), f"create room {room_id}")  # made by another node too
        return room

    def direct(self, user: str, peer: str) -> Room:
        """The direct conversation of two users, made (and stored) on first use."""
        room_id = direct_room_id(user, peer)
        room = self.state.rooms.get(room_id)
        if room is None:
            room = self._new_room(room_id, DIRECT, room_id, None)
            for member in (user, peer):
                background(self.add_member(room, member), f"add {member} to {room_id}")
        return room

    # -- addresses

    def resolve(self, user: str, to: Address) -> Room | str | None:
        """What `to` names, changing nothing: a user's name, a room the caller may post to (or, with `enter`,
        may enter), or None for a new public room that `create` would make."""
        state, name = self.state, to.name
        if to.only != "room" and name in state.users:
            authz.may_message(user, name)
            return name
        if to.only == "user":
            raise ChatError(errors.NO_SUCH_USER, f"no such user: {name}")
        room = state.rooms.get(name)
        if room is None:
            if to.create and ROOM_NAME.fullmatch(name):
                return None
            if not to.only and not to.enter and not state.named_groups(user, name):
                raise ChatError(errors.NO_SUCH_USER, f"no such user or room: {name}")
            room = state.group(user, name)
        if to.enter:
            authz.may_enter(user, room)
        else:
            authz.may_post(user, room)
        return room

    async def target(self, client, to: Address) -> Room:
        """The room `to` names, entered if it says so: a direct conversation, or a room the caller is in."""
        found = self.resolve(client.user, to)
        if isinstance(found, str):
            return self.direct(client.user, found)
        if found is None or client.user not in found.members:
            return await self.join(client, JoinRoom(to.name if found is None else found.id))
        return found

    # -- commands

    @handles(JoinRoom)
    async def join(self, client, cmd: JoinRoom) -> Room:
        state = self.state
        room = state.rooms.get(cmd.room)
        if room is None and state.named_groups(client.user, cmd.room):
            room = state.group(client.user, cmd.room)
        elif room is None:
            _check_room_name(cmd.room)
            if cmd.room in state.users:
                raise ChatError(errors.NAME_TAKEN, f"{cmd.room} is a user's name")
            room = self._new_room(cmd.room, PUBLIC, cmd.room, None)
        if client.user in room.members:
            return room
        authz.may_join(client.user, room)
        inviter = await self.drop_invite(room, client.user)
        await self.add_member(room, client.user)
        self.bus.publish(MemberJoined(room, client.user), room.members, client)
        if inviter is not None:
            await self._tell_inviter(room, inviter, client.user, True)
        return room

    async def _tell_inviter(self, room: Room, inviter: str, invitee: str, accepted: bool) -> None:
        payload = {"room": room.id, "invitee": invitee, "accepted": accepted}
        await self.delivery.notify(inviter, InviteAnswered(room, inviter, invitee, accepted), "invite_answer", payload)

    @handles(LeaveRoom)
    async def leave(self, client, cmd: LeaveRoom) -> Room:
        room = self.state.group(client.user, cmd.room)
        authz.may_leave(client.user, room)
        await self.drop_member(room, client.user)
        self.bus.publish(MemberLeft(room, client.user), room.members | {client.user}, client)
        if room.kind == GROUP and not room.members:
            await self.delete(room)  # nobody left to lead it
        elif room.leader == client.user and room.members:
            await self.set_leader(room, min(room.members), by=client.user)
        return room

    @handles(CreateRoom)
    async def create(self, client, cmd: CreateRoom) -> Room:
        return await (self._create_group(client, cmd) if cmd.private else self._create_public(client, cmd))

    async def _create_public(self, client, cmd: CreateRoom) -> Room:
        name = cmd.name.strip()
        _check_room_name(name)
        if name in self.state.rooms or name in self.state.users:
            raise ChatError(errors.NAME_TAKEN, f"{name} is taken")
        room = self._new_room(name, PUBLIC, name, client.user)
        await self.add_member(room, client.user)
        self.bus.publish(RoomAdded(room, client.user), list(self.bus.online_users()), client)
        return room

    async def _create_group(self, client, cmd: CreateRoom) -> Room:
        name = display_text(cmd.name)
        if not 0 < len(name) <= MAX_GROUP_NAME:
            raise ChatError(errors.BAD_NAME, f"a group name is 1-{MAX_GROUP_NAME} characters")
        invitees = [self.state.user(u) for u in dict.fromkeys(cmd.invitees) if u != client.user]
        authz.may_create_group(invitees, self.state.friends.get(client.user, set()))
        base = room_id = _slug(name)
        n = 1
        while room_id in self.state.rooms or room_id in self.state.users:
            n += 1
            room_id = f"{base}-{n}"
        room = self._new_room(room_id, GROUP, name, client.user)
        await self.add_member(room, client.user)
        for invitee in invitees:
            await self.invite(client, Invite(room_id, invitee))
        return room

    @handles(DeleteRoom)
    async def delete_room(self, client, cmd: DeleteRoom) -> Room:
        room = self.state.room(cmd.room) if client.operator else self.state.group(client.user, cmd.room)
        authz.may_delete_room(client, room)
        self.bus.publish(RoomRemoved(room, client.user, operator=client.operator), room.members, client)
        await self.delete(room)
        if client.operator:
            log.info("{operator} deleted room {room}", operator=client.user, room=room.id)
        return room

    @handles(Invite)
    async def invite(self, client, cmd: Invite) -> Room:
        room = self.state.group(client.user, cmd.room)
        invitee = self.state.user(cmd.user)
        authz.may_invite(client.user, room, invitee, self.state.friends.get(client.user, set()))
        if self.state.blocks(invitee, client.user):
            return room  # silently: the blocker never hears of it
        self.state.set_invite(room, invitee, client.user)
        await self.store.add_invite(room.id, invitee, client.user, now_ms(self.clock))
        event = Invited(room, client.user, invitee)
        await self.delivery.notify(invitee, event, "invite", {"room": room.id, "inviter": client.user})
        return room

    @handles(AnswerInvite)
    async def answer_invite(self, client, cmd: AnswerInvite) -> Room:
        room = self.state.group(client.user, cmd.room)
        authz.may_answer_invite(client.user, room)
        if cmd.accept:
            return await self.join(client, JoinRoom(room.id))
        inviter = await self.drop_invite(room, client.user)
        if inviter is not None:
            await self._tell_inviter(room, inviter, client.user, False)
        return room

    @handles(ChangeLeader)
    async def change_leader(self, client, cmd: ChangeLeader) -> Room:
        room = self.state.group(client.user, cmd.room)
        authz.may_hand_lead(client.user, room, cmd.leader)
        await self.set_leader(room, cmd.leader, by=client.user, client=client)
        return room

    @handles(SetTopic)
    async def set_topic(self, client, cmd: SetTopic) -> Room:
        room = self.state.group(client.user, cmd.room)
        authz.may_set_topic(client.user, room)
        topic = cmd.topic.strip()
        if len(topic) > MAX_TOPIC_CHARS or not topic.isprintable():
            raise ChatError(errors.BAD_FIELD, f"a topic is at most {MAX_TOPIC_CHARS} printable characters")
        self.state.set_topic(room, topic, client.user, now_ms(self.clock))
        await self.store.set_topic(room.id, topic, client.user, room.topic_at)
        self.bus.publish(TopicChanged(room, client.user), room.members, client)
        return room

    @handles(Members)
    async def members(self, client, cmd: Members) -> tuple[Room, list[Member]]:
        room = self.state.group(client.user, cmd.room)
        authz.may_list_members(client.user, room)
        users, online = self.state.users, self.bus.online
        return room, [Member(u, online(u), users.get(u, "")) for u in sorted(room.members)]

    @handles(ListRooms)
    async def list_rooms(self, client, cmd: ListRooms) -> list[RoomListing]:
        mine, online = self.state.rooms_of.get(client.user, set()), self.bus.online
        rooms = sorted((r for r in self.state.rooms.values() if r.kind == PUBLIC or r.id in mine), key=lambda r: r.id)
        return [RoomListing(r, len(r.members), sum(map(online, r.members)), r.id in mine) for r in rooms]
