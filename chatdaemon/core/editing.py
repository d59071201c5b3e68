"""Edits, deletions, reactions, read state, expiring typing, conversation lists and paging, rooms with an owner,
and media posted whole (a Core mixin, with its own commands and events; seeds 003 and 004 need them).

- An edit (author only) or a deletion (author, or the room's leader) changes the stored message in place, so
  every dialect's history shows the current text; a deleted message keeps its id with kind "deleted".
- Reactions are (message, user, emoji) rows; read state is one mark per user per room (the highest id read),
  from which unread counts come.
- Typing expires by itself: a "typing" not renewed within TYPING_SECONDS is followed by a "stopped" for it.
"""

from dataclasses import dataclass

from .. import errors
from ..errors import ChatError
from . import authz
from . import commands as c
from .commands import Command, handles
from .events import Event, GroupRemoved, ReadReceipt, Typing
from .media import display_name
from .model import GROUP, PUBLIC, ROOM_NAME, FileRef, Message, Room

TYPING_SECONDS = 6.0
MAX_EMOJI_CHARS = 32


# -- commands


@dataclass(frozen=True)
class EditMessage(Command):
    message_id: int
    text: str


@dataclass(frozen=True)
class DeleteMessage(Command):
    message_id: int


@dataclass(frozen=True)
class React(Command):
    message_id: int
    emoji: str
    add: bool = True


@dataclass(frozen=True)
class ReadUpTo(Command):
    """Everything up to this message, in its room, is read by the caller."""

    message_id: int


@dataclass(frozen=True)
class TypingIn(Command):
    """Typing (or stopped) in a room, group or direct conversation; a start expires by itself."""

    pipelined = True
    to: str
    typing: bool = True


@dataclass(frozen=True)
class SendTracked(Command):
    """A text to a room or user, answered with who got it live (for "delivered")."""

    pipelined = True
    text: str
    to: str


@dataclass(frozen=True)
class Conversations(Command):
    """The caller's rooms with their last message and unread count."""


@dataclass(frozen=True)
class MessagesPage(Command):
    room: str
    before: int = 0
    after: int = 0
    limit: int = 50


@dataclass(frozen=True)
class Follow(Command):
    """Join a room if needed (a public one is made on first use), and check it may be read."""

    room: str


@dataclass(frozen=True)
class CreateRoom(Command):
    """A public room led by its creator (who may delete it)."""

    name: str


@dataclass(frozen=True)
class DeleteRoom(Command):
    room: str


@dataclass(frozen=True)
class AllRooms(Command):
    """Every public room and the caller's groups, with member counts."""


@dataclass(frozen=True)
class RoomInfo(Command):
    """A room's members (with presence) and its latest messages."""

    room: str
    limit: int = 50


@dataclass(frozen=True)
class FileInfo(Command):
    """A stored file the caller may read (a member of its room)."""

    pipelined = True
    file_id: str


@dataclass(frozen=True)
class PostMedia(Command):
    """Media posted whole: `data` (inline, already decoded) or `file_id` (a stored file the caller may read)."""

    to: str
    kind: str  # image, audio, gif
    name: str = ""
    mime: str = ""
    data: bytes = b""
    file_id: str = ""


# -- events


@dataclass(frozen=True)
class MessageEdited(Event):
    message: Message = None  # with its new body
    room: Room = None
    edited: int = 0


@dataclass(frozen=True)
class MessageDeleted(Event):
    message: Message = None  # as it was
    room: Room = None
    by: str = ""


@dataclass(frozen=True)
class ReactionChanged(Event):
    message: Message = None
    room: Room = None
    user: str = ""
    emoji: str = ""
    added: bool = True


@dataclass(frozen=True)
class RoomAdded(Event):
    """A public room was made (told to everyone online, for their room lists)."""

    room: Room = None
    by: str = ""


# -- results


@dataclass(frozen=True)
class Summary:
    room: Room
    last: Message | None
    unread: int


@dataclass(frozen=True)
class Page:
    room: Room
    messages: list
    changes: dict  # id -> {"edited", "deleted", "reactions"}
    reads: dict  # user -> the last message id they read in this room


@dataclass(frozen=True)
class Sent:
    message: Message
    room: Room
    delivered: tuple  # members who had a connection open when it was sent


class Editing:
    def _mutable_message(self, message: Message) -> None:
        if message.kind == "deleted":
            raise ChatError(errors.MESSAGE_DELETED, f"message {message.id} was deleted")

    @handles(EditMessage)
    async def _edit_message(self, client, cmd: EditMessage) -> MessageEdited:
        message, room = await self._visible_message(client, cmd.message_id)
        self._mutable_message(message)
        if message.sender != client.user:
            raise ChatError(errors.NOT_AUTHOR, "only the author may edit a message")
        if message.kind != "text":
            raise ChatError(errors.NOT_EDITABLE, f"a {message.kind} message cannot be edited")
        if not cmd.text.strip() or len(cmd.text) > self.limits.max_message_chars:
            raise ChatError(errors.BAD_CONTENT, f"a message is 1-{self.limits.max_message_chars} characters")
        now = self._now()
        await self.store.edit_message(message.id, cmd.text, now)
        event = MessageEdited(
            message=Message(message.id, message.room_id, message.sender, cmd.text, message.ts, message.kind),
            room=room,
            edited=now,
        )
        self.bus.publish(event, self._recipients(client.user, room), client)
        return event

    @handles(DeleteMessage)
    async def _delete_message(self, client, cmd: DeleteMessage) -> MessageDeleted:
        message, room = await self._visible_message(client, cmd.message_id)
        self._mutable_message(message)
        if message.sender != client.user and room.leader != client.user:
            raise ChatError(errors.NOT_AUTHOR, "only the author or the room's leader may delete a message")
        await self.store.delete_message(message.id, client.user, self._now())
        event = MessageDeleted(message=message, room=room, by=client.user)
        self.bus.publish(event, room.members, client)
        return event

    @handles(React)
    async def _react(self, client, cmd: React) -> ReactionChanged:
        emoji = cmd.emoji.strip()
        if not 0 < len(emoji) <= MAX_EMOJI_CHARS or not emoji.isprintable():
            raise ChatError(errors.BAD_REACTION, f"a reaction is 1-{MAX_EMOJI_CHARS} printable characters")
        message, room = await self._visible_message(client, cmd.message_id)
        self._mutable_message(message)
        if cmd.add:
            changed = await self.store.add_reaction(message.id, client.user, emoji, self._now())
        else:
            changed = await self.store.remove_reaction(message.id, client.user, emoji)
            if not changed:
                raise ChatError(errors.NO_SUCH_REACTION, f"you have no {emoji} reaction on message {message.id}")
        event = ReactionChanged(message=message, room=room, user=client.user, emoji=emoji, added=cmd.add)
        if changed:
            self.bus.publish(event, self._recipients(client.user, room), client)
        return event

    @handles(ReadUpTo)
    async def _read_up_to(self, client, cmd: ReadUpTo) -> ReadReceipt:
        message, room = await self._visible_message(client, cmd.message_id)
        await self.store.set_read_mark(room.id, client.user, message.id)
        event = ReadReceipt(reader=client.user, message=message, room=room)
        if message.sender != client.user and not self._blocks(message.sender, client.user):
            self.bus.publish(event, (message.sender,))
        return event

    def _typing_timers(self) -> dict:
        return self.__dict__.setdefault("_typing", {})

    @handles(TypingIn)
    async def _typing_in(self, client, cmd: TypingIn) -> Typing:
        room = self._target(client, cmd.to)
        timers, key = self._typing_timers(), (client.user, room.id)
        timer = timers.pop(key, None)
        if timer is not None and timer.active():
            timer.cancel()
        event = Typing(user=client.user, room=room, typing=cmd.typing)
        if cmd.typing:
            timers[key] = self.clock.callLater(TYPING_SECONDS, self._typing_expired, client.user, room)
        if cmd.typing or timer is not None:  # a stop after an expiry was already told
            self.bus.publish(event, self._recipients(client.user, room) - {client.user})
        return event

    def _typing_expired(self, user: str, room: Room) -> None:
        self._typing_timers().pop((user, room.id), None)
        self.bus.publish(Typing(user=user, room=room, typing=False), self._recipients(user, room) - {user})

    def stop_typing_timers(self) -> None:
        """At shutdown: cancel every pending typing expiry."""
        for timer in self._typing_timers().values():
            if timer.active():
                timer.cancel()
        self._typing_timers().clear()

    @handles(SendTracked)
    async def _send_tracked(self, client, cmd: SendTracked) -> Sent:
        message, room = await self._send(client, c.SendMessage(cmd.text, to=cmd.to))
        delivered = tuple(
            sorted(u for u in self._recipients(client.user, room) if u != client.user and self.bus.online(u))
        )
        return Sent(message, room, delivered)

    @handles(Conversations)
    async def _conversations(self, client, cmd: Conversations) -> list[Summary]:
        mine = sorted(self.rooms_of.get(client.user, set()))
        summaries = await self.store.summaries(client.user, mine)
        out = [Summary(self.rooms[r], *summaries[r]) for r in mine if r in self.rooms and r in summaries]
        return sorted(out, key=lambda s: -(s.last.id if s.last else 0))

    @handles(MessagesPage)
    async def _messages_page(self, client, cmd: MessagesPage) -> Page:
        room = self._group(client.user, cmd.room)
        authz.may_read_history(client.user, room)
        if cmd.before < 0 or cmd.after < 0:
            raise ChatError(errors.BAD_FIELD, "before and after are message ids (>= 0)")
        limit = max(1, min(cmd.limit, self.limits.history_page))
        messages = self._unblocked(client.user, await self.store.page(room.id, cmd.before, cmd.after, limit))
        changes = await self.store.message_changes([m.id for m in messages])
        return Page(room, messages, changes, await self.store.read_marks(room.id))

    @handles(Follow)
    async def _follow(self, client, cmd: Follow) -> Room:
        room = self.rooms.get(cmd.room)
        if room is None or (room.kind == PUBLIC and client.user not in room.members):
            return await self._join(client, c.JoinRoom(cmd.room))
        if client.user not in room.members and room.kind == GROUP:
            room = self._group(client.user, cmd.room)
        authz.may_read_history(client.user, room)
        return room

    @handles(CreateRoom)
    async def _create_room(self, client, cmd: CreateRoom) -> Room:
        name = cmd.name.strip()
        if not ROOM_NAME.fullmatch(name):
            raise ChatError(errors.BAD_NAME, "room names are 1-64 of A-Z a-z 0-9 _ . -")
        if name in self.rooms or name in self.users:
            raise ChatError(errors.NAME_TAKEN, f"{name} is taken")
        room = self.rooms[name] = Room(name, PUBLIC, name, client.user)
        await self.store.create_room(room, self._now())
        await self._add_member(room, client.user)
        self.bus.publish(RoomAdded(room=room, by=client.user), list(self.bus.online_users()), client)
        return room

    @handles(DeleteRoom)
    async def _delete_public_or_group(self, client, cmd: DeleteRoom) -> Room:
        room = self._group(client.user, cmd.room)
        if room.kind not in (PUBLIC, GROUP) or room.leader != client.user:
            raise ChatError(errors.NOT_LEADER, f"only the creator of {room.name} may delete it")
        self.bus.publish(GroupRemoved(room=room, by=client.user), room.members, client)
        await self._delete_room(room)
        return room

    @handles(AllRooms)
    async def _all_rooms(self, client, cmd: AllRooms) -> list[Room]:
        mine = self.rooms_of.get(client.user, set())
        return sorted(
            (r for r in self.rooms.values() if r.kind == PUBLIC or (r.kind == GROUP and r.id in mine)),
            key=lambda r: r.id,
        )

    @handles(RoomInfo)
    async def _room_info(self, client, cmd: RoomInfo) -> tuple:
        room = self._group(client.user, cmd.room)
        authz.may_read_history(client.user, room)
        page = await self._messages_page(client, MessagesPage(room.id, limit=cmd.limit))
        members = [(u, self.bus.online(u)) for u in sorted(room.members)]
        return room, members, page

    @handles(PostMedia)
    async def _post_media(self, client, cmd: PostMedia) -> Message:
        room = self._target(client, cmd.to)
        if cmd.file_id:
            ref = await self._readable_file(client, cmd.file_id)
            if ref.room_id != room.id:
                raise ChatError(errors.NO_SUCH_MEDIA, f"file {cmd.file_id!r} belongs to another conversation")
        else:
            size = len(cmd.data)
            if not size:
                raise ChatError(errors.BAD_CONTENT, "no media data")
            if size > self.file_limits.inline_max_bytes:
                raise ChatError(
                    errors.TOO_LARGE,
                    f"inline media is at most {self.file_limits.inline_max_bytes} bytes; upload it and send its fileId",
                )
            self._check_quota(client.user, size)
            upload_id = self.file_store.new_id()
            self.file_store.begin(upload_id)
            self.file_store.put_chunk(upload_id, 1, cmd.data)
            name, mime = display_name(cmd.name or cmd.kind), cmd.mime[:127] or "application/octet-stream"
            ref = await self._keep_file(client.user, room, upload_id, 1, name, mime)
        return await self._post_file(client, room, ref, media=cmd.kind)

    @handles(FileInfo)
    async def _file_info(self, client, cmd: FileInfo) -> FileRef:
        return await self._readable_file(client, cmd.file_id)
