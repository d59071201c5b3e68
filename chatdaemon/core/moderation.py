"""What the operators do from the admin shell: kick, ban and unban, broadcast, passwords, account deletion,
reading feedback. (Deleting a room is DeleteRoom, the same command a leader uses, in rooms.py.)

The same rules and the same store as clients' commands, refused unless the principal is an
operator (authz.may_moderate). A banned account cannot log in, by password or by key, over any
transport or REST (authz.may_log_in, asked before a key is made).
"""

from twisted.internet.defer import gatherResults

from .. import errors
from ..errors import ChatError
from . import authz
from .accounts import check_password
from .commands import Ban, Broadcast, DeleteUser, Kick, ReadFeedback, SetPassword, Unban
from .events import Notice
from .handling import handles, log
from .model import DIRECT, GROUP
from .results import FeedbackEntry


class Moderation:
    def __init__(self, state, store, bus, passwords, rooms, files, limits):
        self.state, self.store, self.bus, self.passwords = state, store, bus, passwords
        self.rooms, self.files, self.limits = rooms, files, limits

    def _disconnect(self, user: str, code: int, text: str) -> int:
        """Close every connection of `user`, on every node, with a last Notice; the number closed."""
        return self.bus.kick(user, Notice(code, text))

    @handles(Kick)
    async def kick(self, client, cmd: Kick) -> int:
        authz.may_moderate(client)
        user = self.state.user(cmd.user)
        log.info("{operator} kicked {user}", operator=client.user, user=user, reason=cmd.reason)
        return self._disconnect(user, errors.KICKED, cmd.reason.strip() or errors.MESSAGES[errors.KICKED])

    @handles(Ban)
    async def ban(self, client, cmd: Ban) -> int:
        authz.may_moderate(client)
        user = self.state.user(cmd.user)
        self.state.set_banned(user, True)
        closed = self._disconnect(user, errors.BANNED, cmd.reason.strip() or errors.MESSAGES[errors.BANNED])
        await gatherResults([self.store.set_banned(user, True), self.store.delete_session_keys(user)])
        log.info("{operator} banned {user}", operator=client.user, user=user, reason=cmd.reason)
        return closed

    @handles(Unban)
    async def unban(self, client, cmd: Unban) -> str:
        authz.may_moderate(client)
        user = self.state.user(cmd.user)
        self.state.set_banned(user, False)
        await self.store.set_banned(user, False)
        log.info("{operator} unbanned {user}", operator=client.user, user=user)
        return user

    @handles(Broadcast)
    async def broadcast(self, client, cmd: Broadcast) -> int:
        authz.may_moderate(client)
        text = cmd.text.strip()
        if not text or len(text) > self.limits.max_message_chars:
            raise ChatError(errors.BAD_CONTENT, f"a broadcast is 1-{self.limits.max_message_chars} characters")
        users = list(self.bus.online_users())
        self.bus.publish(Notice(errors.ANNOUNCEMENT, text), users)
        log.info("{operator} broadcast to {n} users: {text}", operator=client.user, n=len(users), text=text)
        return len(users)

    @handles(SetPassword)
    async def set_password(self, client, cmd: SetPassword) -> str:
        authz.may_moderate(client)
        user = self.state.user(cmd.user)
        check_password(cmd.password)
        hashed = await self.passwords.hash(cmd.password)
        await gatherResults([self.store.set_password(user, hashed), self.store.delete_session_keys(user)])
        log.info("{operator} set the password of {user}", operator=client.user, user=user)
        return user

    @handles(DeleteUser)
    async def delete_user(self, client, cmd: DeleteUser) -> str:
        """Close the user's connections and delete the account: its memberships (a group it led passes to
        another member, an emptied group goes), direct conversations, invitations, friendships, requests,
        blocks and uploads in progress."""
        authz.may_moderate(client)
        state = self.state
        user = state.user(cmd.user)
        self._disconnect(user, errors.KICKED, "this account was deleted")
        for room_id in sorted(state.rooms_of.get(user, set())):
            room = state.rooms[room_id]
            if room.kind == DIRECT:
                await self.rooms.delete(room)
                continue
            await self.rooms.drop_member(room, user)
            if room.kind == GROUP and not room.members:
                await self.rooms.delete(room)
            elif room.leader == user and room.members:
                await self.rooms.set_leader(room, min(room.members), by=client.user)
        self.files.drop_all_of(user)
        state.remove_user(user)  # invitations, friends, requests, blocks, ban, usage
        await self.store.delete_user(user)  # the store's own cascade removes the rest
        log.info("{operator} deleted user {user}", operator=client.user, user=user)
        return user

    @handles(ReadFeedback)
    async def read_feedback(self, client, cmd: ReadFeedback) -> list[FeedbackEntry]:
        authz.may_moderate(client)
        return [FeedbackEntry(*row) for row in reversed(await self.store.feedback(max(1, cmd.limit)))]
