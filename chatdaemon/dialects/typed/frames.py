"""The typed envelope {"type", "timestamp", "payload"} and payload field readers."""

import time

import orjson

from ... import errors
from ...errors import ChatError


def envelope(kind: str, payload: dict) -> bytes:
    return orjson.dumps({"type": kind, "timestamp": int(time.time()), "payload": payload})


def text(payload: dict, key: str, *alternatives: str) -> str:
    """A required string field (the first of `key`, `alternatives` present)."""
    for name in (key, *alternatives):
        value = payload.get(name)
        if value is not None:
            if not isinstance(value, str):
                raise ChatError(errors.BAD_FIELD, f"payload.{name} must be a string")
            return value
    raise ChatError(errors.BAD_FIELD, f"payload.{key} is required")


def optional_text(payload: dict, key: str, *alternatives: str) -> str:
    present = [name for name in (key, *alternatives) if payload.get(name) is not None]
    return text(payload, present[0]) if present else ""


def integer(payload: dict, key: str, default: int | None = None) -> int:
    value = payload.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ChatError(errors.BAD_FIELD, f"payload.{key} must be an integer")
    return value


def code(payload: dict, allowed: tuple[int, ...]) -> int:
    """An answer's `code`, one of `allowed` (the first is the default)."""
    value = integer(payload, "code", allowed[0])
    if value not in allowed:
        raise ChatError(errors.BAD_FIELD, f"payload.code must be one of {list(allowed)}")
    return value


def text_list(payload: dict, key: str) -> list[str]:
    value = payload.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ChatError(errors.BAD_FIELD, f"payload.{key} must be a list of strings")
    return value


def failure(e: ChatError, **fields) -> dict:
    """A reply payload for a refusal: the given fields, the code and a message (and `retryAfter`, seconds, for a
    throttled login or registration)."""
    out = fields | {"code": e.code, "message": e.message}
    if "retry_after" in e.details:
        out["retryAfter"] = e.details["retry_after"]
    return out
