"""JSON shapes shared by the events dialect, the colon dialect and the REST API (seed 003's API server)."""

import orjson

from ..core.model import DIRECT, Message, Room


def conversation_name(room: Room, user: str) -> str:
    return room.peer_of(user) if room.kind == DIRECT else room.name


def message_json(m: Message, changes: dict | None = None, reads: dict | None = None) -> dict:
    """A stored message: id, cid, sender, kind, text (or file), ts (ms), edited, deleted, reactions, read_by."""
    change = (changes or {}).get(m.id) or {}
    out = {"id": m.id, "cid": m.room_id, "sender": m.sender, "kind": m.kind, "ts": m.ts}
    if m.kind == "media":
        info = orjson.loads(m.body)
        out["kind"] = info.get("media", "file")
        out["file"] = {
            "id": info["file"],
            "name": info["name"],
            "mime": info["mime"],
            "size": info["size"],
            "url": f"/files/{info['file']}",
        }
        out["text"] = ""
    elif m.kind == "encrypted":
        out["text"] = ""
        out["encrypted"] = orjson.loads(m.body)
    else:
        out["text"] = m.body
    out["edited"] = change.get("edited")
    out["deleted"] = m.kind == "deleted"
    out["reactions"] = change.get("reactions") or {}
    if reads is not None:
        out["read_by"] = sorted(u for u, upto in reads.items() if upto >= m.id and u != m.sender)
    return out


def room_json(room: Room, user: str) -> dict:
    return {
        "cid": room.id,
        "kind": room.kind,
        "name": conversation_name(room, user),
        "leader": room.leader,
        "members": sorted(room.members),
    }
