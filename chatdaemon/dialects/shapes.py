"""JSON shapes shared by the events dialect, the colon dialect and the REST API (seed 003's API server)."""

from ..core.model import DIRECT, Encrypted, Media, Message, Room, Text


def conversation_name(room: Room, user: str) -> str:
    return (room.peer_of(user) or user) if room.kind == DIRECT else room.name


def file_json(media: Media) -> dict:
    return {"id": media.file, "name": media.name, "mime": media.mime, "size": media.size, "url": f"/files/{media.file}"}


def message_json(m: Message, changes: dict | None = None, reads: dict | None = None) -> dict:
    """A stored message: id, cid, sender, kind, text (or file, or encrypted), ts (ms), edited, deleted,
    reactions, read_by."""
    change = (changes or {}).get(m.id) or {}
    out = {"id": m.id, "cid": m.room_id, "sender": m.sender, "kind": m.kind, "ts": m.ts, "text": ""}
    match m.body:
        case Text(text):
            out["text"] = text
        case Media() as media:
            out["kind"] = media.media or "file"
            out["file"] = file_json(media)
        case Encrypted(fields):
            out["encrypted"] = fields
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
