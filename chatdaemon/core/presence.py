"""Presence: who is online, told to whom, and custom statuses.

A user's coming online, going offline and status changes reach two audiences, as two events:
their friends (seed 002's presence: `friend=True`) and, separately, the users they share a
conversation with who are not friends (room presence: `friend=False`). Each dialect shows what
its seed shows: the typed and text dialects friends only, the events and colon dialects both.
Those who blocked the user see neither. A user's own other connections see their presence too.
"""

from .. import errors
from ..errors import ChatError
from .commands import OnlineContacts, SetStatus
from .events import PresenceChanged
from .handling import handles
from .model import display_text

MAX_STATUS_CHARS = 64


class Presence:
    def __init__(self, state, store, bus):
        self.state, self.store, self.bus = state, store, bus

    def announce(self, user: str, online: bool, exclude=None, here_only: bool = False) -> None:
        """Tell both audiences of `user` their current presence (`here_only`: on this node, not every node)."""
        status = self.state.users.get(user, "online") if online else "offline"
        friends = self.state.friend_audience(user) | {user}
        publish = self.bus.deliver if here_only else self.bus.publish
        publish(PresenceChanged(user, online, status, friend=True), friends, exclude)
        others = self.state.room_audience(user) - friends
        if others:
            publish(PresenceChanged(user, online, status, friend=False), others, exclude)

    def sees_as_friend(self, viewer: str, user: str) -> bool:
        """Whether `viewer` is shown `user`'s presence as a friend (seed 002's rule)."""
        return viewer == user or viewer in self.state.friend_audience(user)

    @handles(SetStatus)
    async def set_status(self, client, cmd: SetStatus) -> tuple[str, str]:
        status = display_text(cmd.status)
        if not 0 < len(status) <= MAX_STATUS_CHARS:
            raise ChatError(errors.BAD_FIELD, f"a status is 1-{MAX_STATUS_CHARS} characters")
        self.state.set_status(client.user, status)
        await self.store.set_status(client.user, status)
        self.announce(client.user, True, exclude=client)
        return client.user, status

    @handles(OnlineContacts)
    async def online_contacts(self, client, cmd: OnlineContacts) -> list[PresenceChanged]:
        me, state = client.user, self.state
        friends = state.friends.get(me, set())
        contacts = set(friends)
        for room_id in state.rooms_of.get(me, ()):
            contacts |= state.rooms[room_id].members
        contacts -= state.hidden_from(me) | {me}  # whom I blocked: their presence does not reach me
        return [
            PresenceChanged(user, True, state.users.get(user, "online"), friend=user in friends)
            for user in sorted(contacts)
            if self.bus.online(user)
        ]
