"""The Core: applies commands, keeps the live state, persists through the store, emits events.

The work is split by concern into mixins (accounts, offline, rooms, messages);
each handler is marked with `@handles(CommandType)` and found here by that mark.

A client (a Session, or a test double) is anything with:
  user            the logged-in user name, or None (the core sets it)
  key_hash        the hash of the session key it logged in with (the core sets it)
  open            False once the connection is gone
  deliver(event)  queue an event for the client
  hold()          queue live events aside while missed ones are replayed
  release()       end the replay: send what was held
  writable()      a Deferred that fires when the client can take more
  delivered_upto(fanout)  the highest message id the client surely received
"""

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.logger import Logger

from .. import errors
from ..errors import ChatError
from . import commands as c
from .accounts import Accounts, Passwords
from .editing import Editing
from .friends import Friends
from .history_files import HistoryFiles
from .media import Media
from .messages import Messaging
from .model import Room
from .moderation import Moderation
from .offline import Delivery
from .profile import Profiles
from .rooms import Rooms


class Core(Moderation, Accounts, Friends, Delivery, Rooms, Messaging, Media, Profiles, HistoryFiles, Editing):
    log = Logger()

    def __init__(self, store, file_store, bus, passwords: Passwords, limits, file_limits, clock):
        self.store = store
        self.file_store = file_store
        self.bus = bus
        self.passwords = passwords
        self.limits = limits
        self.file_limits = file_limits
        self.clock = clock
        self.users: dict[str, str] = {}  # name -> custom status
        self.rooms: dict[str, Room] = {}
        self.rooms_of: dict[str, set[str]] = {}  # user -> ids of the rooms they are in
        self.invited_to: dict[str, set[str]] = {}  # user -> ids of the groups inviting them
        self.friends: dict[str, set[str]] = {}
        self.friend_requests: set[tuple[str, str]] = set()  # (sender, receiver), pending
        self.blocked: dict[str, set[str]] = {}  # user -> whom they blocked
        self.blocked_by: dict[str, set[str]] = {}  # user -> who blocked them
        self.uploads: dict = {}  # (owner, the client's upload id) -> media.Upload
        self.file_usage: dict[str, int] = {}  # owner -> bytes stored
        self.fanout_upto = 0  # every message up to this id has been handed to the bus
        self._marks: dict[str, int] = {}  # user -> best delivered_upto of this online period
        self._handlers, self._anonymous = {}, set()
        for name in dir(type(self)):
            method = getattr(self, name)
            for kind in getattr(method, "handles", ()):
                self._handlers[kind] = method
                if method.anonymous:
                    self._anonymous.add(kind)

    async def start(self) -> None:
        """Load users, rooms, memberships and invitations from the store."""
        snap = await self.store.load()
        self.users = snap.users
        self.rooms = snap.rooms
        self.rooms_of, self.invited_to, self.blocked_by = {}, {}, {}
        for room in self.rooms.values():
            for user in room.members:
                self.rooms_of.setdefault(user, set()).add(room.id)
            for user in room.invited:
                self.invited_to.setdefault(user, set()).add(room.id)
        self.friends, self.friend_requests, self.blocked = snap.friends, snap.friend_requests, snap.blocked
        self.file_usage = snap.file_usage
        for user, blocked in self.blocked.items():
            for other in blocked:
                self.blocked_by.setdefault(other, set()).add(user)
        self.fanout_upto = snap.last_message_id
        self.log.info(
            "loaded {users} users, {rooms} rooms, last message {last}",
            users=len(self.users),
            rooms=len(self.rooms),
            last=self.fanout_upto,
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

    def _background(self, d: Deferred, what: str) -> None:
        """A write nobody waits for: log it if it fails."""
        d.addErrback(lambda f: self.log.failure("background write failed: {what}", f, what=what))

    # -- accounts and presence

    # -- rooms

    # -- messages
