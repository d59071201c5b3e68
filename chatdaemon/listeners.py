"""Listening ports from endpoint strings, bound early and opened to clients only when ready.

Ports are bound in privilegedStartService, before the reactor runs, so a bad
endpoint or a port in use stops `twistd` at once with the reason. They accept
no connection until `accept()` is called, once the state is loaded.
"""

from twisted.application.service import Service
from twisted.internet import endpoints
from twisted.internet.defer import DeferredList
from twisted.logger import Logger


def check_endpoint(reactor, description: str) -> None:
    """Raise ValueError if `description` is not a server endpoint string."""
    endpoints.serverFromString(reactor, description)


class Listeners(Service):
    log = Logger()

    def __init__(self, reactor):
        self._reactor = reactor
        self._wanted: list[tuple[str, str, object]] = []  # (role, description, factory)
        self.ports: list[tuple[str, object]] = []  # (role, IListeningPort)

    def add(self, role: str, description: str, factory) -> None:
        self._wanted.append((role, description, factory))

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        for role, description, factory in self._wanted:
            outcome = []
            d = endpoints.serverFromString(self._reactor, description).listen(factory)
            d.addBoth(outcome.append)
            if not outcome:
                raise RuntimeError(f"--{role} {description}: the endpoint did not bind at start")
            if not hasattr(outcome[0], "getHost"):
                outcome[0].raiseException()
            port = outcome[0]
            port.stopReading()
            self.ports.append((role, port))
            host = port.getHost()
            self.log.info("{role} listening on {host}:{port}", role=role, host=host.host, port=host.port)

    def accept(self) -> None:
        """Start accepting connections on every port."""
        for _, port in self.ports:
            port.startReading()

    def address(self, role: str, index: int = 0):
        """The bound address of the index-th port of a role (handy with port 0)."""
        return [p for r, p in self.ports if r == role][index].getHost()

    def stopService(self):
        super().stopService()
        ports, self.ports = self.ports, []
        return DeferredList([port.stopListening() for _, port in ports])
