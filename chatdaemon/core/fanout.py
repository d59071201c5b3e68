"""Fan-out: every committed message handed to this node's clients once, in id order, and the watermark.

Messages come from two places: this node's own sends, after their commit, each with `prev` (no
message has an id between `prev` and its own); and other nodes, whose wake-ups (`woken`) say
"something newer was committed", after which everything above the watermark is read from the
store, page by page. The store commits ids in order, so when id N is visible every smaller id
that will ever exist is too: a read never skips a message that commits later.

The watermark, ChatState.fanout_upto, moves only over ids that were handed on (or never existed).
A cursor taken from it therefore never skips a message that another node committed late, and an
offline replay up to it, followed by live messages above it, gives each message once. On one node
(SQLite, or a quiet cluster) `prev` is the watermark and a message is handed on at once, with no
read; a read happens only when another node's message lies between.
"""

from twisted.internet.defer import Deferred

from .events import MessagePosted
from .handling import log
from .model import Message

RETRY_SECONDS = 1.0


class Fanout:
    def __init__(self, state, store, bus, clock, page: int = 500):
        self.state, self.store, self.bus, self.clock, self.page = state, store, bus, clock, page
        self._own: dict[int, tuple[Message, object]] = {}  # committed here, waiting for what lies before them
        self._reading = False
        self._again = False
        self._retry = None
        self._started = False  # until the state is loaded, the watermark means nothing
        self.reads = 0  # catch-up reads from the store (metrics, tests)

    def committed(self, message: Message, prev: int, exclude=None) -> None:
        """This node committed `message` (sent by `exclude`'s user): hand it on, in order, and wake the others."""
        if prev <= self.state.fanout_upto and not self._own and not self._reading:
            self._hand_on(message, exclude)
        else:
            self._own[message.id] = (message, exclude)
            self.catch_up()
        self.bus.wake(message.room_id, message.id)

    def woken(self) -> None:
        """Another node committed something (or this node may have missed wake-ups): read what is new."""
        self.catch_up()

    def start(self) -> None:
        """The state is loaded: from now on wake-ups are followed (and what came during the load is read)."""
        self._started = True
        self.catch_up()

    def catch_up(self) -> None:
        if not self._started:
            return
        if self._reading:
            self._again = True
            return
        self._reading = True
        Deferred.fromCoroutine(self._read())

    async def _read(self) -> None:
        state, failed = self.state, False
        try:
            while True:
                self._again = False
                page = await self.store.messages_after(state.fanout_upto, self.page)
                self.reads += 1
                for message in page:
                    own = self._own.pop(message.id, None)
                    self._hand_on(message, own[1] if own else None)
                if len(page) < self.page and not self._again:
                    break
        except Exception as e:
            failed = True
            log.warn("catching up on messages failed ({error}); trying again", error=e)
            if self._retry is None or not self._retry.active():
                self._retry = self.clock.callLater(RETRY_SECONDS, self.catch_up)
        finally:
            self._reading = False
        if self._own and not failed:
            # committed before this read began, yet not read: deleted since (with their room)
            state.fanout_upto = max(state.fanout_upto, *self._own)
            self._own.clear()

    def _hand_on(self, message: Message, exclude) -> None:
        state = self.state
        if message.id > state.fanout_upto:
            state.fanout_upto = message.id
        room = state.rooms.get(message.room_id)
        if room is not None:
            self.bus.deliver(MessagePosted(message, room), state.recipients(message.sender, room), exclude)

    def stop(self) -> None:
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
