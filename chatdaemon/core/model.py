"""Value types of the chat core: rooms, addresses, messages with typed bodies, files; the rules for names.

A message body is one of four types, decided once where the message is made or
read from storage (the store's row decoder); readers match on the type and
never parse a body again:

    Text(text)                       what a person typed
    Encrypted(fields)                opaque to the server: the client's own fields, ciphertext among them
    Media(file, name, mime, size)    a stored file (`file` is its server id); `media` says image/audio/gif
    Deleted()                        what is left of a deleted message (its id stays in history)
"""

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

USER_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
ROOM_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

# Display text (file names, group names, statuses, metadata keys) keeps no character that controls how
# text is shown rather than being shown: C0 and C1 controls, lone surrogates, and format characters
# (category Cf: the bidirectional controls U+061C, U+200E, U+200F, U+202A-U+202E and U+2066-U+2069, which
# make "\u202etxt.exe" read "exe.txt"; zero-width spaces; soft hyphens; byte order marks), except the
# zero-width joiners that emoji and some scripts need (U+200C, U+200D) and the emoji tag characters
# (U+E0020-U+E007F). Line breaks and tabs become spaces.
_KEPT_FORMAT = {"\u200c", "\u200d"}
_SPACES = {"\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u2028", "\u2029"}


def display_text(text: str) -> str:
    """`text` as it may be stored and shown to others: without the characters above, and stripped."""
    if text.isprintable():
        return text.strip()
    kept = []
    for ch in text:
        if ch in _SPACES:
            kept.append(" ")
        elif (
            unicodedata.category(ch) not in ("Cc", "Cs", "Cf", "Zl", "Zp")
            or ch in _KEPT_FORMAT
            or "\U000e0020" <= ch <= "\U000e007f"
        ):
            kept.append(ch)
    return "".join(kept).strip()


PUBLIC, GROUP, DIRECT = "public", "group", "direct"


def direct_room_id(a: str, b: str) -> str:
    """The id of the direct conversation between two users (':' never occurs in names)."""
    first, second = sorted((a, b))
    return f"dm:{first}:{second}"


@dataclass(slots=True)
class Room:
    """A conversation: a public room, a private group (with a leader and invitations) or a direct one."""

    id: str
    kind: str
    name: str
    leader: str | None
    members: set[str] = field(default_factory=set)
    invited: dict[str, str] = field(default_factory=dict)  # invitee -> who invited them
    topic: str = ""  # what the room is about, set by a member (by its leader, if it has one)
    topic_by: str = ""
    topic_at: int = 0  # ms since the epoch

    def peer_of(self, user: str) -> str | None:
        """For a direct conversation, the other participant."""
        if self.kind != DIRECT:
            return None
        others = self.members - {user}
        return next(iter(others), user)


@dataclass(frozen=True, slots=True)
class Address:
    """Where a request points: `name` is a user (their direct conversation with the caller), a room id, or the
    name of one of the caller's groups. `only` narrows it to "user" or "room" when a frame says which.
    Seed 001 has no join: naming a public room enters it (`enter`), and a message or a file to a new room
    name makes the room (`create`)."""

    name: str
    only: str = ""  # "", "user" or "room"
    enter: bool = False
    create: bool = False

    @classmethod
    def user(cls, name: str) -> "Address":
        return cls(name, "user")

    @classmethod
    def room(cls, name: str) -> "Address":
        return cls(name, "room")


# -- message bodies


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    kind = "text"


@dataclass(frozen=True, slots=True)
class Encrypted:
    """The client's fields, kept and forwarded as they came; the server never reads them."""

    fields: dict[str, Any]
    kind = "encrypted"


@dataclass(frozen=True, slots=True)
class Media:
    """A stored file posted as a message. In a Send, only `file` (and `media`) count: the rest is the file's own."""

    file: str
    name: str = ""
    mime: str = ""
    size: int = 0
    media: str = ""  # "image", "audio", "gif", or "" for a plain file
    kind = "media"


@dataclass(frozen=True, slots=True)
class Deleted:
    kind = "deleted"


Body = Text | Encrypted | Media | Deleted


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    room_id: str
    sender: str
    body: Body
    ts: int  # milliseconds since the epoch

    @property
    def kind(self) -> str:
        return self.body.kind


@dataclass(frozen=True, slots=True)
class FileRef:
    """A stored file: kept by `id`; `name` is what the uploader called it, for display only."""

    id: str
    owner: str
    room_id: str
    name: str
    mime: str
    size: int
    sha256: str
    created: int
