"""Messages (text, encrypted, media), typing, read receipts, history (a Core mixin).

Every message kind is stored once and fanned out to the members of its room,
except to members who blocked the sender. Encrypted messages are opaque to the
server: stored and forwarded, never read.
"""

from .. import errors
from ..errors import ChatError
from . import authz
from . import commands as c
from .commands import handles
from .events import MessagePosted, ReadReceipt, Typing
from .model import Message, Room, direct_room_id


class Messaging:
    def _recipients(self, sender: str, room: Room) -> set[str]:
        blockers = self.blocked_by.get(sender)
        return room.members - blockers if blockers else room.members

    def _target(self, client, to: str = "", to_user: str = "", to_room: str = "") -> Room:
        """The room a message goes to: a room or group (by id, or a group by name), or a user's direct conversation."""
        if not to_room and not to_user:
            if to in self.users:
                to_user = to
            elif to in self.rooms or self._named_groups(client.user, to):
                to_room = to
            else:
                raise ChatError(errors.NO_SUCH_USER, f"no such user or room: {to}")
        if to_room:
            room = self._group(client.user, to_room)
            authz.may_post(client.user, room)
            return room
        peer = self._user(to_user)
        if peer == client.user:
            raise ChatError(errors.SELF_MESSAGE)
        return self._direct(client.user, peer)

    async def _post(self, client, room: Room, kind: str, body: str) -> Message:
        """Store a message, then fan it out; the caller acknowledges after this returns."""
        message = Message(self.store.next_message_id(), room.id, client.user, body, self._now(), kind)
        await self.store.append_message(message)
        self.fanout_upto = max(self.fanout_upto, message.id)
        self.bus.publish(MessagePosted(message=message, room=room), self._recipients(client.user, room), client)
        return message

    @handles(c.SendMessage)
    async def _send(self, client, cmd: c.SendMessage) -> tuple[Message, Room]:
        if cmd.sender and cmd.sender != client.user:
            raise ChatError(errors.BAD_FIELD, f"sender must be {client.user}, the user logged in here")
        limit = self.limits.max_message_chars * (4 if cmd.kind == "encrypted" else 1)  # ciphertext is longer
        if not cmd.text.strip() or len(cmd.text) > limit:
            raise ChatError(errors.BAD_CONTENT, f"a message is 1-{limit} characters")
        room = self._target(client, cmd.to, cmd.to_user, cmd.to_room)
        return await self._post(client, room, cmd.kind, cmd.text), room

    @handles(c.SetTyping)
    async def _typing(self, client, cmd: c.SetTyping) -> Room:
        room = self._target(client, cmd.to)
        event = Typing(user=client.user, room=room, typing=cmd.typing)
        self.bus.publish(event, self._recipients(client.user, room) - {client.user})
        return room

    async def _visible_message(self, client, message_id: int) -> tuple[Message, Room]:
        """A message the client may see (it is in one of their rooms)."""
        message = await self.store.message(message_id)
        room = self.rooms.get(message.room_id) if message else None
        if room is None or client.user not in room.members:
            raise ChatError(errors.NO_SUCH_MESSAGE, f"no message {message_id} in your rooms")
        return message, room

    @handles(c.MarkRead)
    async def _mark_read(self, client, cmd: c.MarkRead) -> Message:
        message, room = await self._visible_message(client, cmd.message_id)
        if message.sender != client.user and not self._blocks(message.sender, client.user):
            self.bus.publish(ReadReceipt(reader=client.user, message=message, room=room), (message.sender,))
        return message

    def _unblocked(self, user: str, messages: list[Message]) -> list[Message]:
        hidden = self.blocked.get(user)
        return [m for m in messages if m.sender not in hidden] if hidden else messages

    @handles(c.History)
    async def _history(self, client, cmd: c.History) -> tuple[Room, list[Message]]:
        if cmd.with_user:
            room = self._room(direct_room_id(client.user, self._user(cmd.with_user)))
        else:
            room = self._group(client.user, cmd.room)
        authz.may_read_history(client.user, room)
        limit = max(1, min(cmd.limit, self.limits.history_page))
        return room, self._unblocked(client.user, await self.store.history(room.id, cmd.before, limit))

    @handles(c.HistorySync)
    async def _history_sync(self, client, cmd: c.HistorySync) -> tuple[int, int, list[tuple[Message, Room]]]:
        """A page of everything in the user's rooms, oldest first: (snapshot's last id, where the next page starts, page).
        An empty page means the end."""
        upto, after = cmd.upto or self.fanout_upto, cmd.after
        limit = max(1, min(cmd.limit, self.limits.history_page))
        while True:
            raw = await self.store.timeline(client.user, after, upto, limit)
            if not raw and not cmd.after:
                raise ChatError(errors.NO_HISTORY)
            page = [(m, self.rooms[m.room_id]) for m in self._unblocked(client.user, raw) if m.room_id in self.rooms]
            after = raw[-1].id if raw else after
            if page or len(raw) < limit:
                return upto, after, page
