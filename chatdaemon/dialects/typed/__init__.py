"""The typed dialect (seeds 000 and 002): {"type": ..., "timestamp": ..., "payload": {...}}.

docs/protocols/typed.md is the reference for every frame and code here. Each
frame type T is handled by a method _on_T of one of the mixins, by concern.
"""

from ... import __version__, errors
from ...errors import ChatError
from .. import Dialect, Request, answering, parse_json
from .accounts import PROTOCOL_VERSION, AccountFrames
from .encode import encode_event
from .frames import envelope, failure
from .media import MediaFrames
from .messages import MessageFrames
from .social import SocialFrames

__all__ = ["TypedDialect", "encode_event", "envelope"]


class TypedDialect(AccountFrames, SocialFrames, MessageFrames, MediaFrames, Dialect):
    name = "typed"
    carries_files = True
    encode_event = staticmethod(encode_event)

    def __init__(self):
        self.user = ""  # who logged in here, as the replies said
        self._sync = None  # a history transfer in progress
        self._downloads: dict[str, tuple[int, str]] = {}  # media id -> (chunks, sender), downloads in progress

    def greeting(self) -> list[bytes]:
        return [
            envelope(
                "CONNECTION_ESTABLISHED",
                {"server": "chatd", "version": __version__, "protocolVersion": PROTOCOL_VERSION, "dialect": self.name},
            )
        ]

    def error(self, error: ChatError) -> bytes:
        payload = failure(error)
        if error.original_type:
            payload["originalType"] = error.original_type
        return envelope("ERROR", payload)

    def farewell(self, error: ChatError) -> bytes:
        """The last frame before the server closes the connection."""
        return envelope("CONNECTION_CLOSED", {"code": error.code, "reason": error.message})

    def token_login(self, key: str) -> Request:
        """A login by the session key given at a WebSocket handshake: answered like LOGIN_REQUEST."""
        return self._on_LOGIN_REQUEST({"sessionKey": key})

    def _errors(self, error: ChatError) -> list[bytes]:
        return [self.error(error)]

    def decode(self, raw: bytes) -> Request:
        frame = parse_json(raw)
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise ChatError(errors.BAD_FRAME, 'a typed frame is {"type": "...", "timestamp": ..., "payload": {...}}')
        kind = frame["type"]

        def build() -> Request:
            payload = frame.get("payload", {})
            if not isinstance(payload, dict):
                raise ChatError(errors.BAD_FIELD, "payload must be an object")
            handler = getattr(self, "_on_" + kind, None) if kind.isupper() and kind.isidentifier() else None
            if handler is None:
                raise ChatError(errors.UNKNOWN_TYPE, f"unknown message type {kind[:64]!r}")
            return handler(payload)

        return answering(kind, build)
