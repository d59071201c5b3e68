"""IStore in SQL, written once for SQLite and PostgreSQL; each engine (sqlite.py, postgres.py) supplies its pools.

The SQL here is portable: `?` placeholders (PostgreSQL's driver gets `%s`), the column named
"user" quoted (a reserved word in PostgreSQL), upserts as `INSERT ... ON CONFLICT`, and
`greatest(a, b)` (SQLite's two-argument `max`). An engine subclass provides:

    _reader       a pool with adbapi's runQuery(sql, args) and runInteraction(fn)
    writer        a GroupCommitWriter (every write, in order, Deferreds fired after the commit)
    _insert_message(txn, message, kind, body, sent) -> (id, prev), in the writer's transaction; with `sent`
                  (client id, digest, replace), the sent_ids row first (_sent_id_sql), then the message
    _errors       the driver's exceptions that mean "the database is out of reach" (-> Unavailable)
    _conflicts    the driver's constraint violations (-> Conflict where a write may collide)
    _fault_of(e)  why the driver's exception `e` means the storage cannot be written ("disk full", ...), or ""
    _probe_write() a Deferred write that needs free space (probe())

A write failing for a fault (_fault_of) fails with StorageFault, and the store is not `writable` until
probe() succeeds; a database out of reach is Unavailable (and not `available`) instead.
"""

import json
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..core.model import FileRef, Message
from . import Conflict, Snapshot, StorageFault, Unavailable, bodies, fault_of
from .writer import GroupCommitWriter

MESSAGE_COLUMNS = "id, room_id, sender, kind, body, ts"
FILE_COLUMNS = "id, owner, room_id, name, mime, size, sha256, created"
NO_LIMIT = 1 << 62
SENT_ID_COLUMNS = "sender, client_id, message_id, ts, digest"
log = Logger()


def _messages(rows) -> list[Message]:
    return [bodies.message(r) for r in rows]


class SQLStore:
    placeholder = "?"
    greatest = "max"
    _errors: tuple[type[BaseException], ...] = ()
    _conflicts: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self._reader: Any = None  # the engine's reader pool, once open
        self.writer: GroupCommitWriter | None = None
        self.available = True  # False while the database is out of reach
        self.writable = True  # False from a write that failed for a storage fault until a probe succeeds
        self.fault = ""  # why it is not writable
        self._sql_cache: dict[str, str] = {}

    def _q(self, sql: str) -> str:
        """`sql` in this engine's dialect."""
        out = self._sql_cache.get(sql)
        if out is None:
            out = sql.replace("greatest(", f"{self.greatest}(")
            if self.placeholder != "?":
                out = out.replace("?", self.placeholder)
            self._sql_cache[sql] = out
        return out

    # -- plumbing

    def _unavailable(self, failure: Failure) -> Failure:
        """An errback: Unavailable in place of a failure that means the database is out of reach."""
        if self._errors and failure.check(*self._errors):
            self._lost(failure)
            return Failure(Unavailable(str(failure.value)))
        return failure

    def _lost(self, failure: Failure) -> None:
        """The database could not be reached (an engine may watch for its return)."""

    def _fault_of(self, error: BaseException | None) -> str:
        """Why `error` means the storage cannot be written, or "" (an engine knows its driver's errors)."""
        return fault_of(error)

    def _write_failed(self, failure: Failure) -> Failure:
        """What a failed write fails with (the writer's `translate`, and an errback): StorageFault for a storage
        fault (the store is then not `writable`), Conflict for a client id remembered already (sent_ids),
        Unavailable for a database out of reach, else the failure itself."""
        why = self._fault_of(failure.value)
        if why:
            if self.writable:
                log.warn("the database cannot be written ({why}): refusing writes until a probe succeeds", why=why)
            self.writable, self.fault = False, why
            return Failure(StorageFault(why))
        if self._conflicts and failure.check(*self._conflicts) and "sent_ids" in str(failure.value):
            return Failure(Conflict(f"a client id sent already: {failure.value}"))
        return self._unavailable(failure)

    def probe(self) -> Deferred:
        """Try a write that needs free space (after a fault); fires with whether the store is writable again."""

        def committed(_) -> bool:
            if not self.writable:
                log.info("the database can be written again")
            self.writable, self.fault = True, ""
            return True

        def failed(failure: Failure) -> bool:
            why = self._fault_of(failure.value)
            if not why:
                if not failure.check(Unavailable):
                    log.failure("storage probe failed", failure)
                why = self.fault or "probe failed"
            self.writable, self.fault = False, why
            return False

        return self._probe_write().addCallbacks(committed, failed)

    def _probe_write(self) -> Deferred:
        """A write through the group commit (an engine may first check for free space)."""
        return self._write("UPDATE schema_version SET version = version")

    def _read(self, sql, *args) -> Deferred:
        if self._reader is None:
            return fail(RuntimeError("the store is closed"))
        return self._reader.runQuery(self._q(sql), args).addErrback(self._unavailable)

    def _interaction(self, fn) -> Deferred:
        if self._reader is None:
            return fail(RuntimeError("the store is closed"))
        return self._reader.runInteraction(fn).addErrback(self._unavailable)

    def _submit(self, fn) -> Deferred:
        if self.writer is None:
            return fail(RuntimeError("the store is closed"))
        return self.writer.submit(fn)  # (the writer translates its failures with _write_failed)

    def _write(self, sql, *args) -> Deferred:
        q = self._q(sql)
        return self._submit(lambda cursor: cursor.execute(q, args).rowcount)

    def _conflict(self, what: str):
        def conflict(failure: Failure):
            failure.trap(*self._conflicts)
            raise Conflict(what)

        return conflict

    def pending_writes(self) -> int:
        return self.writer.pending if self.writer is not None else 0

    def observe_commits(self, observer) -> None:
        assert self.writer is not None, "open the store first"
        self.writer.observe_commit = observer

    # -- state at start (and at a resync)

    def _snapshot(self, cursor) -> Snapshot:
        from ..core.model import Room

        def rows(sql):
            cursor.execute(self._q(sql))
            return cursor.fetchall()

        snap = Snapshot()
        snap.users = dict(rows("SELECT name, status FROM users"))
        for rid, kind, name, leader, topic, topic_by, topic_at in rows(
            "SELECT id, kind, name, leader, topic, topic_by, topic_at FROM rooms"
        ):
            snap.rooms[rid] = Room(rid, kind, name, leader, topic=topic, topic_by=topic_by, topic_at=topic_at)
        for rid, user in rows('SELECT room_id, "user" FROM members'):
            snap.rooms[rid].members.add(user)
        for rid, user, inviter in rows('SELECT room_id, "user", inviter FROM invites'):
            snap.rooms[rid].invited[user] = inviter
        for user, friend in rows('SELECT "user", friend FROM friends'):
            snap.friends.setdefault(user, set()).add(friend)
        snap.friend_requests = {(s, r) for s, r in rows("SELECT sender, receiver FROM friend_requests")}
        for user, blocked in rows('SELECT "user", blocked FROM blocks'):
            snap.blocked.setdefault(user, set()).add(blocked)
        snap.banned = {name for (name,) in rows("SELECT name FROM users WHERE banned <> 0")}
        snap.file_usage = {owner: int(n) for owner, n in rows("SELECT owner, sum(size) FROM files GROUP BY owner")}
        snap.file_bytes = int(rows("SELECT coalesce(sum(size), 0) FROM files")[0][0])
        snap.last_message_id = rows("SELECT coalesce(max(id), 0) FROM messages")[0][0]
        return snap

    def load(self):
        return self._interaction(self._snapshot)

    # -- accounts

    def create_user(self, name, password_hash, ts):
        d = self._write("INSERT INTO users (name, password, created) VALUES (?, ?, ?)", name, password_hash, ts)
        return d.addErrback(self._conflict(name))

    def set_status(self, name, status):
        return self._write("UPDATE users SET status = ? WHERE name = ?", status, name)

    def set_cursor(self, name, message_id):
        return self._write("UPDATE users SET cursor = greatest(cursor, ?) WHERE name = ?", message_id, name)

    def add_session_key(self, key_hash, user, ts):
        return self._write('INSERT INTO session_keys (key_hash, "user", created) VALUES (?, ?, ?)', key_hash, user, ts)

    def delete_session_key(self, key_hash):
        return self._write("DELETE FROM session_keys WHERE key_hash = ?", key_hash)

    def set_banned(self, name, banned):
        return self._write("UPDATE users SET banned = ? WHERE name = ?", int(banned), name)

    def set_password(self, name, password_hash):
        return self._write("UPDATE users SET password = ? WHERE name = ?", password_hash, name)

    def delete_session_keys(self, user):
        return self._write('DELETE FROM session_keys WHERE "user" = ?', user)

    def delete_user(self, name):
        return self._write("DELETE FROM users WHERE name = ?", name)

    # -- rooms

    def create_room(self, room, ts):
        d = self._write(
            "INSERT INTO rooms (id, kind, name, leader, created) VALUES (?, ?, ?, ?, ?)",
            room.id,
            room.kind,
            room.name,
            room.leader,
            ts,
        )
        return d.addErrback(self._conflict(room.id))

    def set_leader(self, room_id, user):
        return self._write("UPDATE rooms SET leader = ? WHERE id = ?", user, room_id)

    def set_topic(self, room_id, topic, by, ts):
        return self._write(
            "UPDATE rooms SET topic = ?, topic_by = ?, topic_at = ? WHERE id = ?", topic, by, ts, room_id
        )

    def delete_room(self, room_id):
        return self._write("DELETE FROM rooms WHERE id = ?", room_id)

    def add_member(self, room_id, user, since):
        return self._write(
            'INSERT INTO members (room_id, "user", since) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', room_id, user, since
        )

    def remove_member(self, room_id, user):
        return self._write('DELETE FROM members WHERE room_id = ? AND "user" = ?', room_id, user)

    def add_invite(self, room_id, user, inviter, ts):
        return self._write(
            'INSERT INTO invites (room_id, "user", inviter, created) VALUES (?, ?, ?, ?) '
            'ON CONFLICT (room_id, "user") DO UPDATE SET inviter = excluded.inviter, created = excluded.created',
            room_id,
            user,
            inviter,
            ts,
        )

    def remove_invite(self, room_id, user):
        return self._write('DELETE FROM invites WHERE room_id = ? AND "user" = ?', room_id, user)

    # -- messages

    def append_message(self, m: Message, client_id: str = "", digest: int = 0, replace: bool = False):
        kind, body = bodies.encode(m.body)
        sent = (client_id, digest, replace) if client_id else None

        def append(txn):
            mid, prev = self._insert_message(txn, m, kind, body, sent)
            return Message(mid, m.room_id, m.sender, m.body, m.ts), prev

        return self._submit(append)  # (a client id sent already fails with Conflict: _write_failed)

    def _insert_message(self, txn, m: Message, kind: str, body: str, sent: tuple | None) -> tuple[int, int]:
        raise NotImplementedError

    def _sent_id_sql(self, replace: bool, message_id: str = "?") -> str:
        """The INSERT of a sent_ids row (sender, client_id, [message_id], ts, digest), with `message_id` the SQL of
        the message's id; unless `replace`, a client id remembered already is a unique violation."""
        sql = f"INSERT INTO sent_ids ({SENT_ID_COLUMNS}) VALUES (?, ?, {message_id}, ?, ?)"
        if replace:
            sql += (
                " ON CONFLICT (sender, client_id) DO UPDATE SET message_id = excluded.message_id, ts = excluded.ts, "
                "digest = excluded.digest"
            )
        return self._q(sql)

    def sent_id(self, sender: str, client_id: str):
        d = self._read(
            "SELECT message_id, ts, digest FROM sent_ids WHERE sender = ? AND client_id = ?", sender, client_id
        )
        return d.addCallback(lambda rows: tuple(rows[0]) if rows else None)

    def forget_sent_ids(self, before: int):
        return self._write("DELETE FROM sent_ids WHERE ts < ?", before)

    def message(self, message_id):
        d = self._read(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = ?", message_id)
        return d.addCallback(lambda rows: bodies.message(rows[0]) if rows else None)

    def messages(self, room_id, before, after, since, limit):
        if after is not None or since is not None:
            after, since = after or 0, since or 0
            sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND id > ? AND ts >= ? AND id < ? ORDER BY id LIMIT ?"
            return self._read(sql, room_id, after, since, before or NO_LIMIT, limit).addCallback(_messages)
        sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND id < ? ORDER BY id DESC LIMIT ?"
        d = self._read(sql, room_id, before or NO_LIMIT, limit)
        return d.addCallback(lambda rows: _messages(reversed(rows)))

    def messages_after(self, after, limit):
        sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id > ? ORDER BY id LIMIT ?"
        return self._read(sql, after, limit).addCallback(_messages)

    def timeline(self, user, after, upto, limit, missed_only=False):
        columns = ", ".join(f"m.{c}" for c in MESSAGE_COLUMNS.split(", "))
        sql = f'SELECT {columns} FROM members mb JOIN messages m ON m.room_id = mb.room_id WHERE mb."user" = ? AND m.id > ? AND m.id <= ? '
        args = [user, after, upto]
        if missed_only:
            sql += 'AND m.id > mb.since AND m.sender != ? AND m.sender NOT IN (SELECT blocked FROM blocks WHERE "user" = ?) '
            args += [user, user]
        return self._read(sql + "ORDER BY m.id LIMIT ?", *args, limit).addCallback(_messages)

    def edit_message(self, message_id: int, text: str, ts: int):
        update = self._q("UPDATE messages SET body = ?, kind = 'text' WHERE id = ?")
        change = self._q(
            "INSERT INTO message_changes (message_id, edited) VALUES (?, ?) "
            "ON CONFLICT (message_id) DO UPDATE SET edited = excluded.edited"
        )

        def edit(cursor):
            cursor.execute(update, (text, message_id))
            cursor.execute(change, (message_id, ts))

        return self._submit(edit)

    def delete_message(self, message_id: int, by: str, ts: int):
        update = self._q("UPDATE messages SET body = '', kind = 'deleted' WHERE id = ?")
        unreact = self._q("DELETE FROM reactions WHERE message_id = ?")
        change = self._q(
            "INSERT INTO message_changes (message_id, deleted, deleted_by) VALUES (?, ?, ?) "
            "ON CONFLICT (message_id) DO UPDATE SET deleted = excluded.deleted, deleted_by = excluded.deleted_by"
        )

        def delete(cursor):
            cursor.execute(update, (message_id,))
            cursor.execute(unreact, (message_id,))
            cursor.execute(change, (message_id, ts, by))

        return self._submit(delete)

    def message_changes(self, ids: list[int]):
        def read(cursor):
            out: dict[int, dict] = {}
            if not ids:
                return out
            marks = ",".join("?" * len(ids))
            cursor.execute(
                self._q(f"SELECT message_id, edited, deleted FROM message_changes WHERE message_id IN ({marks})"), ids
            )
            for mid, edited, deleted in cursor.fetchall():
                out.setdefault(mid, {"edited": None, "deleted": None, "reactions": {}}).update(
                    edited=edited, deleted=deleted
                )
            cursor.execute(
                self._q(
                    f'SELECT message_id, "user", emoji FROM reactions WHERE message_id IN ({marks}) ORDER BY created, "user"'
                ),
                ids,
            )
            for mid, user, emoji in cursor.fetchall():
                entry = out.setdefault(mid, {"edited": None, "deleted": None, "reactions": {}})
                entry["reactions"].setdefault(emoji, []).append(user)
            return out

        return self._interaction(read)

    def add_reaction(self, message_id: int, user: str, emoji: str, ts: int):
        return self._write(
            'INSERT INTO reactions (message_id, "user", emoji, created) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
            message_id,
            user,
            emoji,
            ts,
        )

    def remove_reaction(self, message_id: int, user: str, emoji: str):
        return self._write(
            'DELETE FROM reactions WHERE message_id = ? AND "user" = ? AND emoji = ?', message_id, user, emoji
        )

    def set_read_mark(self, room_id: str, user: str, upto: int):
        return self._write(
            'INSERT INTO read_marks (room_id, "user", upto) VALUES (?, ?, ?) '
            'ON CONFLICT (room_id, "user") DO UPDATE SET upto = greatest(read_marks.upto, excluded.upto)',
            room_id,
            user,
            upto,
        )

    def read_marks(self, room_id: str):
        return self._read('SELECT "user", upto FROM read_marks WHERE room_id = ?', room_id).addCallback(dict)

    def summaries(self, user: str, room_ids: list[str]):
        last_sql = self._q(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? ORDER BY id DESC LIMIT 1")
        mark_sql = self._q('SELECT upto FROM read_marks WHERE room_id = ? AND "user" = ?')
        since_sql = self._q('SELECT since FROM members WHERE room_id = ? AND "user" = ?')
        unread_sql = self._q(
            "SELECT count(*) FROM messages WHERE room_id = ? AND id > ? AND sender != ? AND kind != 'deleted'"
        )

        def read(cursor):
            out = {}
            for rid in room_ids:
                row = cursor.execute(last_sql, (rid,)).fetchone()
                mark = cursor.execute(mark_sql, (rid, user)).fetchone()
                since = cursor.execute(since_sql, (rid, user)).fetchone()
                floor = max(mark[0] if mark else 0, since[0] if since else 0)
                unread = cursor.execute(unread_sql, (rid, floor, user)).fetchone()[0]
                out[rid] = (bodies.message(row) if row else None, unread)
            return out

        return self._interaction(read)

    # -- offline delivery

    def _scalar(self, sql, *args):
        return self._read(sql, *args).addCallback(lambda rows: rows[0][0] if rows else None)

    def password_hash(self, name):
        return self._scalar("SELECT password FROM users WHERE name = ?", name)

    def user_for_key(self, key_hash):
        return self._scalar('SELECT "user" FROM session_keys WHERE key_hash = ?', key_hash)

    def cursor(self, name):
        return self._scalar("SELECT cursor FROM users WHERE name = ?", name)

    def push_inbox(self, user, kind, payload, ts):
        return self._write(
            'INSERT INTO inbox ("user", kind, payload, ts) VALUES (?, ?, ?, ?)', user, kind, json.dumps(payload), ts
        )

    def inbox(self, user):
        d = self._read('SELECT id, kind, payload, ts FROM inbox WHERE "user" = ? ORDER BY id', user)
        return d.addCallback(lambda rows: [(i, k, json.loads(p), ts) for i, k, p, ts in rows])

    def drop_inbox(self, user, upto):
        return self._write('DELETE FROM inbox WHERE "user" = ? AND id <= ?', user, upto)

    def offline_backlog(self):
        per_user_sql = self._q(
            "SELECT u.name, count(*) FROM users u "
            'JOIN members mb ON mb."user" = u.name '
            "JOIN messages m ON m.room_id = mb.room_id AND m.id > greatest(u.cursor, mb.since) "
            "WHERE m.sender != u.name GROUP BY u.name"
        )

        def count(cursor):
            per_user = dict(cursor.execute(per_user_sql).fetchall())
            return per_user, cursor.execute("SELECT count(*) FROM inbox").fetchone()[0]

        return self._interaction(count)

    # -- friends and blocks

    def add_friends(self, a, b, ts):
        sql = self._q('INSERT INTO friends ("user", friend, since) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')

        def befriend(cursor):
            cursor.executemany(sql, [(a, b, ts), (b, a, ts)])

        return self._submit(befriend)

    def remove_friends(self, a, b):
        return self._write(
            'DELETE FROM friends WHERE ("user" = ? AND friend = ?) OR ("user" = ? AND friend = ?)', a, b, b, a
        )

    def add_friend_request(self, sender, receiver, ts):
        return self._write(
            "INSERT INTO friend_requests (sender, receiver, created) VALUES (?, ?, ?) "
            "ON CONFLICT (sender, receiver) DO UPDATE SET created = excluded.created",
            sender,
            receiver,
            ts,
        )

    def remove_friend_request(self, sender, receiver):
        return self._write("DELETE FROM friend_requests WHERE sender = ? AND receiver = ?", sender, receiver)

    def block(self, user, blocked, ts):
        return self._write(
            'INSERT INTO blocks ("user", blocked, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING', user, blocked, ts
        )

    def unblock(self, user, blocked):
        return self._write('DELETE FROM blocks WHERE "user" = ? AND blocked = ?', user, blocked)

    # -- files

    def add_file(self, ref: FileRef):
        return self._write(
            f"INSERT INTO files ({FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ref.id,
            ref.owner,
            ref.room_id,
            ref.name,
            ref.mime,
            ref.size,
            ref.sha256,
            ref.created,
        )

    def file(self, file_id):
        d = self._read(f"SELECT {FILE_COLUMNS} FROM files WHERE id = ?", file_id)
        return d.addCallback(lambda rows: FileRef(*rows[0]) if rows else None)

    def files_in_room(self, room_id):
        d = self._read(f"SELECT {FILE_COLUMNS} FROM files WHERE room_id = ? ORDER BY created, id", room_id)
        return d.addCallback(lambda rows: [FileRef(*r) for r in rows])

    # -- profiles

    def set_metadata(self, user, message_id, key, value, ts):
        return self._write(
            'INSERT INTO metadata ("user", message_id, key, value, updated) VALUES (?, ?, ?, ?, ?) '
            'ON CONFLICT ("user", message_id, key) DO UPDATE SET value = excluded.value, updated = excluded.updated',
            user,
            message_id,
            key,
            json.dumps(value),
            ts,
        )

    def metadata(self, user, message_id):
        d = self._read('SELECT key, value FROM metadata WHERE "user" = ? AND message_id = ?', user, message_id)
        return d.addCallback(lambda rows: {k: json.loads(v) for k, v in rows})

    def add_feedback(self, user, body, rating, ts):
        return self._write(
            'INSERT INTO feedback ("user", body, rating, created) VALUES (?, ?, ?, ?)', user, body, rating, ts
        )

    def feedback(self, limit):
        return self._read('SELECT id, "user", body, rating, created FROM feedback ORDER BY id DESC LIMIT ?', limit)
