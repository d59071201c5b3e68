"""Typing indicators: one state per (user, room) that expires by itself.

A "typing" not renewed within `seconds` is followed by a "stopped" for it, so a client that
vanishes mid-sentence never leaves others watching an indicator forever. A stop after an
expiry was already told, so it is not told again.
"""

from twisted.internet.interfaces import IDelayedCall

from .commands import SetTyping
from .events import Typing
from .handling import handles
from .model import Room

TYPING_SECONDS = 6.0


class TypingIndicators:
    def __init__(self, state, bus, rooms, clock, seconds: float = TYPING_SECONDS):
        self.state, self.bus, self.rooms, self.clock, self.seconds = state, bus, rooms, clock, seconds
        self._timers: dict[tuple[str, str], IDelayedCall] = {}  # (user, room id) -> its expiry

    def _tell(self, user: str, room: Room, typing: bool) -> None:
        self.bus.publish(Typing(user, room, typing), self.state.recipients(user, room) - {user})

    @handles(SetTyping)
    async def set_typing(self, client, cmd: SetTyping) -> Room:
        room = await self.rooms.target(client, cmd.where)
        key = (client.user, room.id)
        timer = self._timers.pop(key, None)
        if timer is not None and timer.active():
            timer.cancel()
        if cmd.typing:
            self._timers[key] = self.clock.callLater(self.seconds, self._expired, client.user, room)
        if cmd.typing or timer is not None:
            self._tell(client.user, room, cmd.typing)
        return room

    def _expired(self, user: str, room: Room) -> None:
        del self._timers[(user, room.id)]
        self._tell(user, room, False)

    def stop(self) -> None:
        """At shutdown: cancel every pending expiry."""
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()
