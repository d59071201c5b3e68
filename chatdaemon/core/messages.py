"""Messages: sending (text, encrypted, media), editing, deleting, reactions, history, conversation lists.

Every message is stored once (acknowledged after its commit) and fanned out to the members of its
room, except to members who blocked the sender.

Exactly once: a Send may carry the client's own id for the message (`client_id`). The store remembers
(sender, client id) with the message, in the same transaction; a resend of the same message (same
room, same body: its `digest`) under the same id within `limits.resend_window` seconds stores
nothing, fans out nothing, and is answered with the original message's id and time, whether it
comes on the same connection, after a reconnect, after a restart, or to another node of a cluster.
The latest `limits.resend_cache` ids are also kept in memory (each node its own), so a resend is
usually answered without the database; a new message costs nothing more than one more row in its
own write (no read: a resend the memory does not know is found by the store's refusal, Conflict).
An id reused for another message (a client that counts from 1 again) is not a resend: that message
is stored, and the id names it from then on. Encrypted messages are opaque: stored and
forwarded, never read. An edit (author only) or a deletion (author, or the room's leader) changes
the stored message in place, so every dialect's history shows the current text; a deleted message
keeps its id, with a Deleted body.
"""

import hashlib
from collections import OrderedDict
from typing import NamedTuple

import orjson

from .. import errors
from ..errors import ChatError
from ..store import Conflict
from . import authz
from .commands import Conversations, Delete, Edit, GetMessage, History, React, Send
from .events import MessageDeleted, MessageEdited, ReactionChanged
from .handling import handles, now_ms
from .model import Body, Encrypted, Media, Message, Room, Text
from .results import Page, Sent, Summary

MAX_EMOJI_CHARS = 32
ENCRYPTED_FACTOR = 4  # ciphertext and its fields may take this many times max_message_chars
MAX_CLIENT_ID_CHARS = 128  # a longer client id is kept as its SHA-256
MAX_BOUND = 1 << 62  # message ids and times past this are as good as infinity (and fit SQL's 64-bit integers)


class SentId(NamedTuple):
    """What is remembered of a message sent under a client id."""

    message_id: int
    ts: int
    digest: int


def digest(room_id: str, body: Body) -> int:
    """64 bits of BLAKE2b over a message's room and body (what tells a resend from another message), as a signed
    integer (SQL's)."""
    if isinstance(body, Text):
        parts: list = ["text", body.text]
    elif isinstance(body, Encrypted):
        parts = ["encrypted", body.fields]
    elif isinstance(body, Media):
        parts = ["media", body.file, body.media]
    else:
        parts = [body.kind]
    data = orjson.dumps([room_id, *parts], option=orjson.OPT_SORT_KEYS)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def client_key(client_id: str) -> str:
    """The client id as stored: itself, or past MAX_CLIENT_ID_CHARS its SHA-256."""
    if len(client_id) <= MAX_CLIENT_ID_CHARS:
        return client_id
    return "sha256:" + hashlib.sha256(client_id.encode("utf-8", "surrogatepass")).hexdigest()


class Messages:
    def __init__(self, state, store, bus, rooms, fanout, limits, clock):
        self.state, self.store, self.bus, self.rooms, self.fanout = state, store, bus, rooms, fanout
        self.limits, self.clock = limits, clock
        self.sent_ids: OrderedDict[tuple[str, str], SentId] = OrderedDict()  # the latest, by (sender, client key)
        self.resends = 0  # resends answered with the original (metrics)

    def _check_text(self, text: str) -> None:
        limit = self.limits.max_message_chars
        if not text.strip() or len(text) > limit:
            raise ChatError(errors.BAD_CONTENT, f"a message is 1-{limit} characters")

    def _check_body(self, body: Body) -> None:
        if isinstance(body, Text):
            self._check_text(body.text)
        elif isinstance(body, Encrypted):
            limit = self.limits.max_message_chars * ENCRYPTED_FACTOR
            if len(orjson.dumps(body.fields)) > limit:
                raise ChatError(errors.BAD_CONTENT, f"an encrypted message is at most {limit} bytes of JSON")
        elif not isinstance(body, Media):
            raise ChatError(errors.BAD_CONTENT, "nothing to send")

    async def post(self, client, room: Room, body: Body, client_id: str = "") -> Sent:
        """Store a message, then fan it out; the caller acknowledges after this returns. With `client_id`, a resend
        of a message already stored is answered with the original instead (see the module's docstring)."""
        if not client_id:
            return await self._post(client, room, body)
        key, fingerprint = (client.user, client_key(client_id)), digest(room.id, body)
        known = self._recent(self.sent_ids.get(key))
        if known is not None and known.digest == fingerprint:
            return self._resent(client, room, body, known, client_id)
        try:
            return await self._post(client, room, body, client_id, key, fingerprint, replace=known is not None)
        except Conflict:
            row = await self.store.sent_id(*key)
            known = self._recent(SentId(*row) if row is not None else None)
            if known is not None and known.digest == fingerprint:
                self._remember(key, known)
                return self._resent(client, room, body, known, client_id)
            return await self._post(client, room, body, client_id, key, fingerprint, replace=True)

    def _recent(self, known: SentId | None) -> SentId | None:
        """`known` if it is within the resend window."""
        if known is None or known.ts < now_ms(self.clock) - self.limits.resend_window * 1000:
            return None
        return known

    def _remember(self, key: tuple[str, str], known: SentId) -> None:
        sent_ids = self.sent_ids
        sent_ids[key] = known
        sent_ids.move_to_end(key)
        while len(sent_ids) > self.limits.resend_cache:
            sent_ids.popitem(last=False)

    def _resent(self, client, room: Room, body: Body, known: SentId, client_id: str) -> Sent:
        """The answer to a resend: the original message (same room and body), told to nobody again."""
        self.resends += 1
        original = Message(known.message_id, room.id, client.user, body, known.ts)
        return Sent(original, room, frozenset(), self.bus.online, client_id)

    def forget_sent_ids(self):
        """Forget client ids older than the resend window (a periodic job); fires when the store has."""
        before = now_ms(self.clock) - int(self.limits.resend_window * 1000)
        for key in [k for k, known in self.sent_ids.items() if known.ts < before]:
            del self.sent_ids[key]
        return self.store.forget_sent_ids(before)

    async def _post(self, client, room: Room, body: Body, client_id: str = "", key: tuple[str, str] | None = None,
                    fingerprint: int = 0, replace: bool = False) -> Sent:  # fmt: skip
        draft = Message(0, room.id, client.user, body, now_ms(self.clock))
        if key is None:
            message, prev = await self.store.append_message(draft)
        else:
            message, prev = await self.store.append_message(draft, key[1], fingerprint, replace)
            self._remember(key, SentId(message.id, message.ts, fingerprint))
        recipients = self.state.recipients(client.user, room)
        self.fanout.committed(message, prev, client)
        return Sent(message, room, recipients, self.bus.online, client_id)

    async def visible(self, user: str, message_id: int) -> tuple[Message, Room]:
        """A message `user` may see (it is in one of their rooms)."""
        message = await self.store.message(message_id)
        room = self.state.rooms.get(message.room_id) if message else None
        authz.may_see(user, room, message_id)
        assert message is not None and room is not None
        return message, room

    @handles(Send)
    async def send(self, client, cmd: Send) -> Sent | str:
        authz.is_sender(cmd.sender, client.user)
        self._check_body(cmd.body)
        if cmd.dry_run:
            found = self.rooms.resolve(client.user, cmd.to)
            return found if isinstance(found, str) else cmd.to.name if found is None else found.id
        room = await self.rooms.target(client, cmd.to)
        body = cmd.body
        if isinstance(body, Media):
            ref = await self.store.file(body.file)
            authz.may_read_file(client.user, self.state.rooms.get(ref.room_id) if ref else None, body.file)
            authz.may_share_file(ref.room_id, room, body.file)
            body = Media(ref.id, ref.name, ref.mime, ref.size, body.media)
        return await self.post(client, room, body, cmd.client_id)

    @handles(GetMessage)
    async def get(self, client, cmd: GetMessage) -> tuple[Message, Room]:
        return await self.visible(client.user, cmd.message_id)

    @handles(Edit)
    async def edit(self, client, cmd: Edit) -> MessageEdited:
        message, room = await self.visible(client.user, cmd.message_id)
        authz.may_edit(client.user, message)
        self._check_text(cmd.text)
        now = now_ms(self.clock)
        await self.store.edit_message(message.id, cmd.text, now)
        edited = Message(message.id, message.room_id, message.sender, Text(cmd.text), message.ts)
        event = MessageEdited(edited, room, now)
        self.bus.publish(event, self.state.recipients(client.user, room), client)
        return event

    @handles(Delete)
    async def delete(self, client, cmd: Delete) -> MessageDeleted:
        message, room = await self.visible(client.user, cmd.message_id)
        authz.may_delete(client.user, message, room)
        await self.store.delete_message(message.id, client.user, now_ms(self.clock))
        event = MessageDeleted(message, room, client.user)
        self.bus.publish(event, room.members, client)
        return event

    @handles(React)
    async def react(self, client, cmd: React) -> ReactionChanged:
        emoji = cmd.emoji.strip()
        if not 0 < len(emoji) <= MAX_EMOJI_CHARS or not emoji.isprintable():
            raise ChatError(errors.BAD_REACTION, f"a reaction is 1-{MAX_EMOJI_CHARS} printable characters")
        message, room = await self.visible(client.user, cmd.message_id)
        authz.may_react(message)
        if cmd.add:
            changed = await self.store.add_reaction(message.id, client.user, emoji, now_ms(self.clock))
        else:
            changed = await self.store.remove_reaction(message.id, client.user, emoji)
            if not changed:
                raise ChatError(errors.NO_SUCH_REACTION, f"you have no {emoji} reaction on message {message.id}")
        event = ReactionChanged(message, room, client.user, emoji, cmd.add)
        if changed:
            self.bus.publish(event, self.state.recipients(client.user, room), client)
        return event

    def _unblocked(self, user: str, messages: list[Message]) -> list[Message]:
        hidden = self.state.hidden_from(user)
        return [m for m in messages if m.sender not in hidden] if hidden else messages

    @handles(History)
    async def history(self, client, cmd: History) -> Page:
        after, since = cmd.after, cmd.since
        if min(cmd.before, after or 0, since or 0, cmd.upto) < 0:
            raise ChatError(errors.BAD_FIELD, "before, after, since and upto are not negative")
        if cmd.limit < 1:
            raise ChatError(errors.BAD_FIELD, "limit is at least 1")
        before, upto = min(cmd.before, MAX_BOUND), min(cmd.upto, MAX_BOUND)
        after = None if after is None else min(after, MAX_BOUND)
        since = None if since is None else min(since, MAX_BOUND)
        limit = min(cmd.limit, self.limits.history_page)
        if cmd.where is None:
            return await self._timeline(client.user, after or 0, upto or self.state.fanout_upto, limit)
        room = await self.rooms.target(client, cmd.where)
        authz.may_read(client.user, room)
        forward = after is not None or since is not None
        raw = await self.store.messages(room.id, before, after, since, limit + 1)
        more = len(raw) > limit
        if more:
            raw = raw[:limit] if forward else raw[1:]
        messages = self._unblocked(client.user, raw)
        changes = await self.store.message_changes([m.id for m in messages])
        reads = await self.store.read_marks(room.id)
        next_after = raw[-1].id if forward and raw else after or 0
        return Page(room, messages, {room.id: room}, more, next_after, changes=changes, reads=reads)

    async def _timeline(self, user: str, after: int, upto: int, limit: int) -> Page:
        """All the user's conversations, forward from `after`; pages emptied by blocks are skipped."""
        rooms = self.state.rooms
        while True:
            raw = await self.store.timeline(user, after, upto, limit + 1)
            more = len(raw) > limit
            raw = raw[:limit]
            page = [m for m in self._unblocked(user, raw) if m.room_id in rooms]
            if raw:
                after = raw[-1].id
            if page or not more:
                return Page(None, page, {m.room_id: rooms[m.room_id] for m in page}, more, after, upto=upto)

    @handles(Conversations)
    async def conversations(self, client, cmd: Conversations) -> list[Summary]:
        mine = sorted(self.state.rooms_of.get(client.user, set()))
        summaries = await self.store.summaries(client.user, mine)
        rooms = self.state.rooms
        out = [Summary(rooms[r], *summaries[r]) for r in mine if r in rooms and r in summaries]
        return sorted(out, key=lambda s: -(s.last.id if s.last else 0))
