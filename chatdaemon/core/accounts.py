"""Accounts: registration, login by password or session key, logout, and authenticating a bare key.

Passwords are hashed with argon2id in threads, at most `passwords.max_concurrent` at a time (each
takes memory_cost KiB), handed out in turn to the addresses that wait (core/throttle.py's
FairQueue): a login flood waits behind its own requests instead of exhausting memory or delaying
everyone else. Every way in is throttled here, before a hash is spent (core/throttle.py): failed
logins per account and per address, unknown session keys per address, new accounts per address
and in all. A session key is 32 random bytes; the store keeps only its SHA-256.
"""

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from .. import errors
from ..errors import ChatError
from ..store import Conflict
from . import authz
from .commands import Login, Logout, Register
from .handling import handles, log, now_ms
from .model import USER_NAME
from .results import LoginResult
from .throttle import FairQueue, LoginThrottle, RegistrationThrottle, source_of

MAX_PASSWORD_CHARS = 1024


def new_session_key() -> str:
    return secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """What the store keeps of a session key: its SHA-256, never the key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Passwords:
    """argon2id hashing and checking in threads, in turn per source address (`queue`, a FairQueue: at most its
    `slots` at a time; a source past its share is refused at once with 7030)."""

    def __init__(self, time_cost: int, memory_cost: int, parallelism: int, queue: FairQueue | None = None):
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        self.queue = queue if queue is not None else FairQueue(4, 8, 256)
        self.hashes = 0  # hashes computed (metrics, and the tests of the throttles)

    def hash(self, password: str, source: str = "") -> Deferred:
        return self.queue.run(source, self._in_thread, self._hasher.hash, password)

    def verify(self, hashed: str, password: str, source: str = "") -> Deferred:
        """Fires True if `password` matches `hashed`, False otherwise."""
        return self.queue.run(source, self._in_thread, self._check, hashed, password)

    def _in_thread(self, fn, *args) -> Deferred:
        self.hashes += 1
        return deferToThread(fn, *args)

    def _check(self, hashed: str, password: str) -> bool:
        try:
            return self._hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False


def check_password(password: str) -> None:
    if not 0 < len(password) <= MAX_PASSWORD_CHARS:
        raise ChatError(errors.BAD_NAME, f"passwords are 1-{MAX_PASSWORD_CHARS} characters")


class Accounts:
    def __init__(self, state, store, passwords: Passwords, delivery, clock, logins: LoginThrottle,
                 registrations: RegistrationThrottle):  # fmt: skip
        self.state, self.store, self.passwords, self.delivery, self.clock = state, store, passwords, delivery, clock
        self.logins, self.registrations = logins, registrations

    async def authenticate(self, token: str, peer: str = "") -> str | None:
        """The user a session key belongs to, if the key is known and the account not banned. Unknown keys count
        as failed logins of `peer`'s address; past the limit, raises ChatError 7030 without looking."""
        if not token:
            return None
        with self.logins.attempt(None, source_of(peer), by_key=True) as attempt:
            user = await self.store.user_for_key(key_hash(token))
            if user is None:
                attempt.failed()
                return None
            attempt.succeeded()
        return None if user in self.state.banned else user

    @handles(Register)
    async def register(self, client, cmd: Register) -> str:
        if not USER_NAME.fullmatch(cmd.username):
            raise ChatError(errors.BAD_NAME, "user names are 1-32 of A-Z a-z 0-9 _ . -")
        check_password(cmd.password)
        if cmd.username in self.state.users or cmd.username in self.state.rooms:
            raise ChatError(errors.USER_EXISTS)
        source = source_of(client.peer)
        self.registrations.check(source)
        hashed = await self.passwords.hash(cmd.password, source)
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
        source = source_of(client.peer)
        if cmd.session_key:
            key = cmd.session_key
            with self.logins.attempt(None, source, by_key=True) as attempt:
                user = await self.store.user_for_key(key_hash(key))
                if user is None:
                    attempt.failed()
                    raise ChatError(errors.INVALID_CREDENTIALS, "unknown or revoked session key")
                attempt.succeeded()
            authz.may_log_in(user, self.state.banned)
        else:
            user = cmd.username
            account = user if user in self.state.users else None
            with self.logins.attempt(account, source) as attempt:
                if account is None:
                    attempt.failed()
                    raise ChatError(errors.USER_NOT_FOUND)
                hashed = await self.store.password_hash(user)
                if not await self.passwords.verify(hashed, cmd.password, source):
                    attempt.failed()
                    log.info("login failed for {user} from {source}", user=user, source=source)
                    raise ChatError(errors.INVALID_CREDENTIALS)
                attempt.succeeded()
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
