"""Friends, friend requests and blocks.

A block is one-way and silent: the blocked user is never told. Whatever they send no longer
reaches the blocker (messages, live or offline; friend requests; group invitations; typing;
presence), while their own requests are answered as if it had.
"""

from .. import errors
from ..errors import ChatError
from .commands import AnswerFriend, Block, ListFriends, RemoveFriend, RequestFriend, Unblock
from .events import FriendAnswered, FriendRemoved, FriendRequested
from .handling import handles, now_ms


class Friends:
    def __init__(self, state, store, bus, delivery, clock):
        self.state, self.store, self.bus, self.delivery, self.clock = state, store, bus, delivery, clock

    def _other(self, client, name: str, code: int = errors.NO_SUCH_USER) -> str:
        other = self.state.user(name, code)
        if other == client.user:
            raise ChatError(errors.SELF_MESSAGE, "that is you")
        return other

    @handles(RequestFriend)
    async def request(self, client, cmd: RequestFriend) -> tuple[str, str]:
        state = self.state
        sender, receiver = client.user, self._other(client, cmd.user, errors.FRIEND_USER_NOT_FOUND)
        if receiver in state.friends.get(sender, ()):
            raise ChatError(errors.ALREADY_FRIENDS, f"{receiver} is already your friend")
        if state.blocks(receiver, sender):
            return sender, receiver  # silently: the blocker never hears of it
        if (receiver, sender) in state.friend_requests:  # they asked first: this is a yes
            await self.answer(client, AnswerFriend(receiver, True))
            return sender, receiver
        state.set_request(sender, receiver, True)
        await self.store.add_friend_request(sender, receiver, now_ms(self.clock))
        await self.delivery.notify(receiver, FriendRequested(sender, receiver), "friend_request", {"sender": sender})
        return sender, receiver

    @handles(AnswerFriend)
    async def answer(self, client, cmd: AnswerFriend) -> tuple[str, str]:
        state = self.state
        requester, receiver = cmd.requester, client.user
        if (requester, receiver) not in state.friend_requests:
            raise ChatError(errors.NO_FRIEND_REQUEST, f"no friend request from {requester}")
        state.set_request(requester, receiver, False)
        await self.store.remove_friend_request(requester, receiver)
        if cmd.accept:
            state.set_friends(requester, receiver, True)
            await self.store.add_friends(requester, receiver, now_ms(self.clock))
        event = FriendAnswered(requester, receiver, cmd.accept)
        await self.delivery.notify(requester, event, "friend_answer", {"receiver": receiver, "accepted": cmd.accept})
        return requester, receiver

    @handles(RemoveFriend)
    async def remove(self, client, cmd: RemoveFriend) -> tuple[str, str]:
        state = self.state
        user, friend = client.user, cmd.friend
        if friend not in state.friends.get(user, ()):
            raise ChatError(errors.NOT_FRIENDS, f"{friend} is not your friend")
        state.set_friends(user, friend, False)
        await self.store.remove_friends(user, friend)
        if not state.blocks(friend, user):
            await self.delivery.notify(friend, FriendRemoved(user, friend), "friend_removed", {"by": user})
        return user, friend

    @handles(ListFriends)
    async def list(self, client, cmd: ListFriends) -> list[tuple[str, bool]]:
        return [(f, self.bus.online(f)) for f in sorted(self.state.friends.get(client.user, ()))]

    @handles(Block)
    async def block(self, client, cmd: Block) -> str:
        state = self.state
        blocked = self._other(client, cmd.user)
        state.set_block(client.user, blocked, True)
        await self.store.block(client.user, blocked, now_ms(self.clock))
        if (blocked, client.user) in state.friend_requests:
            state.set_request(blocked, client.user, False)
            await self.store.remove_friend_request(blocked, client.user)
        return blocked

    @handles(Unblock)
    async def unblock(self, client, cmd: Unblock) -> str:
        state = self.state
        blocked = self._other(client, cmd.user)
        if not state.blocks(client.user, blocked):
            raise ChatError(errors.NOT_BLOCKED, f"{blocked} is not blocked")
        state.set_block(client.user, blocked, False)
        await self.store.unblock(client.user, blocked)
        return blocked
