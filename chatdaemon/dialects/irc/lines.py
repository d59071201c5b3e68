"""IRC lines: reading one (IRCv3 message tags, then RFC 1459's prefix, command and parameters) and
writing them (tags, a source, parameters, and texts split to fit the 512-byte line).

Parsing of the RFC 1459 part is twisted.words' `parsemsg`; tags (ircv3.net/specs/extensions/message-tags)
are read and escaped here. Limits: a line is at most 512 bytes with its CRLF, tags not counted
(MAX_BODY_BYTES without the CRLF); the tags of a client's line at most MAX_TAG_BYTES.
"""

import time
from dataclasses import dataclass, field

from twisted.words.protocols.irc import IRCBadMessage, parsemsg

MAX_BODY_BYTES = 510  # 512 with the CRLF
MAX_TAG_BYTES = 4096  # a client's tags, with the "@" and the space after them
MAX_LINE_BYTES = MAX_TAG_BYTES + MAX_BODY_BYTES  # what the transport lets through to the dialect

# numerics twisted.words.protocols.irc does not name (IRCv3 and later RFC drafts)
RPL_TOPICWHOTIME = "333"
RPL_WHOISACCOUNT = "330"
ERR_INPUTTOOLONG = "417"
ERR_INVALIDCAPCMD = "410"
RPL_LOGGEDIN = "900"
RPL_SASLSUCCESS = "903"
ERR_SASLFAIL = "904"
ERR_SASLTOOLONG = "905"
ERR_SASLABORTED = "906"
ERR_SASLALREADY = "907"
RPL_SASLMECHS = "908"


class BadLine(ValueError):
    """A line that is not an IRC message at all."""


@dataclass(frozen=True, slots=True)
class Message:
    command: str  # upper case
    params: list[str]
    tags: dict[str, str] = field(default_factory=dict)


def _unescape(value: str) -> str:
    out, chars = [], iter(value)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, "")
        out.append({":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}.get(nxt, nxt))
    return "".join(out)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\:").replace(" ", "\\s").replace("\r", "\\r").replace("\n", "\\n")


def parse_tags(text: str) -> dict[str, str]:
    tags = {}
    for item in text.split(";"):
        if item:
            key, _, value = item.partition("=")
            tags[key] = _unescape(value)
    return tags


def text_of(raw: bytes) -> str:
    """A client's line as text: UTF-8, or else Latin-1 (older clients), so that no byte is refused."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse(raw: bytes) -> Message | None:
    """One line from a client (without its line end); None for an empty line (ignored, as RFC 1459 says).
    Raises BadLine with the reason, or LineTooLong."""
    tags: dict[str, str] = {}
    if raw.startswith(b"@"):
        head, _, raw = raw.partition(b" ")
        if len(head) + 1 > MAX_TAG_BYTES:
            raise LineTooLong()
        tags = parse_tags(text_of(head[1:]))
    raw = raw.lstrip(b" ")
    if len(raw) > MAX_BODY_BYTES:
        raise LineTooLong()
    if not raw:
        return None
    line = text_of(raw)
    if "\0" in line:
        raise BadLine("a line may not hold NUL")
    try:
        _, command, params = parsemsg(line)
    except (IRCBadMessage, ValueError, IndexError):
        raise BadLine("not an IRC message") from None
    if not command.isalnum() or not command.isascii():
        raise BadLine(f"not an IRC command: {command[:32]!r}")
    return Message(command.upper(), params, tags)


class LineTooLong(ValueError):
    """Over MAX_BODY_BYTES (or the tags over MAX_TAG_BYTES)."""


def _clean(param: str) -> str:
    """No line ends or NULs inside a line (text from other dialects may hold them)."""
    if "\r" in param or "\n" in param or "\0" in param:
        return param.replace("\r\n", " ").replace("\r", " ").replace("\n", " ").replace("\0", "")
    return param


# commands whose last parameter is a text: written after ":" always, as servers do (PART: its reason)
_TEXT_LAST = {"PRIVMSG", "NOTICE", "TOPIC", "KICK", "CAP", "QUIT", "ERROR", "AWAY"}


def line(source: str, command: str, *params: str, tags: dict[str, str] | None = None) -> bytes:
    """One line; the last parameter may hold spaces. It is written after ":" when it must be, and always
    when it is a text (a numeric's, or a message's)."""
    words = [_clean(p) for p in params]
    if words and (
        not words[-1]
        or " " in words[-1]
        or words[-1].startswith(":")
        or command.isdigit()
        or command in _TEXT_LAST
        or (command == "PART" and len(words) > 1)
    ):
        words[-1] = ":" + words[-1]
    text = " ".join([f":{source}" if source else "", command, *words]).lstrip(" ")
    if tags:
        text = "@" + ";".join(f"{k}={escape(v)}" if v else k for k, v in tags.items()) + " " + text
    return text.encode("utf-8")


def split_text(text: str, budget: int) -> list[str]:
    """`text`'s lines cut into pieces of at most `budget` bytes in UTF-8, at a space near the end when
    there is one, never inside a character; empty lines are left out (IRC cannot send them)."""
    pieces = []
    budget = max(budget, 16)
    for part in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        data = part.encode("utf-8")
        while len(data) > budget:
            cut = budget
            while cut > 0 and (data[cut] & 0xC0) == 0x80:  # not inside a character
                cut -= 1
            space = data.rfind(b" ", budget // 2, cut + 1)
            if space > 0:
                cut = space
            pieces.append(data[:cut].decode("utf-8"))
            data = data[cut:].lstrip(b" ") if space > 0 else data[cut:]
        if data.strip():
            pieces.append(data.decode("utf-8"))
    return pieces


def server_time(ms: int) -> str:
    """The IRCv3 server-time tag's form: 2026-11-29T12:00:00.000Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def stamp(ms: int) -> str:
    """A time for a line of history, for clients without server-time."""
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))
