"""The storage seam: IStore, which the core uses for everything durable.

SQLite (store.sqlite) is the default; another engine implements the same
interface. Every method returns a Deferred. Writes are applied in the order
they are made and their Deferreds fire only after the data is committed.
"""

from dataclasses import dataclass, field

from zope.interface import Interface

from ..core.model import Room


class Conflict(Exception):
    """A write collided with existing data (e.g. a user name that is taken)."""


@dataclass
class Snapshot:
    """The state the core keeps in memory, as loaded at start."""

    users: dict[str, str] = field(default_factory=dict)  # name -> custom status
    rooms: dict[str, Room] = field(default_factory=dict)
    friends: dict[str, set[str]] = field(default_factory=dict)
    friend_requests: set[tuple[str, str]] = field(default_factory=set)  # (sender, receiver)
    blocked: dict[str, set[str]] = field(default_factory=dict)  # user -> whom they blocked
    file_usage: dict[str, int] = field(default_factory=dict)  # owner -> bytes stored
    last_message_id: int = 0


class IStore(Interface):
    def open():
        """Create or upgrade the schema; fires when ready."""

    def close():
        """Commit every pending write, then release the database."""

    def load():
        """Fire with a Snapshot of users, rooms, members and invitations."""

    def next_message_id():
        """Reserve the next message id (monotonic); synchronous."""

    # writes: each fires after its commit
    def create_user(name, password_hash, ts):
        """Add an account; fails with Conflict if the name exists."""

    def set_status(name, status):
        """Persist a user's custom status."""

    def set_cursor(name, message_id):
        """Record the last message id a user has been given."""

    def add_session_key(key_hash, user, ts):
        """Remember a login's session key (by hash)."""

    def delete_session_key(key_hash):
        """Forget a session key."""

    def create_room(room, ts):
        """Add a room (its members are added separately)."""

    def set_leader(room_id, user):
        """Change (or clear, with None) a group's leader."""

    def add_member(room_id, user, since):
        """Make a user a member; `since` is the last message id before joining."""

    def remove_member(room_id, user):
        """Remove a membership."""

    def add_invite(room_id, user, inviter, ts):
        """Record an invitation to a group."""

    def remove_invite(room_id, user):
        """Drop an invitation (answered either way)."""

    def append_message(message):
        """Store a Message whose id came from next_message_id()."""

    def push_inbox(user, kind, payload, ts):
        """Queue a notice (a dict) for a user's next login."""

    def drop_inbox(user, upto):
        """Delete a user's notices with id <= upto, once delivered."""

    # reads
    def password_hash(name):
        """Fire with the user's password hash, or None."""

    def user_for_key(key_hash):
        """Fire with the user a session key belongs to, or None."""

    def cursor(name):
        """Fire with the last message id the user was given."""

    def history(room_id, before, limit):
        """Fire with up to `limit` Messages of a room with id < before (0: latest), oldest first."""

    def room_since(room_id, from_ts, after, limit):
        """Fire with up to `limit` Messages of a room with ts >= from_ts (ms) and id > after, oldest first."""

    def timeline(user, after, upto, limit, missed_only=False):
        """Fire with up to `limit` Messages in the user's rooms with after < id <= upto, oldest first.
        With `missed_only`: only those sent by others (not blocked by the user) since the user joined."""

    def message(message_id):
        """Fire with the Message of that id, or None."""

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

    def delete_room(room_id):
        """Remove a room with its members, invitations, messages and file records."""

    def add_file(ref):
        """Record a stored file (a FileRef)."""

    def file(file_id):
        """Fire with the FileRef of that id, or None."""

    def files_in_room(room_id):
        """Fire with the FileRefs of a room, oldest first."""

    def set_metadata(user, message_id, key, value, ts):
        """Store one metadata key (value: JSON-able) of a user (message_id 0) or of a message."""

    def metadata(user, message_id):
        """Fire with the dict of a user's (message_id 0) or a message's metadata."""

    def add_feedback(user, body, rating, ts):
        """Keep a user's feedback for the operators."""

    def feedback(limit):
        """Fire with the latest feedback as (id, user, body, rating, ts), newest first."""

    def inbox(user):
        """Fire with the user's queued notices as (id, kind, payload dict, ts), oldest first."""

    # operators (the admin shell) and metrics
    def banned_users():
        """Fire with the names of the banned accounts."""

    def set_banned(name, banned):
        """Mark an account banned (True) or not."""

    def set_password(name, password_hash):
        """Replace a user's password hash."""

    def delete_session_keys(user):
        """Forget every session key of a user."""

    def delete_user(name):
        """Delete an account with its session keys, memberships, invitations and inbox."""

    def offline_backlog():
        """Fire with ({user: messages in their rooms newer than their cursor}, notices in all inboxes)."""
