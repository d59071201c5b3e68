"""Message bodies as stored: a `kind` column and a text `body` column, turned into the core's typed bodies.

    text       the text itself
    encrypted  JSON: the client's opaque fields
    media      JSON: {"file", "name", "mime", "size"} and "media" (image, audio, gif) if any
    deleted    empty

Every engine reads rows through `decode`, so a body is typed once, where it leaves storage.
"""

import orjson

from ..core.model import Body, Deleted, Encrypted, Media, Message, Text


def encode(body: Body) -> tuple[str, str]:
    """(kind, body column) for a typed body."""
    match body:
        case Text(text):
            return "text", text
        case Encrypted(fields):
            return "encrypted", orjson.dumps(fields).decode()
        case Media(file, name, mime, size, media):
            info = {"file": file, "name": name, "mime": mime, "size": size} | ({"media": media} if media else {})
            return "media", orjson.dumps(info).decode()
    return "deleted", ""


def decode(kind: str, raw: str) -> Body:
    if kind == "text":
        return Text(raw)
    if kind == "encrypted":
        return Encrypted(orjson.loads(raw))
    if kind == "media":
        info = orjson.loads(raw)
        return Media(info["file"], info["name"], info["mime"], info["size"], info.get("media", ""))
    return Deleted()


def message(row) -> Message:
    """A row (id, room_id, sender, kind, body, ts) as a Message."""
    return Message(row[0], row[1], row[2], decode(row[3], row[4]), row[5])
