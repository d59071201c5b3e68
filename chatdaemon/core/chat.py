"""The Core: applies commands, keeps the live state, persists through the store, emits events.

A client (a Session, or a test double) is anything with:
  user            the logged-in user name, or None (the core sets it)
  key_hash        the hash of the session key it logged in with (the core sets it)
  open            False once the connection is gone
  deliver(event)  queue an event for the client
  hold()          queue live events aside while missed ones are replayed
  release()       end the replay: send what was held
  writable()      a Deferred that fires when the client can take more
  delivered_upto(fanout)  the highest message id the client surely received

Offline delivery costs O(1) per message: a message is stored once, and each
user has one cursor, the last message id they were given, written when their
last connection closes. At login, whatever is newer than the cursor in the
user's rooms is replayed, oldest first, page by page.
"""

import re
from dataclasses import dataclass

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from .. import errors
from ..errors import ChatError
from ..store import Conflict
from . import authz, commands as c
from .accounts import Passwords, key_hash, new_session_key
from .events import Invited, MemberJoined, MemberLeft, MessagePosted, PresenceChanged
from .model import DIRECT, GROUP, PUBLIC, ROOM_NAME, USER_NAME, Message, Room, direct_room_id


@dataclass(frozen=True)
class LoginResult:
    user: str
    session_key: str


@dataclass(frozen=True)
class Member:
    user: str
    online: bool
    status: str


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:48] or "group"


class Core:
    log = Logger()

    def __init__(self, store, bus, passwords: Passwords, limits, clock):
        self.store = store
        self.bus = bus
        self.passwords = passwords
        self.limits = limits
        self.clock = clock
        self.users: dict[str, str] = {}  # name -> custom status
        self.rooms: dict[str, Room] = {}
        self.rooms_of: dict[str, set[str]] = {}  # user -> ids of the rooms they are in
        self.fanout_upto = 0  # every message up to this id has been handed to the bus
        self._marks: dict[str, int] = {}  # user -> best delivered_upto of this online period
        self._handlers = {
            c.Register: self._register,
            c.Login: self._login,
            c.Logout: self._logout,
            c.SetStatus: self._set_status,
            c.JoinRoom: self._join,
            c.LeaveRoom: self._leave,
            c.CreateGroup: self._create_group,
            c.Invite: self._invite,
            c.AnswerInvite: self._answer_invite,
            c.SendMessage: self._send,
            c.History: self._history,
            c.Who: self._who,
            c.ListRooms: self._list_rooms,
        }
        self._anonymous = {c.Register, c.Login}

    async def start(self) -> None:
        """Load users, rooms, memberships and invitations from the store."""
        snap = await self.store.load()
        self.users = snap.users
        self.rooms = snap.rooms
        self.rooms_of = {}
        for room in self.rooms.values():
            for user in room.members:
                self.rooms_of.setdefault(user, set()).add(room.id)
        self.fanout_upto = snap.last_message_id
        self.log.info(
            "loaded {users} users, {rooms} rooms, last message {last}",
            users=len(self.users), rooms=len(self.rooms), last=self.fanout_upto,
        )

    def execute(self, client, command: c.Command) -> Deferred:
        """Apply `command` for `client`; fires with the result or fails with ChatError."""
        kind = type(command)
        if client.user is None and kind not in self._anonymous:
            return maybeDeferred(self._refuse, ChatError(errors.NOT_LOGGED_IN))
        return Deferred.fromCoroutine(self._guarded(self._handlers[kind], client, command))

    @staticmethod
    def _refuse(error):
        raise error

    async def _guarded(self, handler, client, command):
        try:
            return await handler(client, command)
        except ChatError:
            raise
        except Exception:
            self.log.failure("{command} failed", command=command)
            raise ChatError(errors.SERVER_ERROR) from None

    def disconnect(self, client) -> None:
        """The client's connection is gone."""
        if client.user is not None:
            self._detach(client)

    # -- helpers

    def _now(self) -> int:
        return int(self.clock.seconds() * 1000)

    def _room(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            raise ChatError(errors.NO_SUCH_ROOM, f"no such room: {room_id}")
        return room

    def _user(self, name: str) -> str:
        if name not in self.users:
            raise ChatError(errors.NO_SUCH_USER, f"no such user: {name}")
        return name

    def _co_members(self, user: str) -> set[str]:
        """Everyone who shares a room with `user`, and `user`: who sees their presence."""
        seen = {user}
        for rid in self.rooms_of.get(user, ()):
            seen |= self.rooms[rid].members
        return seen

    def _background(self, d: Deferred, what: str) -> None:
        """A write nobody waits for: log it if it fails."""
        d.addErrback(lambda f: self.log.failure("background write failed: {what}", f, what=what))

    def _add_member(self, room: Room, user: str) -> Deferred:
        room.members.add(user)
        self.rooms_of.setdefault(user, set()).add(room.id)
        return self.store.add_member(room.id, user, self.fanout_upto)

    def _drop_member(self, room: Room, user: str) -> Deferred:
        room.members.discard(user)
        self.rooms_of.get(user, set()).discard(room.id)
        return self.store.remove_member(room.id, user)

    # -- accounts and presence

    async def _register(self, client, cmd: c.Register) -> str:
        if not USER_NAME.fullmatch(cmd.username) or not 0 < len(cmd.password) <= 1024:
            raise ChatError(errors.BAD_NAME, "user names are 1-32 of A-Z a-z 0-9 _ . -; passwords 1-1024 characters")
        if cmd.username in self.users or cmd.username in self.rooms:
            raise ChatError(errors.USER_EXISTS)
        hashed = await self.passwords.hash(cmd.password)
        try:
            await self.store.create_user(cmd.username, hashed, self._now())
        except Conflict:
            raise ChatError(errors.USER_EXISTS) from None
        self.users[cmd.username] = "online"
        self.log.info("registered {user}", user=cmd.username)
        return cmd.username

    async def _login(self, client, cmd: c.Login) -> LoginResult:
        if client.user is not None:
            raise ChatError(errors.ALREADY_LOGGED_IN)
        if cmd.session_key:
            key = cmd.session_key
            user = await self.store.user_for_key(key_hash(key))
            if user is None:
                raise ChatError(errors.INVALID_CREDENTIALS, "unknown or revoked session key")
        else:
            user = cmd.username
            if user not in self.users:
                raise ChatError(errors.USER_NOT_FOUND)
            hashed = await self.store.password_hash(user)
            if not await self.passwords.verify(hashed, cmd.password):
                self.log.info("login failed for {user}", user=user)
                raise ChatError(errors.INVALID_CREDENTIALS)
            key = new_session_key()
            await self.store.add_session_key(key_hash(key), user, self._now())
        if client.user is not None:
            raise ChatError(errors.ALREADY_LOGGED_IN)
        if client.open:
            await self._attach(client, user, key_hash(key))
        self.log.info("login ok for {user}", user=user)
        return LoginResult(user, key)

    async def _attach(self, client, user: str, hashed_key: str) -> None:
        client.user, client.key_hash = user, hashed_key
        if not self.bus.attach(user, client):
            return  # already online elsewhere: nothing was missed
        client.hold()
        upto = self.fanout_upto
        self.bus.publish(PresenceChanged(user=user, online=True, status=self.users[user]), self._co_members(user), client)
        cursor = await self.store.cursor(user) or 0
        if client.user != user:
            return  # gone while the cursor was read
        self._marks[user] = max(self._marks.get(user, 0), cursor)
        self._replay(client, user, cursor, upto)

    def _replay(self, client, user: str, cursor: int, upto: int) -> Deferred:
        async def replay():
            try:
                notices = await self.store.inbox(user)
                if notices and client.open:
                    for _, kind, payload, _ in notices:
                        room = self.rooms.get(payload["room"])
                        if kind == "invite" and room is not None and user in room.invited:
                            client.deliver(Invited(room=room, inviter=payload["inviter"], invitee=user, offline=True))
                    await self.store.drop_inbox(user, notices[-1][0])
                after = cursor
                while client.open:
                    page = await self.store.missed(user, after, upto, self.limits.offline_page)
                    for m in page:
                        await client.writable()
                        client.deliver(MessagePosted(message=m, room=self.rooms[m.room_id], offline=True))
                    if len(page) < self.limits.offline_page:
                        break
                    after = page[-1].id
            except Exception:
                self.log.failure("offline replay for {user} failed", user=user)
            finally:
                client.release()

        return Deferred.fromCoroutine(replay())

    def _detach(self, client) -> None:
        user = client.user
        client.user = None
        self._marks[user] = max(self._marks.get(user, 0), client.delivered_upto(self.fanout_upto))
        if self.bus.detach(user, client):
            self._background(self.store.set_cursor(user, self._marks.pop(user)), f"cursor of {user}")
            self.bus.publish(PresenceChanged(user=user, online=False, status="offline"), self._co_members(user))

    async def _logout(self, client, cmd: c.Logout) -> str:
        user, hashed = client.user, client.key_hash
        self._detach(client)
        await self.store.delete_session_key(hashed)
        return user

    async def _set_status(self, client, cmd: c.SetStatus) -> tuple[str, str]:
        status = cmd.status.strip()
        if not 0 < len(status) <= 64:
            raise ChatError(errors.BAD_FIELD, "a status is 1-64 characters")
        self.users[client.user] = status
        await self.store.set_status(client.user, status)
        self.bus.publish(PresenceChanged(user=client.user, online=True, status=status), self._co_members(client.user), client)
        return client.user, status

    # -- rooms

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

    # -- messages

    async def _send(self, client, cmd: c.SendMessage) -> tuple[Message, Room]:
        if cmd.sender and cmd.sender != client.user:
            raise ChatError(errors.BAD_FIELD, f"sender must be {client.user}, the user logged in here")
        if not cmd.text.strip() or len(cmd.text) > self.limits.max_message_chars:
            raise ChatError(errors.BAD_CONTENT, f"a message is 1-{self.limits.max_message_chars} characters")
        to_room = cmd.to_room or (cmd.to if cmd.to in self.rooms else "")
        if to_room:
            room = self._room(to_room)
            authz.may_post(client.user, room)
        else:
            peer = self._user(cmd.to_user or cmd.to)
            if peer == client.user:
                raise ChatError(errors.SELF_MESSAGE)
            room = self._direct(client.user, peer)
        message = Message(self.store.next_message_id(), room.id, client.user, cmd.text, self._now())
        await self.store.append_message(message)
        self.fanout_upto = max(self.fanout_upto, message.id)
        self.bus.publish(MessagePosted(message=message, room=room), room.members, client)
        return message, room

    async def _history(self, client, cmd: c.History) -> tuple[Room, list[Message]]:
        if cmd.with_user:
            room = self._room(direct_room_id(client.user, self._user(cmd.with_user)))
        else:
            room = self._room(cmd.room)
        authz.may_read_history(client.user, room)
        limit = max(1, min(cmd.limit, self.limits.history_page))
        return room, await self.store.history(room.id, cmd.before, limit)

    async def _who(self, client, cmd: c.Who) -> tuple[Room, list[Member]]:
        room = self._room(cmd.room)
        authz.may_list_members(client.user, room)
        return room, [Member(u, self.bus.online(u), self.users.get(u, "")) for u in sorted(room.members)]

    async def _list_rooms(self, client, cmd: c.ListRooms) -> list[Room]:
        mine = self.rooms_of.get(client.user, set())
        return sorted(
            (r for r in self.rooms.values() if r.id in mine or r.kind == PUBLIC), key=lambda r: r.id
        )
