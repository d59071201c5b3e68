"""Metadata of users and messages, user information, and feedback to the operators."""

import orjson

from .. import errors
from ..errors import ChatError
from . import authz
from .commands import Feedback, SetMetadata, UserInfo
from .events import MetadataChanged
from .handling import handles, log, now_ms
from .model import display_text
from .results import Profile

MAX_KEY = 64
MAX_VALUE_BYTES = 4096
MAX_KEYS = 64


class Profiles:
    def __init__(self, state, store, bus, presence, messages, limits, clock):
        self.state, self.store, self.bus, self.presence = state, store, bus, presence
        self.messages, self.limits, self.clock = messages, limits, clock

    @handles(SetMetadata)
    async def set_metadata(self, client, cmd: SetMetadata) -> MetadataChanged:
        key = display_text(cmd.key)
        if not 0 < len(key) <= MAX_KEY:
            raise ChatError(errors.BAD_FIELD, f"a metadata key is 1-{MAX_KEY} characters")
        if len(orjson.dumps(cmd.value)) > MAX_VALUE_BYTES:
            raise ChatError(errors.BAD_FIELD, f"a metadata value is at most {MAX_VALUE_BYTES} bytes of JSON")
        if cmd.message_id:
            message, room = await self.messages.visible(client.user, cmd.message_id)
            authz.may_annotate(client.user, message)
            audience = self.state.recipients(client.user, room)
        else:
            audience = self.state.friend_audience(client.user) | {client.user}
        current = await self.store.metadata(client.user, cmd.message_id)
        if key not in current and len(current) >= MAX_KEYS:
            raise ChatError(errors.BAD_FIELD, f"at most {MAX_KEYS} metadata keys")
        await self.store.set_metadata(client.user, cmd.message_id, key, cmd.value, now_ms(self.clock))
        event = MetadataChanged(client.user, key, cmd.value, cmd.message_id)
        self.bus.publish(event, audience, client)
        return event

    @handles(UserInfo)
    async def user_info(self, client, cmd: UserInfo) -> Profile:
        name = self.state.user(cmd.user)
        online = self.bus.online(name) and self.presence.sees_as_friend(client.user, name)  # seed 002: friends
        return Profile(
            username=name,
            online=online,
            status=self.state.users[name] if online else "offline",
            friend=name in self.state.friends.get(client.user, ()),
            blocked=self.state.blocks(client.user, name),
            metadata=await self.store.metadata(name, 0),
        )

    @handles(Feedback)
    async def feedback(self, client, cmd: Feedback) -> str:
        text = cmd.text.strip()
        if not 0 < len(text) <= self.limits.max_message_chars:
            raise ChatError(errors.BAD_CONTENT, f"feedback is 1-{self.limits.max_message_chars} characters")
        if cmd.rating is not None and not 1 <= cmd.rating <= 5:
            raise ChatError(errors.BAD_FIELD, "a rating is 1 to 5")
        await self.store.add_feedback(client.user, text, cmd.rating, now_ms(self.clock))
        log.info("feedback from {user}", user=client.user)
        return text
