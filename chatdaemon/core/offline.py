"""Offline delivery: one cursor per user, replay at login, held live events.

Offline delivery costs O(1) per message: a message is stored once, and each
user has one cursor, the last message id they were given, written when their
last connection closes. At login, whatever is newer than the cursor in the
user's rooms is replayed, oldest first, page by page, paced to what the
connection can take, while live events wait (`hold`/`release`).
"""

from twisted.internet.defer import Deferred

from .events import Invited, MessagePosted, PresenceChanged


class Delivery:
    """Attaching and detaching clients, and what they missed (a Core mixin)."""

    async def _attach(self, client, user: str, hashed_key: str) -> None:
        client.user, client.key_hash = user, hashed_key
        if not self.bus.attach(user, client):
            return  # already online elsewhere: nothing was missed
        client.hold()
        upto = self.fanout_upto
        self.bus.publish(PresenceChanged(user=user, online=True, status=self.users[user]), self._co_members(user), client)
        cursor = await self.store.cursor(user) or 0
        if client.user != user:
            return  # gone while the cursor was read
        self._marks[user] = max(self._marks.get(user, 0), cursor)
        self._replay(client, user, cursor, upto)

    def _replay(self, client, user: str, cursor: int, upto: int) -> Deferred:
        async def replay():
            try:
                notices = await self.store.inbox(user)
                if notices and client.open:
                    for _, kind, payload, _ in notices:
                        room = self.rooms.get(payload["room"])
                        if kind == "invite" and room is not None and user in room.invited:
                            client.deliver(Invited(room=room, inviter=payload["inviter"], invitee=user, offline=True))
                    await self.store.drop_inbox(user, notices[-1][0])
                after = cursor
                while client.open:
                    page = await self.store.missed(user, after, upto, self.limits.offline_page)
                    for m in page:
                        await client.writable()
                        client.deliver(MessagePosted(message=m, room=self.rooms[m.room_id], offline=True))
                    if len(page) < self.limits.offline_page:
                        break
                    after = page[-1].id
            except Exception:
                self.log.failure("offline replay for {user} failed", user=user)
            finally:
                client.release()

        return Deferred.fromCoroutine(replay())

    def _detach(self, client) -> None:
        user = client.user
        client.user = None
        self._marks[user] = max(self._marks.get(user, 0), client.delivered_upto(self.fanout_upto))
        if self.bus.detach(user, client):
            self._background(self.store.set_cursor(user, self._marks.pop(user)), f"cursor of {user}")
            self.bus.publish(PresenceChanged(user=user, online=False, status="offline"), self._co_members(user))
