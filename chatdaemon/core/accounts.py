"""Accounts: registration, login by password or session key, logout, and authenticating a bare key.

Passwords are hashed with argon2id in threads, at most MAX_CONCURRENT_HASHES at a time (each
takes memory_cost KiB: a login flood waits in line instead of exhausting memory). A session key
is 32 random bytes; the store keeps only its SHA-256.
"""

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet.defer import Deferred, DeferredSemaphore
from twisted.internet.threads import deferToThread

from .. import errors
from ..errors import ChatError
from ..store import Conflict
from . import authz
from .commands import Login, Logout, Register
from .handling import handles, log, now_ms
from .model import USER_NAME
from .results import LoginResult

MAX_CONCURRENT_HASHES = 4
MAX_PASSWORD_CHARS = 1024


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

    def hash(self, password: str) -> Deferred:
        return self._slots.run(deferToThread, self._hasher.hash, password)

    def verify(self, hashed: str, password: str) -> Deferred:
        """Fires True if `password` matches `hashed`, False otherwise."""
        return self._slots.run(deferToThread, self._check, hashed, password)

    def _check(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False


def check_password(password: str) -> None:
    if not 0 < len(password) <= MAX_PASSWORD_CHARS:
        raise ChatError(errors.BAD_NAME, f"passwords are 1-{MAX_PASSWORD_CHARS} characters")


class Accounts:
    def __init__(self, state, store, passwords: Passwords, delivery, clock):
        self.state, self.store, self.passwords, self.delivery, self.clock = state, store, passwords, delivery, clock

    async def authenticate(self, token: str) -> str | None:
        """The user a session key belongs to, if the key is known and the account not banned."""
        user = await self.store.user_for_key(key_hash(token)) if token else None
        return None if user is None or user in self.state.banned else user

    @handles(Register)
    async def register(self, client, cmd: Register) -> str:
        if not USER_NAME.fullmatch(cmd.username):
            raise ChatError(errors.BAD_NAME, "user names are 1-32 of A-Z a-z 0-9 _ . -")
        check_password(cmd.password)
        if cmd.username in self.state.users or cmd.username in self.state.rooms:
            raise ChatError(errors.USER_EXISTS)
        hashed = await self.passwords.hash(cmd.password)
        try:
            await self.store.create_user(cmd.username, hashed, now_ms(self.clock))
        except Conflict:
            raise ChatError(errors.USER_EXISTS) from None
        self.state.add_user(cmd.username)
        log.info("registered {user}", user=cmd.username)
        return cmd.username

    @handles(Login)
    async def login(self, client, cmd: Login) -> LoginResult:
        if client.user is not None:
            raise ChatError(errors.ALREADY_LOGGED_IN)
        if cmd.session_key:
            key = cmd.session_key
            user = await self.store.user_for_key(key_hash(key))
            if user is None:
                raise ChatError(errors.INVALID_CREDENTIALS, "unknown or revoked session key")
            authz.may_log_in(user, self.state.banned)
        else:
            user = cmd.username
            if user not in self.state.users:
                raise ChatError(errors.USER_NOT_FOUND)
            hashed = await self.store.password_hash(user)
            if not await self.passwords.verify(hashed, cmd.password):
                log.info("login failed for {user}", user=user)
                raise ChatError(errors.INVALID_CREDENTIALS)
            authz.may_log_in(user, self.state.banned)  # before a key is made: a banned account gets none
            key = new_session_key()
            await self.store.add_session_key(key_hash(key), user, now_ms(self.clock))
        if client.user is not None:
            raise ChatError(errors.ALREADY_LOGGED_IN)
        if client.open:
            await self.delivery.attach(client, user, key_hash(key))
        return LoginResult(user, key)

    @handles(Logout)
    async def logout(self, client, cmd: Logout) -> str:
        user, hashed = client.user, client.key_hash
        self.delivery.detach(client)
        if hashed is not None:
            await self.store.delete_session_key(hashed)
        return user
