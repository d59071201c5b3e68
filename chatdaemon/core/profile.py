"""Metadata of users and messages, user information, feedback to the operators (a Core mixin)."""

from dataclasses import dataclass

import orjson

from .. import errors
from ..errors import ChatError
from . import commands as c
from .commands import handles
from .events import MetadataChanged

MAX_KEY = 64
MAX_VALUE_BYTES = 4096
MAX_KEYS = 64


@dataclass(frozen=True)
class Profile:
    username: str
    online: bool
    status: str
    friend: bool
    blocked: bool
    metadata: dict


class Profiles:
    @handles(c.SetMetadata)
    async def _set_metadata(self, client, cmd: c.SetMetadata) -> MetadataChanged:
        if not 0 < len(cmd.key) <= MAX_KEY:
            raise ChatError(errors.BAD_FIELD, f"a metadata key is 1-{MAX_KEY} characters")
        if len(orjson.dumps(cmd.value)) > MAX_VALUE_BYTES:
            raise ChatError(errors.BAD_FIELD, f"a metadata value is at most {MAX_VALUE_BYTES} bytes of JSON")
        event = MetadataChanged(user=client.user, message_id=cmd.message_id, key=cmd.key, value=cmd.value)
        if cmd.message_id:
            message, room = await self._visible_message(client, cmd.message_id)
            if message.sender != client.user:
                raise ChatError(errors.NOT_AUTHOR, "only the author may set a message's metadata")
            audience = self._recipients(client.user, room)
        else:
            audience = self._audience(client.user)
        current = await self.store.metadata(client.user, cmd.message_id)
        if cmd.key not in current and len(current) >= MAX_KEYS:
            raise ChatError(errors.BAD_FIELD, f"at most {MAX_KEYS} metadata keys")
        await self.store.set_metadata(client.user, cmd.message_id, cmd.key, cmd.value, self._now())
        self.bus.publish(event, audience, client)
        return event

    @handles(c.UserInfo)
    async def _user_info(self, client, cmd: c.UserInfo) -> Profile:
        name = self._user(cmd.username)
        online = self.bus.online(name) and client.user in self._audience(name)  # presence is for friends
        return Profile(
            username=name,
            online=online,
            status=self.users[name] if online else "offline",
            friend=name in self.friends.get(client.user, ()),
            blocked=self._blocks(client.user, name),
            metadata=await self.store.metadata(name, 0),
        )

    @handles(c.Feedback)
    async def _feedback(self, client, cmd: c.Feedback) -> str:
        text = cmd.text.strip()
        if not 0 < len(text) <= self.limits.max_message_chars:
            raise ChatError(errors.BAD_CONTENT, f"feedback is 1-{self.limits.max_message_chars} characters")
        if cmd.rating is not None and not 1 <= cmd.rating <= 5:
            raise ChatError(errors.BAD_FIELD, "a rating is 1 to 5")
        await self.store.add_feedback(client.user, text, cmd.rating, self._now())
        self.log.info("feedback from {user}", user=client.user)
        return text
