"""Typed frames for messages (text, group, encrypted), typing, read receipts and history sync."""

import orjson

from ... import errors
from ...core import commands as c
from ...errors import ChatError
from .. import Request
from .encode import message_fields
from .frames import envelope, integer, optional_text, text

# What a client may not set in an encrypted message's opaque part: routing, and what the server says.
RESERVED = {
    "type",
    "sender",
    "receiver",
    "room",
    "group",
    "groupId",
    "clientMessageId",
    "messageId",
    "timestamp",
    "offline",
    "content",
}
HISTORY_CHUNK = 100


class MessageFrames:
    def _post(self, p: dict, command_for, receiver: str) -> Request:
        """A message to `receiver`: MESSAGE_ACK after it is stored, MESSAGE_NACK if refused."""
        client_id = p.get("clientMessageId")
        echo = (
            {"clientMessageId": client_id}
            if isinstance(client_id, (str, int)) and not isinstance(client_id, bool)
            else {}
        )

        def acked(result):
            message, _ = result
            payload = {"messageId": message.id, "receiver": receiver, "timestamp": message.ts // 1000, "code": 0}
            return [envelope("MESSAGE_ACK", payload | echo)]

        def nacked(e: ChatError):
            return [envelope("MESSAGE_NACK", {"receiver": receiver, "code": e.code, "message": e.message} | echo)]

        return Request(command_for(receiver), acked, nacked)

    def _on_TEXT_MESSAGE(self, p: dict) -> Request:
        content, sender = text(p, "content"), optional_text(p, "sender")
        room = optional_text(p, "room") or optional_text(p, "groupId", "group")
        return self._post(
            p, lambda to: c.SendMessage(content, to_room=room, to=to, sender=sender), room or text(p, "receiver")
        )

    def _on_GROUP_MESSAGE(self, p: dict) -> Request:
        content, sender = text(p, "content"), optional_text(p, "sender")
        group = optional_text(p, "groupId") or text(p, "group")
        return self._post(p, lambda to: c.SendMessage(content, to_room=to, sender=sender), group)

    def _on_ENCRYPTED_MESSAGE(self, p: dict) -> Request:
        if not text(p, "ciphertext"):
            raise ChatError(errors.BAD_FIELD, "payload.ciphertext must not be empty")
        opaque = orjson.dumps({k: v for k, v in p.items() if k not in RESERVED}).decode()
        room, sender = optional_text(p, "room") or optional_text(p, "groupId", "group"), optional_text(p, "sender")
        to = room or text(p, "receiver")
        return self._post(p, lambda to: c.SendMessage(opaque, to_room=room, to=to, sender=sender, kind="encrypted"), to)

    def _on_USER_TYPING(self, p: dict) -> Request:
        typing = p.get("typing", True)
        if not isinstance(typing, bool):
            raise ChatError(errors.BAD_FIELD, "payload.typing must be true or false")
        to = optional_text(p, "room") or optional_text(p, "groupId", "group") or text(p, "receiver")
        return Request(c.SetTyping(to, typing), lambda _: [], self._errors)

    def _on_READ_RECEIPT(self, p: dict) -> Request:
        return Request(c.MarkRead(integer(p, "messageId")), lambda _: [], self._errors)

    # -- history sync: REQUEST -> RESPONSE + BEGIN; each client ack brings the next DATA; then COMPLETE

    def _history_data(self, page) -> list[bytes]:
        self._sync["chunk"] += 1
        messages = [message_fields(m, room) for m, room in page]
        return [
            envelope(
                "MESSAGE_HISTORY_DATA", {"username": self.user, "chunk": self._sync["chunk"], "messages": messages}
            )
        ]

    def _on_MESSAGE_HISTORY_REQUEST(self, p: dict) -> Request:
        def started(result):
            upto, after, page = result
            self._sync = {"upto": upto, "after": after, "chunk": 0, "page": page, "stage": "begin"}
            return [
                envelope("MESSAGE_HISTORY_RESPONSE", {"username": self.user, "code": 0}),
                envelope("MESSAGE_HISTORY_BEGIN", {"username": self.user, "code": 0}),
            ]

        def failed(e: ChatError):
            return [envelope("MESSAGE_HISTORY_RESPONSE", {"username": self.user, "code": e.code, "message": e.message})]

        return Request(c.HistorySync(limit=HISTORY_CHUNK), started, failed)

    def _expect_sync(self, stage: str) -> dict:
        if self._sync is None or self._sync["stage"] != stage:
            raise ChatError(errors.BAD_FRAME, "no history transfer is waiting for that acknowledgement")
        return self._sync

    def _on_MESSAGE_HISTORY_BEGIN(self, p: dict) -> Request:
        sync = self._expect_sync("begin")
        sync["stage"] = "data"
        page, sync["page"] = sync["page"], None
        return Request(None, lambda _: self._history_data(page) if page else self._history_done(), self._errors)

    def _history_done(self) -> list[bytes]:
        self._sync["stage"] = "complete"
        return [envelope("MESSAGE_HISTORY_COMPLETE", {"username": self.user, "code": 0})]

    def _on_MESSAGE_HISTORY_DATA(self, p: dict) -> Request:
        sync = self._expect_sync("data")

        def next_page(result):
            _, sync["after"], page = result
            return self._history_data(page) if page else self._history_done()

        return Request(c.HistorySync(sync["after"], sync["upto"], HISTORY_CHUNK), next_page, self._errors)

    def _on_MESSAGE_HISTORY_COMPLETE(self, p: dict) -> Request:
        self._expect_sync("complete")
        self._sync = None
        return Request(None, lambda _: [], self._errors)
