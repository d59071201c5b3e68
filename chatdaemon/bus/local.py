"""IBus within one process: a dict of users to their clients."""

from zope.interface import implementer

from . import IBus


@implementer(IBus)
class LocalBus:
    def __init__(self) -> None:
        self._clients: dict[str, set] = {}

    def attach(self, user, client) -> bool:
        mine = self._clients.setdefault(user, set())
        mine.add(client)
        return len(mine) == 1

    def detach(self, user, client) -> bool:
        mine = self._clients.get(user)
        if not mine or client not in mine:
            return False
        mine.discard(client)
        if mine:
            return False
        del self._clients[user]
        return True

    def online(self, user) -> bool:
        return user in self._clients

    def clients(self, user) -> tuple:
        return tuple(self._clients.get(user, ()))

    def online_users(self):
        return self._clients.keys()

    def publish(self, event, users, exclude=None) -> None:
        memo: dict = {}  # the recipients' encodings, one per dialect
        clients = self._clients
        for user in users:
            for client in clients.get(user, ()):
                if client is not exclude:
                    client.deliver(event, memo)
