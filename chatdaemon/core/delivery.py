"""Attaching clients, notices for later, and offline delivery: one cursor per user, replay at login.

Offline delivery costs O(1) per message: a message is stored once, and each user has one cursor,
the last message id they surely got, written when their last connection closes (and, while they
are online, every storage.cursor_interval seconds, so that a crash loses little). At login,
whatever is newer than the cursor in the user's rooms is replayed, oldest first, page by page,
paced to what the connection can take (and begun only once it takes anything: an IRC client
registers first), while live events wait (`hold`/`release`).

Notices (friend requests and answers, invitations and answers, removals) go to a connected
user at once, or into their inbox for the next login.
"""

from twisted.internet.defer import Deferred, DeferredList

from .events import (
    Event,
    FriendAnswered,
    FriendRemoved,
    FriendRequested,
    InviteAnswered,
    Invited,
    MessagePosted,
    MissedSummary,
)
from .handling import background, log, now_ms


class Delivery:
    def __init__(self, state, store, bus, presence, limits, clock):
        self.state, self.store, self.bus, self.presence = state, store, bus, presence
        self.limits, self.clock = limits, clock
        self._marks: dict[str, int] = {}  # user -> best delivered_upto of this online period

    async def attach(self, client, user: str, hashed_key: str | None) -> None:
        """`client` is now `user`'s; the user's first connection on this node gets what the user missed (on a
        node of its own, a second connection already gets every message live)."""
        client.user, client.key_hash = user, hashed_key
        elsewhere = self.bus.online(user)
        if not self.bus.attach(user, client):
            return  # already online here: nothing was missed
        client.hold()
        upto = self.state.fanout_upto
        if not elsewhere:
            self.presence.announce(user, True, exclude=client)
        cursor = await self.store.cursor(user) or 0
        if client.user != user:
            client.release()
            return  # gone while the cursor was read
        self._marks[user] = max(self._marks.get(user, 0), cursor)
        self._replay(client, user, cursor, upto)

    def detach(self, client) -> None:
        user = client.user
        client.user = client.key_hash = None
        self._marks[user] = max(self._marks.get(user, 0), client.delivered_upto(self.state.fanout_upto))
        if self.bus.detach(user, client):
            background(self.store.set_cursor(user, self._marks.pop(user)), f"cursor of {user}")
            if user in self.state.users and not self.bus.online(user):
                self.presence.announce(user, False)

    async def notify(self, user: str, event: Event, kind: str, payload: dict) -> None:
        """Deliver a notice to `user` now, or keep it (as kind + payload) for their next login."""
        if self.bus.online(user):
            self.bus.publish(event, (user,))
        else:
            await self.store.push_inbox(user, kind, payload, now_ms(self.clock))

    def _from_inbox(self, user: str, kind: str, p: dict) -> Event | None:
        """The event a kept notice stands for, or None if it no longer applies."""
        state = self.state
        if kind == "friend_request":
            pending = (p["sender"], user) in state.friend_requests
            return FriendRequested(p["sender"], user, offline=True) if pending else None
        if kind == "friend_answer":
            return FriendAnswered(user, p["receiver"], p["accepted"], offline=True)
        if kind == "friend_removed":
            return FriendRemoved(p["by"], user, offline=True)
        room = state.rooms.get(p["room"])
        if room is None:
            return None
        if kind == "invite":
            return Invited(room, p["inviter"], user, offline=True) if user in room.invited else None
        if kind == "invite_answer":
            return InviteAnswered(room, user, p["invitee"], p["accepted"], offline=True)
        return None

    def _replay(self, client, user: str, cursor: int, upto: int) -> Deferred:
        async def replay() -> None:
            try:
                missed, told = 0, 0
                await client.writable()  # nothing before the client can take it (IRC: once registered)
                notices = await self.store.inbox(user)
                if notices and client.open:
                    for _, kind, payload, _ in notices:
                        event = self._from_inbox(user, kind, payload)
                        if event is not None:
                            client.deliver(event, {})
                            told += 1
                    await self.store.drop_inbox(user, notices[-1][0])
                after, page_size = cursor, self.limits.offline_page
                while client.open:
                    page = await self.store.timeline(user, after, upto, page_size, missed_only=True)
                    for message in page:
                        room = self.state.rooms.get(message.room_id)
                        if room is not None:  # else removed since: nothing to show
                            await client.writable()
                            client.deliver(MessagePosted(message, room, offline=True), {})
                            missed += 1
                    if len(page) < page_size:
                        break
                    after = page[-1].id
                if missed or told:
                    client.deliver(MissedSummary(missed, told), {})
            except Exception:
                log.failure("offline replay for {user} failed", user=user)
            finally:
                client.release()

        return Deferred.fromCoroutine(replay())

    def save_cursors(self) -> Deferred:
        """Write down how far each online user surely got (one batch), so that after a crash the next
        login replays only what came after this, not all since their previous disconnect."""
        writes = []
        fanout = self.state.fanout_upto
        for user in list(self.bus.local_users()):
            mark = max(client.delivered_upto(fanout) for client in self.bus.clients(user))
            if mark > self._marks.get(user, 0):
                self._marks[user] = mark
                writes.append(self.store.set_cursor(user, mark))
        return DeferredList(writes, consumeErrors=True)
