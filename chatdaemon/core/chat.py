"""The Core: one handler object per concern, composed with explicit dependencies, and one dispatch table.

    state      ChatState: the live state, loaded at start
    presence   who is online, told to friends and to room mates; statuses
    delivery   attaching clients, notices kept for later, offline replay, cursors
    accounts   register, login, logout, authenticate a key; throttled (core/throttle.py)
    rooms      rooms, groups, direct conversations; addresses
    messages   send, edit, delete, react, history, conversations
    receipts   read marks
    typing     typing that expires
    files      uploads, downloads, file lists
    friends    friends and blocks
    profiles   metadata, user information, feedback
    moderation the operators' commands

`execute(principal, command)` runs a command for a principal (a Session, a REST caller, the admin
shell's operator: see core/interfaces.py); it fires with the handler's result or fails with ChatError
(any other exception is logged and becomes 9001). A principal that is not logged in may only run
commands marked `anonymous`.
"""

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from .. import errors
from ..bus import IBusListener
from ..errors import ChatError
from ..store import StorageFault, Unavailable
from .accounts import Accounts, Passwords
from .commands import Command
from .delivery import Delivery
from .fanout import Fanout
from .files import Files
from .friends import Friends
from .handling import handlers_of, log
from .messages import Messages
from .moderation import Moderation
from .presence import Presence
from .profiles import Profiles
from .receipts import Receipts
from .rooms import Rooms
from .state import ChatState, Stale
from .throttle import LoginThrottle, RegistrationThrottle
from .typing import TypingIndicators


@implementer(IBusListener)
class Core:
    def __init__(self, store, file_store, bus, passwords: Passwords, limits, file_limits, clock, throttle):
        """`limits`, `file_limits`, `throttle`: the [limits], [files] and [throttle] sections of the config."""
        self.store, self.bus, self.limits = store, bus, limits
        self.state = state = ChatState()
        self.presence = Presence(state, store, bus)
        self.delivery = Delivery(state, store, bus, self.presence, limits, clock)
        self.logins, self.registrations = LoginThrottle(clock, throttle), RegistrationThrottle(clock, throttle)
        self.accounts = Accounts(state, store, passwords, self.delivery, clock, self.logins, self.registrations)
        self.rooms = Rooms(state, store, file_store, bus, self.delivery, clock)
        self.fanout = Fanout(state, store, bus, clock, limits.offline_page)
        self.messages = Messages(state, store, bus, self.rooms, self.fanout, limits, clock)
        self.receipts = Receipts(state, store, bus, self.messages)
        self.typing = TypingIndicators(state, bus, self.rooms, clock)
        self.files = Files(state, store, file_store, self.rooms, self.messages, file_limits, clock)
        self.friends = Friends(state, store, bus, self.delivery, clock)
        self.profiles = Profiles(state, store, bus, self.presence, self.messages, limits, clock)
        self.moderation = Moderation(state, store, bus, passwords, self.rooms, self.files, limits)
        self._resyncing: list | None = None  # changes made while a resync reads the store
        self._resync_again = False
        state.observe = self._observed
        bus.listen(self)
        self._handlers: dict[type, Callable[..., Awaitable[Any]]] = {}
        for concern in (self.presence, self.accounts, self.rooms, self.messages, self.receipts, self.typing,
                        self.files, self.friends, self.profiles, self.moderation):  # fmt: skip
            for kind, method in handlers_of(concern):
                assert kind not in self._handlers, f"{kind.__name__} has two handlers"
                self._handlers[kind] = method

    async def start(self) -> None:
        """Load the live state from the store (with what other nodes change meanwhile), then fan out."""
        self._resyncing = []
        try:
            snapshot = await self.store.load()
        finally:
            changes, self._resyncing = self._resyncing, None
        self.state.load(snapshot)
        self.state.fanout_upto = snapshot.last_message_id
        for change in changes:
            with contextlib.suppress(Stale):
                self.state.apply(change)
        self.fanout.start()
        log.info(
            "loaded {users} users, {rooms} rooms, last message {last}",
            users=len(self.state.users), rooms=len(self.state.rooms), last=self.state.fanout_upto,
        )  # fmt: skip

    # -- what the other nodes say (IBusListener)

    def _observed(self, change) -> None:
        if self._resyncing is not None:
            self._resyncing.append(change)
        self.bus.share(change)

    def woken(self) -> None:
        self.fanout.woken()

    def changed(self, change) -> None:
        try:
            self.state.apply(change)
        except Stale as e:
            log.warn("a change from another node does not fit ({why}): reading the state again", why=e)
            self.resync()
            return
        if self._resyncing is not None:
            self._resyncing.append(change)

    def resync(self) -> Deferred:
        """Read the live state from the store again (keeping what changes meanwhile), then catch up on messages."""
        if self._resyncing is not None:
            self._resync_again = True
            return succeed(None)
        return Deferred.fromCoroutine(self._resync())

    async def _resync(self) -> None:
        while True:
            self._resyncing, self._resync_again = [], False
            try:
                snapshot = await self.store.load()
            except Exception as e:
                self._resyncing = None
                log.warn("reading the state again failed ({error}); the next resync will", error=e)
                return
            changes, self._resyncing = self._resyncing, None
            self.state.load(snapshot)
            for change in changes:
                with contextlib.suppress(Stale):  # undone by a later change
                    self.state.apply(change)
            if not self._resync_again:
                break
        self.fanout.woken()

    def gone(self, users) -> None:
        for user in users:
            if user in self.state.users and not self.bus.online(user):
                self.presence.announce(user, False, here_only=True)

    def use_limits(self, limits) -> None:
        """New [limits] (a reload), for every handler that reads them."""
        self.limits = limits
        for concern in (self.delivery, self.messages, self.profiles, self.moderation):
            concern.limits = limits

    def use_throttle(self, throttle) -> None:
        """New [throttle] settings (a reload)."""
        self.logins.use(throttle)
        self.registrations.use(throttle)

    def stop(self) -> None:
        """At shutdown: no timer of the core's is left pending."""
        self.typing.stop()
        self.fanout.stop()

    @property
    def fanout_upto(self) -> int:
        """Every message up to this id has been committed and handed to the bus."""
        return self.state.fanout_upto

    def handles(self, kind: type) -> bool:
        return kind in self._handlers

    def execute(self, principal, command: Command) -> Deferred:
        """Run `command` for `principal`; fires with the result or fails with ChatError."""
        if principal.user is None and not command.anonymous:
            return fail(ChatError(errors.NOT_LOGGED_IN))
        return Deferred.fromCoroutine(self._guarded(principal, command))

    async def _guarded(self, principal, command: Command):
        try:
            return await self._handlers[type(command)](principal, command)
        except ChatError:
            raise
        except StorageFault as e:
            raise ChatError(errors.STORAGE_UNWRITABLE, f"storage unavailable ({e}): nothing was stored") from None
        except Unavailable:
            raise ChatError(errors.STORAGE_UNAVAILABLE) from None
        except Exception:
            log.failure("{command} failed", command=command)
            raise ChatError(errors.SERVER_ERROR) from None

    def authenticate(self, token: str, peer: str = "") -> Deferred:
        """Fires with the user a session key belongs to, or None (unknown, revoked, or banned); fails with ChatError
        7030 when `peer`'s address sent too many unknown keys (core/throttle.py)."""
        return Deferred.fromCoroutine(self.accounts.authenticate(token, peer))

    def disconnect(self, client) -> None:
        """The client's connection is gone."""
        if client.user is not None:
            self.delivery.detach(client)
