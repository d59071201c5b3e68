"""Sending messages and reading history (a Core mixin)."""

from .. import errors
from ..errors import ChatError
from . import authz, commands as c
from .commands import handles
from .events import MessagePosted
from .model import Message, Room, direct_room_id


class Messaging:

    @handles(c.SendMessage)
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

    @handles(c.History)
    async def _history(self, client, cmd: c.History) -> tuple[Room, list[Message]]:
        if cmd.with_user:
            room = self._room(direct_room_id(client.user, self._user(cmd.with_user)))
        else:
            room = self._room(cmd.room)
        authz.may_read_history(client.user, room)
        limit = max(1, min(cmd.limit, self.limits.history_page))
        return room, await self.store.history(room.id, cmd.before, limit)
