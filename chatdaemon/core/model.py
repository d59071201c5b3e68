"""Value types of the chat core and the rules for names."""

import re
from dataclasses import dataclass, field

USER_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
ROOM_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

PUBLIC, GROUP, DIRECT = "public", "group", "direct"


def direct_room_id(a: str, b: str) -> str:
    """The id of the direct conversation between two users (':' never occurs in names)."""
    first, second = sorted((a, b))
    return f"dm:{first}:{second}"


@dataclass
class Room:
    id: str
    kind: str
    name: str
    leader: str | None
    members: set[str] = field(default_factory=set)
    invited: dict[str, str] = field(default_factory=dict)  # invitee -> who invited them

    def peer_of(self, user: str) -> str | None:
        """For a direct conversation, the other participant."""
        if self.kind != DIRECT:
            return None
        others = self.members - {user}
        return next(iter(others), user)


@dataclass(frozen=True)
class FileRef:
    """A stored file: kept on disk by `id`; `name` is what the uploader called it, for display only."""

    id: str
    owner: str
    room_id: str
    name: str
    mime: str
    size: int
    sha256: str
    created: int


@dataclass(frozen=True)
class Message:
    id: int
    room_id: str
    sender: str
    body: str
    ts: int  # milliseconds since the epoch
    kind: str = "text"  # "text"; "media": body is JSON {file, name, mime, size}; "encrypted": body is opaque JSON
