"""IStore on SQLite: WAL mode, one writer thread with group commit, a reader pool."""

import json
import os
import sqlite3

from twisted.enterprise import adbapi
from twisted.internet.defer import fail, inlineCallbacks
from zope.interface import implementer

from ..core.model import FileRef, Message, Room
from . import Conflict, IStore, Snapshot, bodies, migrate
from .writer import GroupCommitWriter

DB_FILE = "chatd.sqlite3"
MESSAGE_COLUMNS = "id, room_id, sender, kind, body, ts"
NO_LIMIT = 1 << 62


def _messages(rows) -> list[Message]:
    return [bodies.message(r) for r in rows]


@implementer(IStore)
class SQLiteStore:
    def __init__(self, data_dir: str, reactor, group_commit_max: int = 1024, synchronous: str = "FULL"):
        self.path = self.location = os.path.join(data_dir, DB_FILE)
        self._reactor = reactor
        self._synchronous = synchronous
        self._group_commit_max = group_commit_max
        self._next_id = 1
        self._writer_pool = self._reader_pool = self.writer = None

    def _pool(self, readers: int):
        def pragmas(conn):
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.execute("PRAGMA busy_timeout = 5000")

        return adbapi.ConnectionPool(
            "sqlite3",
            self.path,
            check_same_thread=False,
            isolation_level=None,
            cp_min=1,
            cp_max=readers,
            cp_openfun=pragmas,
            cp_reactor=self._reactor,
        )

    @inlineCallbacks
    def open(self):
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        self._writer_pool = self._pool(1)
        self.writer = GroupCommitWriter(
            self._writer_pool, self._reactor, self._group_commit_max, (sqlite3.DatabaseError,)
        )
        yield self._writer_pool.runWithConnection(migrate.upgrade, self.path)
        self._reader_pool = self._pool(2)
        last = yield self._read("SELECT coalesce(max(id), 0) FROM messages")
        self._next_id = last[0][0] + 1

    @inlineCallbacks
    def close(self):
        if self.writer is not None:
            yield self.writer.drain()
        for pool in (self._reader_pool, self._writer_pool):
            if pool is not None:
                pool.close()
        self._writer_pool = self._reader_pool = self.writer = None

    def pending_writes(self) -> int:
        return self.writer.pending if self.writer is not None else 0

    def observe_commits(self, observer) -> None:
        self.writer.observe_commit = observer

    def _read(self, sql, *args):
        return self._reader_pool.runQuery(sql, args)

    def _submit(self, fn):
        if self.writer is None:
            return fail(RuntimeError("the store is closed"))
        return self.writer.submit(fn)

    def _write(self, sql, *args):
        return self._submit(lambda cursor: cursor.execute(sql, args).rowcount)

    # -- state at start

    def load(self):
        def snapshot(cursor) -> Snapshot:
            snap = Snapshot()
            snap.users = dict(cursor.execute("SELECT name, status FROM users"))
            rows = cursor.execute("SELECT id, kind, name, leader, topic, topic_by, topic_at FROM rooms")
            for rid, kind, name, leader, topic, topic_by, topic_at in rows:
                snap.rooms[rid] = Room(rid, kind, name, leader, topic=topic, topic_by=topic_by, topic_at=topic_at)
            for rid, user in cursor.execute("SELECT room_id, user FROM members"):
                snap.rooms[rid].members.add(user)
            for rid, user, inviter in cursor.execute("SELECT room_id, user, inviter FROM invites"):
                snap.rooms[rid].invited[user] = inviter
            for user, friend in cursor.execute("SELECT user, friend FROM friends"):
                snap.friends.setdefault(user, set()).add(friend)
            snap.friend_requests = set(cursor.execute("SELECT sender, receiver FROM friend_requests"))
            for user, blocked in cursor.execute("SELECT user, blocked FROM blocks"):
                snap.blocked.setdefault(user, set()).add(blocked)
            snap.banned = {name for (name,) in cursor.execute("SELECT name FROM users WHERE banned")}
            snap.file_usage = dict(cursor.execute("SELECT owner, sum(size) FROM files GROUP BY owner"))
            snap.last_message_id = cursor.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
            return snap

        return self._reader_pool.runInteraction(snapshot)

    def next_message_id(self) -> int:
        mid, self._next_id = self._next_id, self._next_id + 1
        return mid

    # -- writes

    def create_user(self, name, password_hash, ts):
        def conflict(failure):
            failure.trap(sqlite3.IntegrityError)
            raise Conflict(name)

        d = self._write("INSERT INTO users (name, password, created) VALUES (?, ?, ?)", name, password_hash, ts)
        return d.addErrback(conflict)

    def set_status(self, name, status):
        return self._write("UPDATE users SET status = ? WHERE name = ?", status, name)

    def set_cursor(self, name, message_id):
        return self._write("UPDATE users SET cursor = max(cursor, ?) WHERE name = ?", message_id, name)

    def add_session_key(self, key_hash, user, ts):
        return self._write("INSERT INTO session_keys (key_hash, user, created) VALUES (?, ?, ?)", key_hash, user, ts)

    def delete_session_key(self, key_hash):
        return self._write("DELETE FROM session_keys WHERE key_hash = ?", key_hash)

    def create_room(self, room, ts):
        return self._write(
            "INSERT INTO rooms (id, kind, name, leader, created) VALUES (?, ?, ?, ?, ?)",
            room.id,
            room.kind,
            room.name,
            room.leader,
            ts,
        )

    def set_leader(self, room_id, user):
        return self._write("UPDATE rooms SET leader = ? WHERE id = ?", user, room_id)

    def set_topic(self, room_id, topic, by, ts):
        return self._write(
            "UPDATE rooms SET topic = ?, topic_by = ?, topic_at = ? WHERE id = ?", topic, by, ts, room_id
        )

    def add_member(self, room_id, user, since):
        return self._write("INSERT INTO members (room_id, user, since) VALUES (?, ?, ?)", room_id, user, since)

    def remove_member(self, room_id, user):
        return self._write("DELETE FROM members WHERE room_id = ? AND user = ?", room_id, user)

    def add_invite(self, room_id, user, inviter, ts):
        return self._write(
            "INSERT OR REPLACE INTO invites (room_id, user, inviter, created) VALUES (?, ?, ?, ?)",
            room_id,
            user,
            inviter,
            ts,
        )

    def remove_invite(self, room_id, user):
        return self._write("DELETE FROM invites WHERE room_id = ? AND user = ?", room_id, user)

    def append_message(self, m: Message):
        kind, body = bodies.encode(m.body)
        sql = "INSERT INTO messages (id, room_id, sender, kind, body, ts) VALUES (?, ?, ?, ?, ?, ?)"
        return self._write(sql, m.id, m.room_id, m.sender, kind, body, m.ts)

    def add_friends(self, a, b, ts):
        def befriend(cursor):
            cursor.executemany(
                "INSERT OR IGNORE INTO friends (user, friend, since) VALUES (?, ?, ?)", [(a, b, ts), (b, a, ts)]
            )

        return self._submit(befriend)

    def remove_friends(self, a, b):
        return self._write(
            "DELETE FROM friends WHERE (user = ? AND friend = ?) OR (user = ? AND friend = ?)", a, b, b, a
        )

    def add_friend_request(self, sender, receiver, ts):
        return self._write(
            "INSERT OR REPLACE INTO friend_requests (sender, receiver, created) VALUES (?, ?, ?)", sender, receiver, ts
        )

    def remove_friend_request(self, sender, receiver):
        return self._write("DELETE FROM friend_requests WHERE sender = ? AND receiver = ?", sender, receiver)

    def block(self, user, blocked, ts):
        return self._write("INSERT OR IGNORE INTO blocks (user, blocked, created) VALUES (?, ?, ?)", user, blocked, ts)

    def unblock(self, user, blocked):
        return self._write("DELETE FROM blocks WHERE user = ? AND blocked = ?", user, blocked)

    def delete_room(self, room_id):
        return self._write("DELETE FROM rooms WHERE id = ?", room_id)

    def add_file(self, ref: FileRef):
        return self._write(
            "INSERT INTO files (id, owner, room_id, name, mime, size, sha256, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ref.id,
            ref.owner,
            ref.room_id,
            ref.name,
            ref.mime,
            ref.size,
            ref.sha256,
            ref.created,
        )

    def set_metadata(self, user, message_id, key, value, ts):
        return self._write(
            "INSERT OR REPLACE INTO metadata (user, message_id, key, value, updated) VALUES (?, ?, ?, ?, ?)",
            user,
            message_id,
            key,
            json.dumps(value),
            ts,
        )

    def add_feedback(self, user, body, rating, ts):
        return self._write(
            "INSERT INTO feedback (user, body, rating, created) VALUES (?, ?, ?, ?)", user, body, rating, ts
        )

    def push_inbox(self, user, kind, payload, ts):
        return self._write(
            "INSERT INTO inbox (user, kind, payload, ts) VALUES (?, ?, ?, ?)", user, kind, json.dumps(payload), ts
        )

    def drop_inbox(self, user, upto):
        return self._write("DELETE FROM inbox WHERE user = ? AND id <= ?", user, upto)

    # -- reads

    def _scalar(self, sql, *args):
        return self._read(sql, *args).addCallback(lambda rows: rows[0][0] if rows else None)

    def password_hash(self, name):
        return self._scalar("SELECT password FROM users WHERE name = ?", name)

    def user_for_key(self, key_hash):
        return self._scalar("SELECT user FROM session_keys WHERE key_hash = ?", key_hash)

    def cursor(self, name):
        return self._scalar("SELECT cursor FROM users WHERE name = ?", name)

    def messages(self, room_id, before, after, since, limit):
        if after is not None or since is not None:
            after, since = after or 0, since or 0
            sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND id > ? AND ts >= ? AND id < ? ORDER BY id LIMIT ?"
            return self._read(sql, room_id, after, since, before or NO_LIMIT, limit).addCallback(_messages)
        sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
        d = self._read(sql, room_id, before or NO_LIMIT, limit)
        return d.addCallback(lambda rows: _messages(reversed(rows)))

    def timeline(self, user, after, upto, limit, missed_only=False):
        columns = ", ".join(f"m.{c}" for c in MESSAGE_COLUMNS.split(", "))
        sql = f"SELECT {columns} FROM members mb JOIN messages m ON m.room_id = mb.room_id WHERE mb.user = ? AND m.id > ? AND m.id <= ? "
        args = [user, after, upto]
        if missed_only:
            sql += (
                "AND m.id > mb.since AND m.sender != ? AND m.sender NOT IN (SELECT blocked FROM blocks WHERE user = ?) "
            )
            args += [user, user]
        return self._read(sql + "ORDER BY m.id LIMIT ?", *args, limit).addCallback(_messages)

    def message(self, message_id):
        d = self._read(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", message_id)
        return d.addCallback(lambda rows: bodies.message(rows[0]) if rows else None)

    def file(self, file_id):
        d = self._read("SELECT id, owner, room_id, name, mime, size, sha256, created FROM files WHERE id = ?", file_id)
        return d.addCallback(lambda rows: FileRef(*rows[0]) if rows else None)

    def files_in_room(self, room_id):
        d = self._read(
            "SELECT id, owner, room_id, name, mime, size, sha256, created FROM files WHERE room_id = ? ORDER BY created, id",
            room_id,
        )
        return d.addCallback(lambda rows: [FileRef(*r) for r in rows])

    def metadata(self, user, message_id):
        d = self._read("SELECT key, value FROM metadata WHERE user = ? AND message_id = ?", user, message_id)
        return d.addCallback(lambda rows: {k: json.loads(v) for k, v in rows})

    def feedback(self, limit):
        return self._read("SELECT id, user, body, rating, created FROM feedback ORDER BY id DESC LIMIT ?", limit)

    def inbox(self, user):
        d = self._read("SELECT id, kind, payload, ts FROM inbox WHERE user = ? ORDER BY id", user)
        return d.addCallback(lambda rows: [(i, k, json.loads(p), ts) for i, k, p, ts in rows])

    # -- operators (admin shell) and metrics

    def set_banned(self, name, banned):
        return self._write("UPDATE users SET banned = ? WHERE name = ?", int(banned), name)

    def set_password(self, name, password_hash):
        return self._write("UPDATE users SET password = ? WHERE name = ?", password_hash, name)

    def delete_session_keys(self, user):
        return self._write("DELETE FROM session_keys WHERE user = ?", user)

    def delete_user(self, name):
        return self._write("DELETE FROM users WHERE name = ?", name)

    def offline_backlog(self):
        def count(cursor):
            per_user = dict(
                cursor.execute(
                    "SELECT u.name, count(*) FROM users u "
                    "JOIN members mb ON mb.user = u.name "
                    "JOIN messages m ON m.room_id = mb.room_id AND m.id > max(u.cursor, mb.since) "
                    "WHERE m.sender != u.name GROUP BY u.name"
                )
            )
            return per_user, cursor.execute("SELECT count(*) FROM inbox").fetchone()[0]

        return self._reader_pool.runInteraction(count)

    # -- edits, deletions, reactions, read marks, summaries

    def edit_message(self, message_id: int, text: str, ts: int):
        def edit(cursor):
            cursor.execute("UPDATE messages SET body = ?, kind = 'text' WHERE id = ?", (text, message_id))
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

    def summaries(self, user: str, room_ids: list[str]):
        """Fire with {room_id: (last Message or None, unread count)} for the user."""

        def read(cursor):
            out = {}
            for rid in room_ids:
                row = cursor.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? ORDER BY id DESC LIMIT 1",
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
                out[rid] = (bodies.message(row) if row else None, unread)
            return out

        return self._reader_pool.runInteraction(read)
