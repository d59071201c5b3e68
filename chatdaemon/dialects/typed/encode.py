"""Core events as typed frames. Depends on the event alone: the bytes are shared by every typed connection."""

from ...core.events import (
    FriendAnswered,
    FriendRemoved,
    FriendRequested,
    InviteAnswered,
    Invited,
    LeaderChanged,
    MemberJoined,
    MemberLeft,
    MessagePosted,
    MetadataChanged,
    MissedSummary,
    Notice,
    PresenceChanged,
    ReadReceipt,
    RoomRemoved,
    Typing,
)
from ...core.model import DIRECT, GROUP, Encrypted, Media, Message, Room, Text
from ...errors import FRIEND_REJECTED, INVITE_REJECTED, ROOM_DELETED
from .frames import envelope


def where(room: Room, user: str) -> dict:
    """How a frame names a conversation: `receiver` (the peer, in a direct one), plus room/group ids."""
    if room.kind == DIRECT:
        return {"receiver": room.peer_of(user)}
    if room.kind == GROUP:
        return {"receiver": room.name, "group": room.name, "groupId": room.id, "room": room.id}
    return {"receiver": room.id, "room": room.id}


def media_fields(media: Media) -> dict:
    return {"mediaId": media.file, "mediaType": media.mime, "mediaSize": media.size, "fileName": media.name}


def message_fields(m: Message, room: Room) -> dict:
    """A stored message as payload fields (also used in history data)."""
    fields = {"sender": m.sender, **where(room, m.sender), "messageId": m.id, "timestamp": m.ts // 1000}
    match m.body:
        case Media() as media:
            return fields | media_fields(media)
        case Encrypted(opaque):
            return opaque | fields  # the client's opaque fields never override the server's
        case Text(text):
            return fields | {"content": text}
    return fields | {"content": "", "deleted": True}


def _message(event: MessagePosted) -> bytes:
    m, room = event.message, event.room
    payload = message_fields(m, room)
    if m.kind == "media":
        kind = "MEDIA_MESSAGE"
    elif m.kind == "encrypted":
        kind = "ENCRYPTED_MESSAGE"
    elif event.offline:
        return envelope("OFFLINE_MESSAGE", payload)
    else:
        kind = "GROUP_MESSAGE" if room.kind == GROUP else "TEXT_MESSAGE"
    return envelope(kind, _offline(payload, event))


def _offline(payload: dict, event) -> dict:
    """Replayed at login rather than live: say so."""
    return payload | {"offline": True} if event.offline else payload


def _group(room: Room) -> dict:
    return {"group": room.name, "groupId": room.id}


def encode_event(event) -> bytes | None:
    match event:
        case MessagePosted():
            return _message(event)
        case PresenceChanged(friend=False):
            return None  # seed 002: presence goes to friends
        case PresenceChanged(online=False):
            return envelope("USER_LOGOUT", {"username": event.user})
        case PresenceChanged():
            return envelope("USER_STATUS_UPDATE", {"username": event.user, "status": event.status})
        case MemberJoined():
            return envelope("USER_JOIN", {"username": event.user, **where(event.room, event.user)})
        case MemberLeft(room=Room(kind="group")):
            return envelope("GROUP_LEAVE", {"sender": event.user, **_group(event.room)})
        case MemberLeft():
            return envelope("USER_LEAVE", {"username": event.user, "room": event.room.id})
        case Invited():
            payload = {"sender": event.inviter, "receiver": event.invitee, **_group(event.room)}
            return envelope("GROUP_INVITE", _offline(payload, event))
        case InviteAnswered():
            code = 0 if event.accepted else INVITE_REJECTED
            payload = {"sender": event.inviter, "receiver": event.invitee, **_group(event.room), "code": code}
            return envelope("GROUP_INVITE_RESPONSE", _offline(payload, event))
        case RoomRemoved(operator=True):
            text = f"{event.room.id} was deleted by the operators"
            return envelope("SERVER_NOTIFICATION", {"code": ROOM_DELETED, "message": text, "room": event.room.id})
        case RoomRemoved():
            return envelope("GROUP_REMOVE", {"sender": event.by, **_group(event.room)})
        case LeaderChanged():
            return envelope(
                "GROUP_LEADER_CHANGE", {"sender": event.by, **_group(event.room), "newLeader": event.leader}
            )
        case FriendRequested():
            return envelope("FRIEND_REQUEST", _offline({"sender": event.sender, "receiver": event.receiver}, event))
        case FriendAnswered():
            code = 0 if event.accepted else FRIEND_REJECTED
            payload = {"sender": event.sender, "receiver": event.receiver, "code": code}
            return envelope("FRIEND_REQUEST_RESPONSE", _offline(payload, event))
        case FriendRemoved():
            return envelope("FRIEND_REMOVE", _offline({"sender": event.by, "receiver": event.friend}, event))
        case Typing():
            payload = {"username": event.user, **where(event.room, event.user), "typing": event.typing}
            return envelope("USER_TYPING", payload)
        case ReadReceipt():
            payload = {"reader": event.reader, "messageId": event.message.id, **where(event.room, event.reader)}
            return envelope("READ_RECEIPT", payload)
        case MetadataChanged():
            payload = {"username": event.user, "key": event.key, "value": event.value}
            return envelope(
                "METADATA_UPDATE", payload | {"messageId": event.message_id} if event.message_id else payload
            )
        case MissedSummary():
            text = f"while you were away: {event.messages} messages, {event.notices} notices"
            return envelope("SYSTEM_MESSAGE", {"content": text, "messages": event.messages, "notices": event.notices})
        case Notice():
            return envelope("SERVER_NOTIFICATION", {"code": event.code, "message": event.text})
    return None
