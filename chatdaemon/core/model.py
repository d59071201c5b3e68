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
    invited: set[str] = field(default_factory=set)

    def peer_of(self, user: str) -> str | None:
        """For a direct conversation, the other participant."""
        if self.kind != DIRECT:
            return None
        others = self.members - {user}
        return next(iter(others), user)


@dataclass(frozen=True)
class Message:
    id: int
    room_id: str
    sender: str
    body: str
    ts: int  # milliseconds since the epoch
    kind: str = "text"
