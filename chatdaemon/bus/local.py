"""IBus within one process, a node alone: a dict of users to their clients; nothing crosses to other nodes."""

import socket

from zope.interface import implementer

from . import IBus


@implementer(IBus)
class LocalBus:
    def __init__(self, node_id: str = "") -> None:
        self.node_id = node_id or socket.gethostname()
        self._clients: dict[str, set] = {}
        self._stats: dict = {}

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

    def connections(self, user) -> int:
        return len(self._clients.get(user, ()))

    def clients(self, user) -> tuple:
        return tuple(self._clients.get(user, ()))

    def local_users(self):
        return self._clients.keys()

    online_users = local_users

    def deliver(self, event, users, exclude=None) -> None:
        memo: dict = {}  # the recipients' encodings, one per dialect
        clients = self._clients
        for user in users:
            for client in clients.get(user, ()):
                if client is not exclude:
                    client.deliver(event, memo)

    publish = deliver

    def kick(self, user, event) -> int:
        clients = self.clients(user)
        for client in clients:
            client.notify_close(event)
        return len(clients)

    def wake(self, room_id, message_id) -> None:
        pass

    def share(self, change) -> None:
        pass

    def listen(self, listener) -> None:
        pass

    def report(self, stats) -> None:
        self._stats = stats

    def nodes(self) -> dict:
        return {self.node_id: self._stats}
