"""Accounts: passwords (argon2id, hashed off the reactor thread), session keys, login, presence."""

import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet.defer import DeferredSemaphore
from twisted.internet.threads import deferToThread

from .. import errors
from ..errors import ChatError
from ..store import Conflict
from . import commands as c
from .commands import handles
from .events import PresenceChanged
from .model import USER_NAME

# Each hash takes memory_cost KiB (64 MiB by default): a login flood waits in line instead of exhausting memory.
MAX_CONCURRENT_HASHES = 4


def new_session_key() -> str:
    return secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """What the store keeps of a session key: its SHA-256, never the key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Passwords:
    """argon2id hashing and checking in threads, at most MAX_CONCURRENT_HASHES at a time."""

    def __init__(self, time_cost: int, memory_cost: int, parallelism: int):
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        self._slots = DeferredSemaphore(MAX_CONCURRENT_HASHES)

    def hash(self, password: str):
        return self._slots.run(deferToThread, self._hasher.hash, password)

    def verify(self, hashed: str, password: str):
        """Fires True if `password` matches `hashed`, False otherwise."""
        return self._slots.run(deferToThread, self._check, hashed, password)

    def _check(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False


@dataclass(frozen=True)
class LoginResult:
    user: str
    session_key: str


class Accounts:
    """Registration, login and logout, and presence (a Core mixin)."""

    @handles(c.Register, anonymous=True)
    async def _register(self, client, cmd: c.Register) -> str:
        if not USER_NAME.fullmatch(cmd.username) or not 0 < len(cmd.password) <= 1024:
            raise ChatError(errors.BAD_NAME, "user names are 1-32 of A-Z a-z 0-9 _ . -; passwords 1-1024 characters")
        if cmd.username in self.users or cmd.username in self.rooms:
            raise ChatError(errors.USER_EXISTS)
        hashed = await self.passwords.hash(cmd.password)
        try:
            await self.store.create_user(cmd.username, hashed, self._now())
        except Conflict:
            raise ChatError(errors.USER_EXISTS) from None
        self.users[cmd.username] = "online"
        self.log.info("registered {user}", user=cmd.username)
        return cmd.username

    @handles(c.Login, anonymous=True)
    async def _login(self, client, cmd: c.Login) -> LoginResult:
        if client.user is not None:
            raise ChatError(errors.ALREADY_LOGGED_IN)
        if cmd.session_key:
            key = cmd.session_key
            user = await self.store.user_for_key(key_hash(key))
            if user is None:
                raise ChatError(errors.INVALID_CREDENTIALS, "unknown or revoked session key")
            await self._refuse_banned(user)
        else:
            user = cmd.username
            if user not in self.users:
                raise ChatError(errors.USER_NOT_FOUND)
            hashed = await self.store.password_hash(user)
            if not await self.passwords.verify(hashed, cmd.password):
                self.log.info("login failed for {user}", user=user)
                raise ChatError(errors.INVALID_CREDENTIALS)
            await self._refuse_banned(user)  # before a key is made: a banned account gets none
            key = new_session_key()
            await self.store.add_session_key(key_hash(key), user, self._now())
        if client.user is not None:
            raise ChatError(errors.ALREADY_LOGGED_IN)
        if client.open:
            await self._attach(client, user, key_hash(key))
        self.log.info("login ok for {user}", user=user)
        return LoginResult(user, key)

    @handles(c.Logout)
    async def _logout(self, client, cmd: c.Logout) -> str:
        user, hashed = client.user, client.key_hash
        self._detach(client)
        await self.store.delete_session_key(hashed)
        return user

    @handles(c.SetStatus)
    async def _set_status(self, client, cmd: c.SetStatus) -> tuple[str, str]:
        status = cmd.status.strip()
        if not 0 < len(status) <= 64:
            raise ChatError(errors.BAD_FIELD, "a status is 1-64 characters")
        self.users[client.user] = status
        await self.store.set_status(client.user, status)
        self.bus.publish(
            PresenceChanged(user=client.user, online=True, status=status), self._audience(client.user), client
        )
        return client.user, status
