"""Log output for `twistd --logger chatdaemon.logs.observer`: text or JSON lines on standard output.

twistd calls `observer()` after it has parsed the chatd options, so the format
and level come from the config file ([log]) or --log-format. JSON lines carry
every structured field of the event (transport, dialect, peer, user, code, ...)
beside the formatted message, for journald and log shippers.
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
    formatEvent,
    textFileLogObserver,
)
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


def make_observer(log: Log, out) -> ILogObserver:
    inner = json_lines(out) if log.format == "json" else textFileLogObserver(out)
    level = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(log.level))
    return FilteringLogObserver(inner, [level])


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
