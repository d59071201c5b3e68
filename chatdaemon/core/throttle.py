"""Throttles on the ways in: failed logins, new accounts, and fair turns at the password hasher.

Every way in runs through `Accounts` (each dialect's login and register frames, REST `/login` and
`/register`, a session key at a WebSocket handshake or as a REST bearer, Socket.IO's auth), which
asks these BEFORE it spends an argon2 hash; a refusal is a ChatError with `retry_after` (seconds):

    LoginThrottle          failed logins per account (password logins of an existing account) and per
                           source address (every login, and every unknown session key). Past `free`
                           failures an attempt must wait `delay` seconds after the last failure, doubling
                           with each further failure up to a cap, and only one attempt at a time is let
                           through; earlier ones are refused with 7030. A success clears the account's
                           failures (never the address's: one good account must not launder an address).
                           Failures are forgotten `window` seconds after the last one.
    RegistrationThrottle   new accounts per source address (a token bucket: `per_address` per `window`)
                           and in all (`per_second`, `burst`); past them, 7031.
    FairQueue              at most `slots` hashes at once (each takes passwords.memory_cost KiB), handed out
                           in turn to the source addresses that wait (round robin), so a flood from one
                           address waits behind its own requests, not in front of everyone else's; one
                           address runs at most half the slots at once, so the others find one free. One
                           address may have at most `per_source` hashes waiting or running, all together
                           at most `queue`; past them the attempt is refused at once (7030).

A source is the host part of a principal's `peer` (IPv6 addresses by their /64: one host owns a whole
/64; "v6:port", as chatd writes IPv6 peers, masks the same). Memory is bounded: each table keeps at
most `max_tracked` entries (the least recently used go first), and the hash queue at most `queue`
waiting jobs. A principal with no peer (the operators' own password changes) is throttled by account
and in all only.
"""

import ipaddress
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred

from .. import errors
from ..errors import ChatError

V = TypeVar("V")


def source_of(peer: str) -> str:
    """The address a principal comes from: the host of "host:port", "[v6]:port" or a bare host; an IPv6
    address stands for its /64."""
    if not peer:
        return ""
    host = peer
    if peer.startswith("["):
        host = peer[1 : peer.find("]")] if "]" in peer else peer[1:]
    elif peer.count(":") == 1:
        host = peer.split(":", 1)[0]
    elif peer.count(":") > 1:
        try:
            ipaddress.IPv6Address(peer)
        except ValueError:
            host = peer.rsplit(":", 1)[0]  # "v6:port", as Twisted's IPv6Address peers are written here
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a UNIX socket path, or a name: itself
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


class Table(Generic[V]):
    """A dict of at most `size` entries that forgets the least recently used first."""

    def __init__(self, size: int, make: Callable[[], V]):
        self.size, self._make = size, make
        self._entries: OrderedDict[str, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> V:
        """The entry of `key`, made if new; now the most recently used."""
        entries = self._entries
        entry = entries.get(key)
        if entry is None:
            entry = entries[key] = self._make()
            if len(entries) > self.size:
                entries.popitem(last=False)
        else:
            entries.move_to_end(key)
        return entry

    def peek(self, key: str) -> V | None:
        return self._entries.get(key)


@dataclass(slots=True)
class Failures:
    count: int = 0  # failures since the record was last cleared
    last: float = 0.0  # when the last one was recorded
    pending: int = 0  # attempts let through and not yet decided


def _wait(record: Failures | None, free: int, delay: float, cap: float, window: float, now: float) -> float:
    """Seconds an attempt must wait, given a record's failures (0: go ahead)."""
    if record is None:
        return 0.0
    if record.count and now - record.last >= window:
        record.count = 0
    if record.count + record.pending < free:
        return 0.0
    step = min(cap, delay * 2 ** max(0, record.count - free))
    if record.pending:
        return step  # past the free attempts: one at a time
    return max(0.0, record.last + step - now)


class Attempt:
    """One login let through the throttle; say how it ended (`failed`, `succeeded`), else it counts as neither."""

    def __init__(self, throttle: "LoginThrottle", account: Failures | None, source: Failures | None):
        self._throttle, self._account, self._source = throttle, account, source
        self._done = False

    def failed(self) -> None:
        if not self._done:
            now = self._throttle.clock.seconds()
            for record in (self._account, self._source):
                if record is not None:
                    record.count += 1
                    record.last = now
        self._finish()

    def succeeded(self) -> None:
        if not self._done and self._account is not None:
            self._account.count = 0
        self._finish()

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        for record in (self._account, self._source):
            if record is not None and record.pending:
                record.pending -= 1


class LoginThrottle:
    """Failed logins: per account, per address (password logins), and per address (session keys) apart, so a
    password flood from an address does not shut out a user who holds a key, nor the reverse."""

    def __init__(self, clock, settings):
        self.clock = clock
        self.accounts: Table[Failures] = Table(settings.max_tracked, Failures)
        self.sources: Table[Failures] = Table(settings.max_tracked, Failures)
        self.key_sources: Table[Failures] = Table(settings.max_tracked, Failures)
        self.use(settings)

    def use(self, settings) -> None:
        """New [throttle] settings (a reload)."""
        self.settings = settings
        for table in (self.accounts, self.sources, self.key_sources):
            table.size = settings.max_tracked

    @contextmanager
    def attempt(self, account: str | None, source: str, by_key: bool = False) -> Iterator[Attempt]:
        """Let one login through (or raise 7030 with `retry_after`). `account`: the existing account a password
        login names (None for a session key, or a name that is no account); `source`: from source_of();
        `by_key`: a login (or a check) by session key."""
        s, now = self.settings, self.clock.seconds()
        sources = self.key_sources if by_key else self.sources
        wait = 0.0
        if account is not None:
            wait = _wait(self.accounts.peek(account), s.login_failures_per_account, s.login_delay,
                         s.login_account_max_delay, s.login_window, now)  # fmt: skip
        if source:
            wait = max(wait, _wait(sources.peek(source), s.login_failures_per_address, s.login_delay,
                                   s.login_address_max_delay, s.login_window, now))  # fmt: skip
        if wait > 0:
            seconds = max(1, round(wait + 0.499))
            raise ChatError(
                errors.TOO_MANY_ATTEMPTS, f"too many failed logins: try again in {seconds} s", retry_after=seconds
            )
        records = (self.accounts.get(account) if account is not None else None,
                   sources.get(source) if source else None)  # fmt: skip
        for record in records:
            if record is not None:
                record.pending += 1
        attempt = Attempt(self, *records)
        try:
            yield attempt
        finally:
            attempt._finish()


@dataclass(slots=True)
class Bucket:
    tokens: float
    stamp: float


class RegistrationThrottle:
    def __init__(self, clock, settings):
        self.clock = clock
        self.sources: Table[Bucket] = Table(settings.max_tracked, self._new_bucket)
        self._all = Bucket(float(settings.registration_burst), clock.seconds())
        self.use(settings)

    def use(self, settings) -> None:
        """New [throttle] settings (a reload)."""
        self.settings = settings
        self.sources.size = settings.max_tracked

    def _new_bucket(self) -> Bucket:
        return Bucket(float(self.settings.registrations_per_address), self.clock.seconds())

    @staticmethod
    def _take(bucket: Bucket, rate: float, burst: float, now: float) -> float:
        """Take one token: 0 if there was one, else the seconds until there will be (nothing taken)."""
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * rate)
        bucket.stamp = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / rate

    def check(self, source: str) -> None:
        """Count one new account from `source`, or raise 7031 with `retry_after`."""
        s, now = self.settings, self.clock.seconds()
        wait = self._take(self._all, s.registrations_per_second, s.registration_burst, now)
        if wait:
            seconds = max(1, round(wait + 0.499))
            raise ChatError(errors.TOO_MANY_REGISTRATIONS, f"too many new accounts: try again in {seconds} s",
                            retry_after=seconds)  # fmt: skip
        if source:
            per_address = s.registrations_per_address
            wait = self._take(self.sources.get(source), per_address / s.registration_window, per_address, now)
            if wait:
                self._all.tokens += 1  # not spent after all
                seconds = max(1, round(wait + 0.499))
                raise ChatError(
                    errors.TOO_MANY_REGISTRATIONS,
                    f"too many new accounts from your address: try again in {seconds} s",
                    retry_after=seconds,
                )


@dataclass(slots=True)
class _Waiting:
    jobs: deque = field(default_factory=deque)  # (Deferred, fn, args)
    held: int = 0  # jobs of this source waiting or running
    running: int = 0


class FairQueue:
    """At most `slots` jobs at once, taken in turn from each source's queue; one source runs at most `share` of the
    slots at once (half of them by default: the rest stay free for everyone else); bounded per source and in all."""

    def __init__(self, slots: int, per_source: int, queue: int, share: int | None = None):
        self.slots, self.per_source, self.queue = slots, per_source, queue
        self.share = share if share is not None else max(1, slots // 2)
        self._sources: OrderedDict[str, _Waiting] = OrderedDict()  # sources with jobs waiting or running
        self._turns: OrderedDict[str, None] = OrderedDict()  # sources with jobs waiting, next turn first
        self.running = 0
        self.waiting = 0

    def run(self, source: str, fn: Callable[..., Any], *args) -> Deferred:
        """`fn(*args)` (a Deferred or a value) in its turn; refused at once (7030) if the queue is full."""
        waiting = self._sources.get(source)
        held = waiting.held if waiting is not None else 0
        if held >= self.per_source or self.waiting >= self.queue:
            raise ChatError(errors.TOO_MANY_ATTEMPTS, "too many logins waiting: try again in 1 s", retry_after=1)
        if waiting is None:
            waiting = self._sources[source] = _Waiting()
        d: Deferred = Deferred()
        waiting.jobs.append((d, fn, args))
        waiting.held += 1
        self.waiting += 1
        self._turns[source] = None
        self._pump()
        return d

    def _next(self) -> str | None:
        """The first source in line that may run one more job now (under its share), or None."""
        for source in self._turns:
            if self._sources[source].running < self.share:
                return source
        return None

    def _pump(self) -> None:
        while self.running < self.slots and (source := self._next()) is not None:
            del self._turns[source]
            waiting = self._sources[source]
            d, fn, args = waiting.jobs.popleft()
            if waiting.jobs:
                self._turns[source] = None  # back of the line
            self.waiting -= 1
            self.running += 1
            waiting.running += 1
            maybeDeferred(fn, *args).addBoth(self._done, source).chainDeferred(d)

    def _done(self, result, source: str):
        self.running -= 1
        waiting = self._sources[source]
        waiting.held -= 1
        waiting.running -= 1
        if not waiting.held:
            del self._sources[source]
        self._pump()
        return result
