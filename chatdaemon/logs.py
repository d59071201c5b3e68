"""What chatd logs, and how: the level of `[log]` on every observer, and text or JSON lines.

The level (`[log] level`) holds whatever observer twistd logs to, its default one included:
`apply_level()` puts a level filter in front of each observer of the global log publisher
once twistd has begun logging (tap.py calls it first thing at start). Libraries' chatter is
held to errors unless the level is "debug": Autobahn (through txaio) and twisted.web's
per-request access lines (logged at debug, see transports/http.py) would otherwise outnumber
what an operator reads, which is connections, logins, errors.

`twistd --logger chatdaemon.logs.observer` chooses the format too: twistd calls `observer()`
after it has parsed the chatd options, so the format and level come from the config file
([log]) or --log-format. JSON lines carry every structured field of the event (transport,
dialect, peer, user, code, ...) beside the formatted message, for journald and log shippers.
"""

import sys
from datetime import UTC, datetime
from typing import TypedDict

import orjson
from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    LogPublisher,
    formatEvent,
    globalLogPublisher,
    textFileLogObserver,
)
from txaio import tx as txaio_twisted
from zope.interface import provider

from .config import Log


class _Settings(TypedDict):
    log: Log
    in_use: bool


_settings: _Settings = {"log": Log(), "in_use": False}


def configure(log: Log) -> None:
    """Choose what `observer()` makes (called once the options are parsed)."""
    _settings["log"] = log


def in_use() -> bool:
    """Whether twistd logs through `observer()` (else [log] format has no effect)."""
    return _settings["in_use"]


def observer() -> ILogObserver:
    """The observer factory named by `twistd --logger`."""
    _settings["in_use"] = True
    return make_observer(_settings["log"], sys.stdout)


# Namespaces held to errors unless [log] level is "debug": Autobahn's and txaio's per-frame,
# per-handshake and per-close lines (a client that drops a WebSocket is a warning to Autobahn;
# chatd logs each connection's opening and closing, and each refused handshake, itself).
QUIET = ("autobahn", "txaio")


def predicate(log: Log) -> LogLevelFilterPredicate:
    """Events at `log.level` and above pass; the QUIET namespaces' only from error up (all at debug)."""
    level = LogLevel.levelWithName(log.level)
    chosen = LogLevelFilterPredicate(defaultLogLevel=level)
    if level > LogLevel.debug:
        for namespace in QUIET:
            chosen.setLogLevelForNamespace(namespace, max(level, LogLevel.error))
    return chosen


def make_observer(log: Log, out) -> ILogObserver:
    inner = json_lines(out) if log.format == "json" else textFileLogObserver(out)
    return FilteringLogObserver(inner, [predicate(log)])


def apply_level(log: Log, publisher: LogPublisher = globalLogPublisher) -> None:
    """Filter every observer `publisher` has by `log.level` (call it once logging has begun).

    twistd hands its observer (its default text one, --logfile's, --syslog's or --logger's) to
    the global publisher; each is replaced by the same observer behind a level filter. Autobahn
    is also told the level, so that its debug lines are not even formatted below "debug"."""
    chosen = predicate(log)
    for observer in list(publisher._observers):  # LogPublisher keeps no public list of its observers
        publisher.removeObserver(observer)
        publisher.addObserver(FilteringLogObserver(observer, [chosen]))
    txaio_twisted.set_global_log_level("debug" if log.level == "debug" else "error")


def json_lines(out) -> ILogObserver:
    """One flat JSON object per event: time, level, namespace, message, then the event's own fields."""

    @provider(ILogObserver)
    def write(event: dict) -> None:
        record = {
            "time": datetime.fromtimestamp(event.get("log_time", 0), UTC).isoformat(timespec="milliseconds"),
            "level": event["log_level"].name if "log_level" in event else "info",
            "namespace": event.get("log_namespace", ""),
            "message": formatEvent(event),
        }
        if "log_failure" in event:
            record["traceback"] = event["log_failure"].getTraceback()
        for key, value in event.items():
            if not key.startswith("log_") and key not in record:
                record[key] = value
        out.write(orjson.dumps(record, default=repr, option=orjson.OPT_NON_STR_KEYS).decode("utf-8") + "\n")
        out.flush()

    return write
