"""Friends, friend requests and blocks; presence goes to friends only (a Core mixin).

A block is one-way and silent: the blocked user is never told. Whatever they
send no longer reaches the blocker (messages, live or offline; friend
requests; group invitations; typing; presence), while their own requests are
answered as if it had.
"""

from .. import errors
from ..errors import ChatError
from . import commands as c
from .commands import handles
from .events import FriendAnswered, FriendRemoved, FriendRequested


class Friends:
    def _audience(self, user: str) -> set[str]:
        """Who sees `user`'s presence: their friends (minus those who blocked them), and their own other connections."""
        return (self.friends.get(user, set()) - self.blocked_by.get(user, set())) | {user}

    def _blocks(self, user: str, other: str) -> bool:
        """Whether `user` has blocked `other`."""
        return other in self.blocked.get(user, ())

    def _other_user(self, client, name: str, code: int = errors.NO_SUCH_USER) -> str:
        if name not in self.users:
            raise ChatError(code, f"no such user: {name}")
        if name == client.user:
            raise ChatError(errors.SELF_MESSAGE, "that is you")
        return name

    @handles(c.RequestFriend)
    async def _request_friend(self, client, cmd: c.RequestFriend) -> tuple[str, str]:
        sender, receiver = client.user, self._other_user(client, cmd.receiver, errors.FRIEND_USER_NOT_FOUND)
        if receiver in self.friends.get(sender, ()):
            raise ChatError(errors.ALREADY_FRIENDS, f"{receiver} is already your friend")
        if self._blocks(receiver, sender):
            return sender, receiver  # silently: the blocker never hears of it
        if (receiver, sender) in self.friend_requests:  # they asked first: this is a yes
            await self._answer_friend(client, c.AnswerFriend(receiver, True))
            return sender, receiver
        self.friend_requests.add((sender, receiver))
        await self.store.add_friend_request(sender, receiver, self._now())
        await self._notify(
            receiver, FriendRequested(sender=sender, receiver=receiver), "friend_request", {"sender": sender}
        )
        return sender, receiver

    @handles(c.AnswerFriend)
    async def _answer_friend(self, client, cmd: c.AnswerFriend) -> tuple[str, str]:
        requester, receiver = cmd.requester, client.user
        if (requester, receiver) not in self.friend_requests:
            raise ChatError(errors.NO_FRIEND_REQUEST, f"no friend request from {requester}")
        self.friend_requests.discard((requester, receiver))
        await self.store.remove_friend_request(requester, receiver)
        if cmd.accept:
            self.friends.setdefault(requester, set()).add(receiver)
            self.friends.setdefault(receiver, set()).add(requester)
            await self.store.add_friends(requester, receiver, self._now())
        await self._notify(
            requester,
            FriendAnswered(sender=requester, receiver=receiver, accepted=cmd.accept),
            "friend_answer",
            {"receiver": receiver, "accepted": cmd.accept},
        )
        return requester, receiver

    @handles(c.RemoveFriend)
    async def _remove_friend(self, client, cmd: c.RemoveFriend) -> tuple[str, str]:
        user, friend = client.user, cmd.friend
        if friend not in self.friends.get(user, ()):
            raise ChatError(errors.NOT_FRIENDS, f"{friend} is not your friend")
        self.friends[user].discard(friend)
        self.friends.get(friend, set()).discard(user)
        await self.store.remove_friends(user, friend)
        if not self._blocks(friend, user):
            await self._notify(friend, FriendRemoved(by=user, friend=friend), "friend_removed", {"by": user})
        return user, friend

    @handles(c.ListFriends)
    async def _list_friends(self, client, cmd: c.ListFriends) -> list[tuple[str, bool]]:
        return [(f, self.bus.online(f)) for f in sorted(self.friends.get(client.user, ()))]

    @handles(c.Block)
    async def _block(self, client, cmd: c.Block) -> str:
        blocked = self._other_user(client, cmd.user)
        self.blocked.setdefault(client.user, set()).add(blocked)
        self.blocked_by.setdefault(blocked, set()).add(client.user)
        await self.store.block(client.user, blocked, self._now())
        if (blocked, client.user) in self.friend_requests:
            self.friend_requests.discard((blocked, client.user))
            await self.store.remove_friend_request(blocked, client.user)
        return blocked

    @handles(c.Unblock)
    async def _unblock(self, client, cmd: c.Unblock) -> str:
        blocked = self._other_user(client, cmd.user)
        if not self._blocks(client.user, blocked):
            raise ChatError(errors.NOT_BLOCKED, f"{blocked} is not blocked")
        self.blocked[client.user].discard(blocked)
        self.blocked_by.get(blocked, set()).discard(client.user)
        await self.store.unblock(client.user, blocked)
        return blocked
