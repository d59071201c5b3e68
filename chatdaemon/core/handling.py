"""What every handler shares: the `@handles` mark, the clock in milliseconds, writes nobody waits for."""

from collections.abc import Callable, Iterator
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

log = Logger(namespace="chatdaemon.core")


def handles(*kinds: type) -> Callable:
    """Mark a handler method as the one that runs these command types."""

    def mark(method: Callable) -> Callable:
        method.handles = kinds  # type: ignore[attr-defined]
        return method

    return mark


def handlers_of(obj: object) -> Iterator[tuple[type, Callable[..., Any]]]:
    """(command type, bound method) for every method of `obj` marked with @handles."""
    for name in dir(type(obj)):
        for kind in getattr(getattr(type(obj), name), "handles", ()):
            yield kind, getattr(obj, name)


def now_ms(clock) -> int:
    return int(clock.seconds() * 1000)


def background(d: Deferred, what: str) -> None:
    """A write nobody waits for: log it if it fails."""
    d.addErrback(lambda f: log.failure("background write failed: {what}", f, what=what))
