"""The storage seam: IStore lists every method the core (and the service) calls on storage, and nothing else is called.

SQLite (store.sqlite) is the default engine, PostgreSQL (store.postgres) the one several nodes share;
both are store.sql's SQL. Every method but `pending_writes` and `observe_commits` returns a Deferred.
Writes are applied in the order they are made, and their Deferreds fire only after the data is
committed. Messages come back with typed bodies (store.bodies).

Message ids are the store's: increasing, and committed in id order (when id N is visible, every
smaller id that will ever be visible already is), on one node or many. That is what lets a node
catch up on what it missed by asking for everything after the last id it handed on.

While the database is out of reach, calls fail with Unavailable and `available` is False.
IFileStore is where files' bytes go (a directory, or the database), IStore where they are recorded.

Storage faults: a write that fails because the storage is full or read-only (or fails with an I/O
error) fails with StorageFault, and the store says it is not `writable` (with the reason in
`fault`) until `probe()` succeeds: a test write that needs free space. The service probes every
`storage.probe_interval` seconds while a fault lasts; /health answers 503 meanwhile. Out of reach
(Unavailable, 9010) and unwritable (StorageFault, 9020) are separate: a database that answers but
cannot write is the second.
"""

import contextlib
import errno
import os
from dataclasses import dataclass, field

from zope.interface import Attribute, Interface

from ..core.model import Room


class Conflict(Exception):
    """A write collided with existing data (e.g. a user name that is taken)."""


class Unavailable(Exception):
    """The database cannot be reached; nothing was written (try again later)."""


class StorageFault(Exception):
    """The storage cannot be written (a full or read-only disk, an I/O error): nothing was stored."""


PROBE_BYTES = 256 * 1024  # what a probe writes: a full disk must have at least this much free again

_OS_FAULTS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EROFS: "read-only file system",
              errno.EIO: "I/O error"}  # fmt: skip


def fault_of(error: BaseException | None) -> str:
    """Why `error` (an OSError, or a StorageFault) means the storage cannot be written ("disk full", ...), or ""."""
    if isinstance(error, StorageFault):
        return str(error)
    if isinstance(error, OSError):
        return _OS_FAULTS.get(error.errno or 0, "")
    return ""


def probe_directory(directory: str, size: int = PROBE_BYTES) -> None:
    """Write and sync `size` bytes in a file of `directory`, then remove it; raises OSError if it cannot."""
    path = os.path.join(directory, ".chatd-probe")
    try:
        with open(path, "wb", buffering=0) as f:
            f.write(bytes(size))
            os.fsync(f.fileno())
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


@dataclass
class Snapshot:
    """The state the core keeps in memory, as loaded at start."""

    users: dict[str, str] = field(default_factory=dict)  # name -> custom status
    rooms: dict[str, Room] = field(default_factory=dict)  # with members and invitations
    friends: dict[str, set[str]] = field(default_factory=dict)
    friend_requests: set[tuple[str, str]] = field(default_factory=set)  # (sender, receiver)
    blocked: dict[str, set[str]] = field(default_factory=dict)  # user -> whom they blocked
    banned: set[str] = field(default_factory=set)
    file_usage: dict[str, int] = field(default_factory=dict)  # owner -> bytes stored
    file_bytes: int = 0  # bytes of all stored files
    last_message_id: int = 0


class IStore(Interface):
    location = Attribute("Where the data is, for the logs (a path or a URL without its password).")
    available = Attribute("False while the database cannot be reached (GET /health says so).")
    writable = Attribute("False from a write that failed with a StorageFault until probe() succeeds.")
    fault = Attribute('Why it is not writable (e.g. "disk full"), or "".')

    def probe():
        """Try a write that needs free space (after a fault); fire with whether the store is writable again."""

    def open():
        """Create or upgrade the schema; fires when ready."""

    def close():
        """Commit every pending write, then release the database."""

    def load():
        """Fire with a Snapshot."""

    def pending_writes():
        """Writes waiting for the next commit (metrics); synchronous."""

    def observe_commits(observer):
        """Call `observer(seconds, writes)` after each commit (metrics)."""

    # -- accounts
    def create_user(name, password_hash, ts):
        """Add an account; fails with Conflict if the name exists."""

    def password_hash(name):
        """Fire with the user's password hash, or None."""

    def set_password(name, password_hash):
        """Replace a user's password hash."""

    def set_status(name, status):
        """Persist a user's custom status."""

    def set_banned(name, banned):
        """Mark an account banned (True) or not."""

    def delete_user(name):
        """Delete an account with its keys, memberships, invitations, friendships, blocks and inbox."""

    def add_session_key(key_hash, user, ts):
        """Remember a login's session key (by hash)."""

    def user_for_key(key_hash):
        """Fire with the user a session key belongs to, or None."""

    def delete_session_key(key_hash):
        """Forget a session key."""

    def delete_session_keys(user):
        """Forget every session key of a user."""

    # -- rooms
    def create_room(room, ts):
        """Add a room (its members are added separately)."""

    def set_leader(room_id, user):
        """Change a room's leader."""

    def set_topic(room_id, topic, by, ts):
        """Change a room's topic (who set it, when)."""

    def delete_room(room_id):
        """Remove a room with its members, invitations, messages, read marks and file records."""

    def add_member(room_id, user, since):
        """Make a user a member; `since` is the last message id before joining."""

    def remove_member(room_id, user):
        """Remove a membership."""

    def add_invite(room_id, user, inviter, ts):
        """Record an invitation to a group."""

    def remove_invite(room_id, user):
        """Drop an invitation (answered either way)."""

    # -- messages
    def append_message(message, client_id="", digest=0, replace=False):
        """Store a Message (its id is ignored: the store gives the next one). Fires with (the Message as
        stored, `prev`): no message has an id between `prev` and the new id. With `client_id`, remember in
        the same transaction that its sender sent it under that id (with `digest`, the core's fingerprint of
        its room and body); fails with Conflict, storing nothing, if the sender's `client_id` is remembered
        already, unless `replace`: then the id names this message from now on."""

    def sent_id(sender, client_id):
        """Fire with (message_id, ts, digest) of the message `sender` stored under `client_id`, or None."""

    def forget_sent_ids(before):
        """Forget the client ids of messages older than `before` (ms since the epoch)."""

    def message(message_id):
        """Fire with the Message of that id, or None."""

    def messages(room_id, before, after, since, limit):
        """Fire with up to `limit` Messages of a room, oldest first, with id < before (if before) and: if
        `after` or `since` is not None, the oldest with id > after and ts >= since (ms); else the newest."""

    def messages_after(after, limit):
        """Fire with up to `limit` Messages of every room with id > after, oldest first."""

    def timeline(user, after, upto, limit, missed_only=False):
        """Fire with up to `limit` Messages in the user's rooms with after < id <= upto, oldest first. With
        `missed_only`: only those sent by others (not blocked by the user) since the user joined."""

    def edit_message(message_id, text, ts):
        """Replace a text message's text; remember when it was edited."""

    def delete_message(message_id, by, ts):
        """Turn a message into a deleted one (its reactions go); remember who and when."""

    def message_changes(ids):
        """Fire with {id: {"edited": ts|None, "deleted": ts|None, "reactions": {emoji: [users]}}} for those with any."""

    def add_reaction(message_id, user, emoji, ts):
        """Fire with 1 if the reaction is new, 0 if it was there."""

    def remove_reaction(message_id, user, emoji):
        """Fire with 1 if there was such a reaction, else 0."""

    def set_read_mark(room_id, user, upto):
        """Everything up to `upto` in the room is read by the user (a mark never moves back)."""

    def read_marks(room_id):
        """Fire with {user: upto} for a room."""

    def summaries(user, room_ids):
        """Fire with {room_id: (last Message or None, unread count)} for the user."""

    # -- offline delivery
    def cursor(name):
        """Fire with the last message id the user surely got."""

    def set_cursor(name, message_id):
        """Move the user's cursor forward to `message_id` (never back)."""

    def push_inbox(user, kind, payload, ts):
        """Queue a notice (a dict) for a user's next login."""

    def inbox(user):
        """Fire with the user's queued notices as (id, kind, payload dict, ts), oldest first."""

    def drop_inbox(user, upto):
        """Delete a user's notices with id <= upto, once delivered."""

    def offline_backlog():
        """Fire with ({user: messages in their rooms newer than their cursor}, notices in all inboxes)."""

    # -- friends and blocks
    def add_friends(a, b, ts):
        """Make a and b friends (both ways)."""

    def remove_friends(a, b):
        """End the friendship of a and b."""

    def add_friend_request(sender, receiver, ts):
        """Remember a pending friend request."""

    def remove_friend_request(sender, receiver):
        """Forget a friend request (answered)."""

    def block(user, blocked, ts):
        """Record that `user` blocked `blocked`."""

    def unblock(user, blocked):
        """Lift a block."""

    # -- files
    def add_file(ref):
        """Record a stored file (a FileRef)."""

    def file(file_id):
        """Fire with the FileRef of that id, or None."""

    def files_in_room(room_id):
        """Fire with the FileRefs of a room, oldest first."""

    # -- profiles
    def set_metadata(user, message_id, key, value, ts):
        """Store one metadata key (value: JSON-able) of a user (message_id 0) or of a message."""

    def metadata(user, message_id):
        """Fire with the dict of a user's (message_id 0) or a message's metadata."""

    def add_feedback(user, body, rating, ts):
        """Keep a user's feedback for the operators."""

    def feedback(limit):
        """Fire with the latest feedback as (id, user, body, rating, ts), newest first."""


class IFileStore(Interface):
    """Files' bytes by server-generated id (the client's name is metadata only), and uploads in progress."""

    location = Attribute("Where files are kept, for the logs.")
    writable = Attribute("False from a write that failed for want of space or write access until probe() succeeds.")
    fault = Attribute('Why it is not writable (e.g. "disk full"), or "".')

    def failed(error):
        """A write of files failed with `error`: why the files cannot be written (then not `writable`), or ""."""

    def probe():
        """Try a write that needs free space (after a fault); fire with whether the files are writable again."""

    def open():
        """Get ready (uploads in progress do not survive a restart: they are cleared)."""

    def new_id():
        """A new random id (32 hex digits)."""

    def begin(upload_id):
        """Make room for an upload's chunks."""

    def put_chunk(upload_id, index, data, most):
        """Keep chunk `index` of an upload (again: the same index replaces it); True, or False (and nothing
        kept) if the upload would then hold more than `most` bytes."""

    def discard(upload_id):
        """Drop an upload in progress."""

    def assemble(upload_id, total, file_id):
        """Join chunks 1..total into file `file_id` (whole or not at all); fires with (size, sha256)."""

    def read(file_id, offset, length):
        """Fire with up to `length` bytes of a file from `offset`."""

    def remove(file_id):
        """Delete a file (nothing if it is not there); fires when done."""
