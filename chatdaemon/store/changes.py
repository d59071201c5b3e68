"""SQLiteStore's part for schema v5: edits, deletions, reactions, read markers, conversation summaries and paging."""

from ..core.model import Message


def _row_message(row) -> Message:
    return Message(id=row[0], room_id=row[1], sender=row[2], kind=row[3], body=row[4], ts=row[5])


class ChangesStore:
    """A mixin of SQLiteStore (uses its _write, _submit, _read)."""

    def edit_message(self, message_id: int, body: str, ts: int):
        def edit(cursor):
            cursor.execute("UPDATE messages SET body = ? WHERE id = ?", (body, message_id))
            cursor.execute(
                "INSERT INTO message_changes (message_id, edited) VALUES (?, ?) "
                "ON CONFLICT(message_id) DO UPDATE SET edited = excluded.edited",
                (message_id, ts),
            )

        return self._submit(edit)

    def delete_message(self, message_id: int, by: str, ts: int):
        def delete(cursor):
            cursor.execute("UPDATE messages SET body = '', kind = 'deleted' WHERE id = ?", (message_id,))
            cursor.execute("DELETE FROM reactions WHERE message_id = ?", (message_id,))
            cursor.execute(
                "INSERT INTO message_changes (message_id, deleted, deleted_by) VALUES (?, ?, ?) "
                "ON CONFLICT(message_id) DO UPDATE SET deleted = excluded.deleted, deleted_by = excluded.deleted_by",
                (message_id, ts, by),
            )

        return self._submit(delete)

    def add_reaction(self, message_id: int, user: str, emoji: str, ts: int):
        """Fires with 1 if the reaction is new, 0 if it was there."""
        return self._write(
            "INSERT OR IGNORE INTO reactions (message_id, user, emoji, created) VALUES (?, ?, ?, ?)",
            message_id,
            user,
            emoji,
            ts,
        )

    def remove_reaction(self, message_id: int, user: str, emoji: str):
        return self._write(
            "DELETE FROM reactions WHERE message_id = ? AND user = ? AND emoji = ?", message_id, user, emoji
        )

    def set_read_mark(self, room_id: str, user: str, upto: int):
        return self._write(
            "INSERT INTO read_marks (room_id, user, upto) VALUES (?, ?, ?) "
            "ON CONFLICT(room_id, user) DO UPDATE SET upto = max(upto, excluded.upto)",
            room_id,
            user,
            upto,
        )

    def read_marks(self, room_id: str):
        """Fire with {user: upto} for a room."""
        return self._read("SELECT user, upto FROM read_marks WHERE room_id = ?", room_id).addCallback(dict)

    def message_changes(self, ids: list[int]):
        """Fire with {id: {"edited": ts|None, "deleted": ts|None, "reactions": {emoji: [users]}}} for those with any."""

        def read(cursor):
            out: dict[int, dict] = {}
            marks = ",".join("?" * len(ids))
            if not ids:
                return out
            for mid, edited, deleted in cursor.execute(
                f"SELECT message_id, edited, deleted FROM message_changes WHERE message_id IN ({marks})", ids
            ):
                out.setdefault(mid, {"edited": None, "deleted": None, "reactions": {}}).update(
                    edited=edited, deleted=deleted
                )
            for mid, user, emoji in cursor.execute(
                f"SELECT message_id, user, emoji FROM reactions WHERE message_id IN ({marks}) ORDER BY created, user",
                ids,
            ):
                entry = out.setdefault(mid, {"edited": None, "deleted": None, "reactions": {}})
                entry["reactions"].setdefault(emoji, []).append(user)
            return out

        return self._reader_pool.runInteraction(read)

    def page(self, room_id: str, before: int, after: int, limit: int):
        """Up to `limit` messages of a room, oldest first: the newest before `before` (0: none), or with `after`
        the oldest after it."""
        if after:
            d = self._read(
                "SELECT id, room_id, sender, kind, body, ts FROM messages WHERE room_id = ? AND id > ? AND id < ? "
                "ORDER BY id LIMIT ?",
                room_id,
                after,
                before or (1 << 62),
                limit,
            )
            return d.addCallback(lambda rows: [_row_message(r) for r in rows])
        return self.history(room_id, before, limit)

    def summaries(self, user: str, room_ids: list[str]):
        """Fire with {room_id: (last Message or None, unread count)} for the user."""

        def read(cursor):
            out = {}
            for rid in room_ids:
                row = cursor.execute(
                    "SELECT id, room_id, sender, kind, body, ts FROM messages WHERE room_id = ? ORDER BY id DESC LIMIT 1",
                    (rid,),
                ).fetchone()
                mark = cursor.execute(
                    "SELECT upto FROM read_marks WHERE room_id = ? AND user = ?", (rid, user)
                ).fetchone()
                since = cursor.execute(
                    "SELECT since FROM members WHERE room_id = ? AND user = ?", (rid, user)
                ).fetchone()
                floor = max(mark[0] if mark else 0, since[0] if since else 0)
                unread = cursor.execute(
                    "SELECT count(*) FROM messages WHERE room_id = ? AND id > ? AND sender != ? AND kind != 'deleted'",
                    (rid, floor, user),
                ).fetchone()[0]
                out[rid] = (_row_message(row) if row else None, unread)
            return out

        return self._reader_pool.runInteraction(read)
