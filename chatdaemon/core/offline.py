"""Offline delivery: one cursor per user, replay at login, held live events.

Offline delivery costs O(1) per message: a message is stored once, and each
user has one cursor, the last message id they were given, written when their
last connection closes (and, for users online, every storage.cursor_interval
seconds, so that a crash loses little). At login, whatever is newer than the cursor in the
user's rooms is replayed, oldest first, page by page, paced to what the
connection can take, while live events wait (`hold`/`release`).
"""

from twisted.internet.defer import Deferred, DeferredList

from .events import (
    FriendAnswered,
    FriendRemoved,
    FriendRequested,
    InviteAnswered,
    Invited,
    MessagePosted,
    MissedSummary,
    PresenceChanged,
)


class Delivery:
    """Attaching and detaching clients, and what they missed (a Core mixin)."""

    async def _attach(self, client, user: str, hashed_key: str) -> None:
        client.user, client.key_hash = user, hashed_key
        if not self.bus.attach(user, client):
            return  # already online elsewhere: nothing was missed
        client.hold()
        upto = self.fanout_upto
        self.bus.publish(PresenceChanged(user=user, online=True, status=self.users[user]), self._audience(user), client)
        cursor = await self.store.cursor(user) or 0
        if client.user != user:
            return  # gone while the cursor was read
        self._marks[user] = max(self._marks.get(user, 0), cursor)
        self._replay(client, user, cursor, upto)

    async def _notify(self, user: str, event, kind: str, payload: dict) -> None:
        """Deliver a notice to `user` now, or keep it (as kind + payload) for their next login."""
        if self.bus.online(user):
            self.bus.publish(event, (user,))
        else:
            await self.store.push_inbox(user, kind, payload, self._now())

    def _from_inbox(self, user: str, kind: str, p: dict):
        """The event a kept notice stands for, or None if it no longer applies."""
        if kind == "friend_request":
            return (
                FriendRequested(sender=p["sender"], receiver=user, offline=True)
                if (p["sender"], user) in self.friend_requests
                else None
            )
        if kind == "friend_answer":
            return FriendAnswered(sender=user, receiver=p["receiver"], accepted=p["accepted"], offline=True)
        if kind == "friend_removed":
            return FriendRemoved(by=p["by"], friend=user, offline=True)
        room = self.rooms.get(p["room"])
        if room is None:
            return None
        if kind == "invite":
            return (
                Invited(room=room, inviter=p["inviter"], invitee=user, offline=True) if user in room.invited else None
            )
        if kind == "invite_answer":
            return InviteAnswered(room=room, inviter=user, invitee=p["invitee"], accepted=p["accepted"], offline=True)
        return None

    def _replay(self, client, user: str, cursor: int, upto: int) -> Deferred:
        async def replay():
            try:
                notices, missed, told = await self.store.inbox(user), 0, 0
                if notices and client.open:
                    for _, kind, payload, _ in notices:
                        event = self._from_inbox(user, kind, payload)
                        if event is not None:
                            client.deliver(event)
                            told += 1
                    await self.store.drop_inbox(user, notices[-1][0])
                after = cursor
                while client.open:
                    page = await self.store.timeline(user, after, upto, self.limits.offline_page, missed_only=True)
                    for m in page:
                        room = self.rooms.get(m.room_id)
                        if room is not None:  # else removed since: nothing to show
                            await client.writable()
                            client.deliver(MessagePosted(message=m, room=room, offline=True))
                            missed += 1
                    if len(page) < self.limits.offline_page:
                        break
                    after = page[-1].id
                if missed or told:
                    client.deliver(MissedSummary(messages=missed, notices=told))
            except Exception:
                self.log.failure("offline replay for {user} failed", user=user)
            finally:
                client.release()

        return Deferred.fromCoroutine(replay())

    def save_cursors(self) -> Deferred:
        """Write down how far each online user surely got (one batch), so that after a crash the
        next login replays only what came after this, not all since their previous disconnect."""
        writes = []
        for user in list(self.bus.online_users()):
            mark = max(client.delivered_upto(self.fanout_upto) for client in self.bus.clients(user))
            if mark > self._marks.get(user, 0):
                self._marks[user] = mark
                writes.append(self.store.set_cursor(user, mark))
        return DeferredList(writes, consumeErrors=True)

    def _detach(self, client) -> None:
        user = client.user
        client.user = None
        self._marks[user] = max(self._marks.get(user, 0), client.delivered_upto(self.fanout_upto))
        if self.bus.detach(user, client):
            self._background(self.store.set_cursor(user, self._marks.pop(user)), f"cursor of {user}")
            self.bus.publish(PresenceChanged(user=user, online=False, status="offline"), self._audience(user))
