"""Read marks: one per user per room (the highest message id read), from which unread counts come.

Marking a message read stores the mark and tells the message's author (unless the author is the
reader, or has blocked the reader).
"""

from .commands import MarkRead
from .events import ReadReceipt
from .handling import handles


class Receipts:
    def __init__(self, state, store, bus, messages):
        self.state, self.store, self.bus, self.messages = state, store, bus, messages

    @handles(MarkRead)
    async def mark_read(self, client, cmd: MarkRead) -> ReadReceipt:
        message, room = await self.messages.visible(client.user, cmd.message_id)
        await self.store.set_read_mark(room.id, client.user, message.id)
        event = ReadReceipt(client.user, message, room)
        author = message.sender
        if author != client.user and not self.state.blocks(author, client.user):
            self.bus.publish(event, (author,))
        return event
