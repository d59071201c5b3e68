"""Typed frames for messages (text, group, encrypted), typing, read receipts and history sync."""

from collections.abc import Callable
from typing import Any

from ... import errors
from ...core import commands as c
from ...core.model import Address, Encrypted, Text
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


def _address(p: dict) -> Address:
    """A message's address: `room` or `groupId`/`group` name a room; else `receiver`, a user or a room."""
    room = optional_text(p, "room") or optional_text(p, "groupId", "group")
    return Address.room(room) if room else Address(text(p, "receiver"))


class MessageFrames:
    # state and replies of TypedDialect, which combines these frames
    user: str
    _sync: dict[str, Any] | None
    _errors: Callable[[ChatError], list[bytes]]

    def _post(self, p: dict, to: Address, body) -> Request:
        """A message: MESSAGE_ACK after it is stored, MESSAGE_NACK if refused."""
        client_id = p.get("clientMessageId")
        valid_id = isinstance(client_id, (str, int)) and not isinstance(client_id, bool)
        echo = {"clientMessageId": client_id} if valid_id else {}
        receiver = to.name
        command = c.Send(to, body, sender=optional_text(p, "sender"), client_id=str(client_id) if valid_id else "")

        def acked(sent):
            payload = {
                "messageId": sent.message.id,
                "receiver": receiver,
                "timestamp": sent.message.ts // 1000,
                "code": 0,
            }
            return [envelope("MESSAGE_ACK", payload | echo)]

        def nacked(e: ChatError):
            return [envelope("MESSAGE_NACK", {"receiver": receiver, "code": e.code, "message": e.message} | echo)]

        return Request(command, acked, nacked)

    def _on_TEXT_MESSAGE(self, p: dict) -> Request:
        return self._post(p, _address(p), Text(text(p, "content")))

    def _on_GROUP_MESSAGE(self, p: dict) -> Request:
        group = optional_text(p, "groupId") or text(p, "group")
        return self._post(p, Address.room(group), Text(text(p, "content")))

    def _on_ENCRYPTED_MESSAGE(self, p: dict) -> Request:
        if not text(p, "ciphertext"):
            raise ChatError(errors.BAD_FIELD, "payload.ciphertext must not be empty")
        opaque = {k: v for k, v in p.items() if k not in RESERVED}
        return self._post(p, _address(p), Encrypted(opaque))

    def _on_USER_TYPING(self, p: dict) -> Request:
        typing = p.get("typing", True)
        if not isinstance(typing, bool):
            raise ChatError(errors.BAD_FIELD, "payload.typing must be true or false")
        return Request(c.SetTyping(_address(p), typing), lambda _: [], self._errors)

    def _on_READ_RECEIPT(self, p: dict) -> Request:
        return Request(c.MarkRead(integer(p, "messageId")), lambda _: [], self._errors)

    # -- history sync: REQUEST -> RESPONSE + BEGIN; each client ack brings the next DATA; then COMPLETE

    def _history_data(self, page) -> list[bytes]:
        assert self._sync is not None, "a history transfer is in progress"
        self._sync["chunk"] += 1
        self._sync["more"] = page.more
        messages = [message_fields(m, page.rooms[m.room_id]) for m in page.messages]
        return [
            envelope(
                "MESSAGE_HISTORY_DATA", {"username": self.user, "chunk": self._sync["chunk"], "messages": messages}
            )
        ]

    def _on_MESSAGE_HISTORY_REQUEST(self, p: dict) -> Request:
        def started(page):
            if not page.messages:
                return failed(ChatError(errors.NO_HISTORY))
            self._sync = {"upto": page.upto, "after": page.next_after, "chunk": 0, "page": page, "stage": "begin"}
            return [
                envelope("MESSAGE_HISTORY_RESPONSE", {"username": self.user, "code": 0}),
                envelope("MESSAGE_HISTORY_BEGIN", {"username": self.user, "code": 0}),
            ]

        def failed(e: ChatError):
            return [envelope("MESSAGE_HISTORY_RESPONSE", {"username": self.user, "code": e.code, "message": e.message})]

        return Request(c.History(limit=HISTORY_CHUNK), started, failed)

    def _expect_sync(self, stage: str) -> dict:
        if self._sync is None or self._sync["stage"] != stage:
            raise ChatError(errors.BAD_FRAME, "no history transfer is waiting for that acknowledgement")
        return self._sync

    def _on_MESSAGE_HISTORY_BEGIN(self, p: dict) -> Request:
        sync = self._expect_sync("begin")
        sync["stage"] = "data"
        page, sync["page"] = sync["page"], None
        return Request(None, lambda _: self._history_data(page), self._errors)

    def _history_done(self) -> list[bytes]:
        assert self._sync is not None, "a history transfer is in progress"
        self._sync["stage"] = "complete"
        return [envelope("MESSAGE_HISTORY_COMPLETE", {"username": self.user, "code": 0})]

    def _on_MESSAGE_HISTORY_DATA(self, p: dict) -> Request:
        sync = self._expect_sync("data")
        if not sync["more"]:
            return Request(None, lambda _: self._history_done(), self._errors)

        def next_page(page):
            sync["after"] = page.next_after
            return self._history_data(page) if page.messages else self._history_done()

        return Request(c.History(after=sync["after"], upto=sync["upto"], limit=HISTORY_CHUNK), next_page, self._errors)

    def _on_MESSAGE_HISTORY_COMPLETE(self, p: dict) -> Request:
        self._expect_sync("complete")
        self._sync = None
        return Request(None, lambda _: [], self._errors)
