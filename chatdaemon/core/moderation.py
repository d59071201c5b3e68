"""What the operators do from the admin shell (a Core mixin).

Kick, ban and unban, broadcast, deleting a room, setting a password, deleting
an account, reading feedback: the same rules and the same store as a client's
commands, refused unless the client is an operator (`client.operator`, set
only by the admin shell). Accounts are created with the ordinary `Register`.

A banned account cannot log in, with a password or a session key, over any
transport or REST: the login asks `_refuse_banned` before it makes a key. The
banned accounts are read from the store at the first login or ban.

A client that is disconnected here needs, beside what core.chat lists,
`notify_close(event)`: send this last event, in the client's dialect, and close.
"""

from dataclasses import dataclass

from twisted.internet.defer import gatherResults

from .. import errors
from ..errors import ChatError
from .commands import Command, handles
from .events import Notice
from .model import DIRECT, GROUP


@dataclass(frozen=True)
class Kick(Command):
    user: str
    reason: str = ""


@dataclass(frozen=True)
class Ban(Command):
    user: str
    reason: str = ""


@dataclass(frozen=True)
class Unban(Command):
    user: str


@dataclass(frozen=True)
class Broadcast(Command):
    text: str


@dataclass(frozen=True)
class DeleteRoom(Command):
    room: str


@dataclass(frozen=True)
class SetPassword(Command):
    user: str
    password: str


@dataclass(frozen=True)
class DeleteUser(Command):
    user: str


@dataclass(frozen=True)
class ReadFeedback(Command):
    limit: int = 20


@dataclass(frozen=True)
class Feedback:
    """What a user sent with seed 000's FEEDBACK (core.profile keeps it)."""

    id: int
    user: str
    text: str
    rating: int | None
    ts: int  # milliseconds since the epoch


def may_moderate(client) -> None:
    """Operators only. (Not in authz.py: that module rules on users and rooms.)"""
    if not getattr(client, "operator", False):
        raise ChatError(errors.OPERATORS_ONLY)


class Moderation:
    _banned: set[str] | None = None

    async def banned(self) -> set[str]:
        """The banned accounts."""
        if self._banned is None:
            loaded = set(await self.store.banned_users())
            if self._banned is None:  # not loaded by another caller meanwhile
                self._banned = loaded
        return self._banned

    async def _refuse_banned(self, user: str) -> None:
        """Every login (by password or session key, over any transport or REST) asks this first."""
        if user in await self.banned():
            raise ChatError(errors.BANNED)

    def _disconnect_user(self, user: str, code: int, text: str) -> int:
        """Close every connection of `user` with a last Notice; the number closed."""
        clients = self.bus.clients(user)
        notice = Notice(code=code, text=text)
        for client in clients:
            client.notify_close(notice)
        return len(clients)

    def _text_of(self, text: str, what: str) -> str:
        text = text.strip()
        if not text or len(text) > self.limits.max_message_chars:
            raise ChatError(errors.BAD_CONTENT, f"{what} is 1-{self.limits.max_message_chars} characters")
        return text

    @handles(Kick)
    async def _kick(self, client, cmd: Kick) -> int:
        may_moderate(client)
        user = self._user(cmd.user)
        self.log.info("{operator} kicked {user}", operator=client.user, user=user, reason=cmd.reason)
        return self._disconnect_user(user, errors.KICKED, cmd.reason.strip() or errors.MESSAGES[errors.KICKED])

    @handles(Ban)
    async def _ban(self, client, cmd: Ban) -> int:
        may_moderate(client)
        user = self._user(cmd.user)
        (await self.banned()).add(user)
        closed = self._disconnect_user(user, errors.BANNED, cmd.reason.strip() or errors.MESSAGES[errors.BANNED])
        await gatherResults([self.store.set_banned(user, True), self.store.delete_session_keys(user)])
        self.log.info("{operator} banned {user}", operator=client.user, user=user, reason=cmd.reason)
        return closed

    @handles(Unban)
    async def _unban(self, client, cmd: Unban) -> str:
        may_moderate(client)
        user = self._user(cmd.user)
        (await self.banned()).discard(user)
        await self.store.set_banned(user, False)
        self.log.info("{operator} unbanned {user}", operator=client.user, user=user)
        return user

    @handles(Broadcast)
    async def _broadcast(self, client, cmd: Broadcast) -> int:
        may_moderate(client)
        text = self._text_of(cmd.text, "a broadcast")
        users = list(self.bus.online_users())
        self.bus.publish(Notice(code=errors.ANNOUNCEMENT, text=text), users)
        self.log.info("{operator} broadcast to {n} users: {text}", operator=client.user, n=len(users), text=text)
        return len(users)

    @handles(DeleteRoom)
    async def _operator_delete_room(self, client, cmd: DeleteRoom):
        may_moderate(client)
        room = self._room(cmd.room)
        notice = Notice(code=errors.ROOM_DELETED, text=f"{room.id} was deleted by the operators")
        self.bus.publish(notice, room.members)
        await self._delete_room(room)
        self.log.info("{operator} deleted room {room}", operator=client.user, room=room.id)
        return room

    @handles(SetPassword)
    async def _set_password(self, client, cmd: SetPassword) -> str:
        may_moderate(client)
        user = self._user(cmd.user)
        if not 0 < len(cmd.password) <= 1024:
            raise ChatError(errors.BAD_NAME, "passwords are 1-1024 characters")
        hashed = await self.passwords.hash(cmd.password)
        await gatherResults([self.store.set_password(user, hashed), self.store.delete_session_keys(user)])
        self.log.info("{operator} set the password of {user}", operator=client.user, user=user)
        return user

    @handles(DeleteUser)
    async def _delete_user(self, client, cmd: DeleteUser) -> str:
        """Close the user's connections and delete the account: its memberships (a group it led
        passes to another member, an emptied group goes), direct conversations, invitations,
        friendships, requests, blocks and uploads in progress."""
        may_moderate(client)
        user = self._user(cmd.user)
        self._disconnect_user(user, errors.KICKED, "this account was deleted")
        for room_id in sorted(self.rooms_of.get(user, set())):
            room = self.rooms[room_id]
            if room.kind == DIRECT:
                await self._delete_room(room)
                continue
            await self._drop_member(room, user)
            if room.kind == GROUP and not room.members:
                await self._delete_room(room)
            elif room.leader == user:
                await self._set_leader(room, min(room.members), by=client.user)
        for room_id in self.invited_to.pop(user, set()):
            self.rooms[room_id].invited.pop(user, None)
        for friend in self.friends.pop(user, set()):
            self.friends.get(friend, set()).discard(user)
        self.friend_requests = {(s, r) for s, r in self.friend_requests if user not in (s, r)}
        for other in self.blocked.pop(user, set()):
            self.blocked_by.get(other, set()).discard(user)
        for other in self.blocked_by.pop(user, set()):
            self.blocked.get(other, set()).discard(user)
        for key in [k for k in self.uploads if k[0] == user]:
            self._drop_upload(key)
        self.rooms_of.pop(user, None)
        self.file_usage.pop(user, None)
        del self.users[user]
        (await self.banned()).discard(user)
        await self.store.delete_user(user)  # the store's own cascade removes the rest
        self.log.info("{operator} deleted user {user}", operator=client.user, user=user)
        return user

    @handles(ReadFeedback)
    async def _read_feedback(self, client, cmd: ReadFeedback) -> list[Feedback]:
        """The newest `limit` entries, oldest first."""
        may_moderate(client)
        return [Feedback(*row) for row in reversed(await self.store.feedback(max(1, cmd.limit)))]
