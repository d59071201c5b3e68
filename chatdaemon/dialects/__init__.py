"""Dialects translate between wire frames and the core; they do no I/O.

A dialect instance belongs to one connection (it may keep that connection's small state, e.g.
the current room of a text user). `decode` turns one frame into a Request: core commands plus how
to render their outcome. `encode_event` must depend on the event alone (and on `encoding`, below):
its bytes are shared by every connection of that dialect that receives the same publish.

Three things let a dialect whose connections differ (IRC: capabilities chosen by each client, a
registration to finish, lines that name their recipient) keep that sharing:
- `encoding`: the key under which an encoding is shared; connections whose options change the
  bytes (IRC's server-time tags) name each combination. Empty: the dialect's name.
- `encode_event` may answer PERSONAL for a rare event that names its recipient (IRC's KICK of a
  removed room); the session then asks this connection's `encode_personal(event)`.
- `ready`: False while the client is still in a handshake and must get no events yet (IRC
  registration); the session keeps events, and the user's offline replay, until a reply has
  made it True.
"""

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import orjson

from ..core.commands import Command
from ..errors import BAD_FRAME, BAD_JSON, ChatError


@dataclass
class Request:
    """One decoded frame: the command for the core (a tuple: several, run in turn, answered with a tuple
    of results; None if the dialect answers alone), the frames to send back on success or on ChatError,
    and whether to close after.

    Two optional hooks let a pure dialect run exchanges that outlive one frame, with the session
    owning the clock and the pacing:
    `expires`: the request opens an exchange the client must finish within
    `limits.handshake_timeout` seconds; the session calls `expires(seconds)` then
    and sends the frames it returns (none if the exchange was finished meanwhile).
    `follow`: after this request is answered and the connection's output has
    room, the session handles `follow()`, the next Request of a stream (None ends it).

    `transfer`: the frame moves file data (an upload chunk, or a request for a download chunk). The
    inbox charges it its size in bytes against the connection's byte allowance instead of one frame
    against the frame rate, and it may be larger than an ordinary frame (limits.max_transfer_frame_bytes).
    `each`: with a tuple of commands, a refusal of one does not stop the others: the reply gets a
    tuple holding each command's result or its ChatError (IRC's `JOIN #a,#b`). `close` is read
    when the answer is sent, so `reply` or `fail` may set it.
    """

    command: Command | tuple[Command, ...] | None
    reply: Callable[[Any], list[bytes]]
    fail: Callable[[ChatError], list[bytes]]
    close: bool = False
    expires: Callable[[float], list[bytes]] | None = None
    follow: Callable[[], "Request | None"] | None = None
    transfer: bool = False  # the frame moves file data: paid in bytes (session/inbox.py)
    each: bool = False
    answer: Callable[[list[bytes]], None] | None = None  # set by the session: where the reply goes instead

    @property
    def barrier(self) -> bool:
        """Whether the session must finish everything before this request first (see core.commands)."""
        command = self.command
        if command is None:
            return False
        if isinstance(command, tuple):
            return not all(c.pipelined for c in command)
        return not command.pipelined


class Rendering(enum.Enum):
    PERSONAL = "personal"


PERSONAL = Rendering.PERSONAL
"""What `encode_event` answers for an event each connection renders for itself (see above)."""

Encoded = bytes | None | Literal[Rendering.PERSONAL]


class Dialect:
    """What every dialect offers a session (a dialect subclasses this and fills it in)."""

    name: ClassVar[str] = ""
    carries_files: ClassVar[bool] = False  # has frames that move file data (Request.transfer)
    wants: Callable[[Any], bool] | None = None  # a per-connection filter of events, if the dialect has one
    encoding: str = ""  # the key its encodings are shared under; "" is `name`
    ready: bool = True  # False: keep events back (a handshake is not finished)

    encode_event: Callable[[Any], Encoded]

    def encode_personal(self, event: Any) -> bytes | None:
        """This connection's own rendering of an event `encode_event` answered PERSONAL for."""
        return None

    def greeting(self) -> list[bytes]:
        """Frames sent when the dialect is known (first frame, or a WebSocket's ?dialect=)."""
        return []

    def decode(self, raw: bytes) -> Request:
        raise NotImplementedError

    def error(self, error: ChatError) -> bytes:
        """The frame answering a refused or bad request."""
        raise NotImplementedError

    def farewell(self, error: ChatError) -> bytes:
        """The last frame before the server closes the connection."""
        return self.error(error)

    def token_login(self, key: str) -> Request:
        """A login by the session key given at a WebSocket handshake, answered like the dialect's login."""
        raise NotImplementedError


def answering(kind: str, build: Callable[[], Request]) -> Request:
    """The Request `build` makes for a frame of type `kind`; every ChatError answering that frame,
    raised while reading it or sent back later as a refusal, names it (`original_type`)."""
    try:
        request = build()
    except ChatError as e:
        e.original_type = e.original_type or kind[:64]
        raise
    fail = request.fail

    def refused(e: ChatError) -> list[bytes]:
        e.original_type = e.original_type or kind[:64]
        return fail(e)

    request.fail = refused
    return request


def parse_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ChatError(BAD_JSON, f"not valid JSON: {e}") from None


def dialect_name(raw: bytes) -> str | None:
    """The dialect a first frame speaks, per the contract; None for a blank line."""
    stripped = raw.lstrip()
    if not stripped:
        return None
    if not stripped.startswith(b"{"):
        return "text"
    frame = parse_json(raw)
    if not isinstance(frame, dict):
        raise ChatError(BAD_FRAME, "a frame is a JSON object")
    if "action" in frame:
        return "action"
    if "type" in frame and "payload" in frame:
        return "typed"
    if isinstance(frame.get("type"), str) and ":" in frame["type"]:
        return "colon"
    if "event" in frame:
        return "events"
    raise ChatError(BAD_FRAME, 'cannot tell the dialect: expected a key "type", "action" or "event"')


def dialect_for(raw: bytes):
    """A new dialect instance for a connection whose first frame is `raw`, or None if undecided."""
    name = dialect_name(raw)
    if name is None:
        return None
    return DIALECTS[name]()


def fallback_error(error: ChatError) -> bytes:
    """The error frame for a connection whose dialect is not known yet (typed's ERROR shape)."""
    return envelope("ERROR", {"code": error.code, "message": error.message})


# The dialects import Request and parse_json from here, so they come last.
from .action import ActionDialect  # noqa: E402
from .colon import ColonDialect  # noqa: E402
from .events import EventsDialect  # noqa: E402
from .text import TextDialect  # noqa: E402
from .typed import TypedDialect, envelope  # noqa: E402

DIALECTS = {d.name: d for d in (TypedDialect, TextDialect, ActionDialect, EventsDialect, ColonDialect)}
