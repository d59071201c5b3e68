"""Passwords (argon2id, hashed off the reactor thread) and session keys."""

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet.defer import DeferredSemaphore
from twisted.internet.threads import deferToThread

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
