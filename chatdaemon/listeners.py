"""Listening ports from endpoint strings, bound early and opened to clients only when ready.

Ports are bound in privilegedStartService, before the reactor runs, so a bad
endpoint or a port in use stops `twistd` at once with the reason: a CannotBind
naming the listener and the port (tap.py turns it into one line and exit 1).
They accept no connection until `accept()` is called, once the state is loaded.

A description "tls:ENDPOINT" is ENDPOINT with TLS from the [tls] files (see tls.py); "fd:N" is a
listening socket inherited as descriptor N (a worker's, from its parent: see workers.py).
"""

import errno
import os
import socket
from collections import defaultdict
from typing import Any, cast

from twisted.application.service import Service
from twisted.internet import endpoints
from twisted.internet.defer import DeferredList
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IProtocolFactory, ITransport
from twisted.internet.protocol import Protocol
from twisted.internet.tcp import Port
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.protocols.tls import TLSMemoryBIOFactory

from .tls import PREFIX as TLS_PREFIX


class CannotBind(Exception):
    """A listener could not bind its port: the message names the option, the endpoint and why."""


def bind_failure(role: str, description: str, error: CannotListenError) -> CannotBind:
    why = error.socketError
    code = getattr(why, "errno", None)
    if code == errno.EADDRINUSE:
        reason = f"port {error.port} is already in use"
    elif code in (errno.EACCES, errno.EPERM):
        reason = f"not allowed to listen on port {error.port}"
    elif code is not None:
        reason = f"cannot listen on port {error.port}: {os.strerror(code)}"
    else:
        reason = f"cannot listen on port {error.port}: {why}"
    return CannotBind(f"--{role} {description}: {reason}")


def check_endpoint(reactor, description: str) -> None:
    """Raise ValueError if `description` is not a server endpoint string."""
    inner = description.removeprefix(TLS_PREFIX)
    if inner.startswith("fd:"):
        if not inner[3:].isdigit():
            raise ValueError("fd:N takes a descriptor number")
        return
    try:
        endpoints.serverFromString(reactor, description.removeprefix(TLS_PREFIX))
    except KeyError as e:  # systemd:...:name=X without a socket of that name
        raise ValueError(f"no inherited socket named {e}") from None


class AddressCounter:
    """Open connections per peer address, against a limit read at each use (it may be reloaded)."""

    log = Logger()

    def __init__(self, limit):
        self._limit = limit
        self.open: dict[str, int] = defaultdict(int)

    def acquire(self, host) -> bool:
        """Count one more connection from `host`; False (and nothing counted) past the limit."""
        if self.open[host] >= self._limit():
            self.log.info(
                "refused a connection from {peer}: {n} open already",
                event="connection_refused",
                peer=host,
                n=self.open[host],
            )
            return False
        self.open[host] += 1
        return True

    def release(self, host) -> None:
        self.open[host] -= 1
        if not self.open[host]:
            del self.open[host]


class _Counted(ProtocolWrapper):
    host = None


class Refused(Protocol):
    """Says `farewell` and closes: a connection past a limit."""

    transport: ITransport

    def __init__(self, farewell: bytes):
        self._farewell = farewell

    def connectionMade(self) -> None:
        self.transport.write(self._farewell)
        self.transport.loseConnection()


class PerAddressLimit(WrappingFactory):
    """At most `limit()` open connections per peer address; a connection past it is sent
    `farewell` and closed. (twisted.protocols.policies.LimitConnectionsByPeer predates
    address objects: it indexes them as tuples.)"""

    protocol = _Counted
    noisy = False

    def __init__(self, wrapped, addresses: AddressCounter, farewell: bytes, on_refused=lambda: None):
        super().__init__(wrapped)
        self.addresses = addresses
        self._farewell = farewell
        self._on_refused = on_refused

    def buildProtocol(self, addr):
        host = getattr(addr, "host", None)
        if not self.addresses.acquire(host):
            self._on_refused()
            return Refused(self._farewell)
        protocol = cast(_Counted, super().buildProtocol(addr))  # built from self.protocol
        protocol.host = host
        return protocol

    def unregisterProtocol(self, protocol) -> None:
        super().unregisterProtocol(protocol)
        self.addresses.release(protocol.host)


class Listeners(Service):
    log = Logger()

    def __init__(self, reactor, tls=None):
        self._reactor = reactor
        self._tls = tls  # a ReloadableTLS for "tls:" descriptions
        self._wanted: list[tuple[str, str, IProtocolFactory]] = []  # (role, description, factory)
        self.ports: list[tuple[str, Port]] = []  # (role, port: every stream port of the reactor is a tcp.Port)

    def add(self, role: str, description: str, factory) -> None:
        self._wanted.append((role, description, factory))

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        for role, description, factory in self._wanted:
            if description.startswith(TLS_PREFIX):
                factory = TLSMemoryBIOFactory(self._tls, False, factory)
            outcome: list[Any] = []  # the port, or the Failure
            inner = description.removeprefix(TLS_PREFIX)
            if inner.startswith("fd:"):
                fd = int(inner[3:])
                family = socket.socket(fileno=os.dup(fd))
                outcome.append(self._reactor.adoptStreamPort(fd, family.family, factory))
                family.close()
            else:
                endpoints.serverFromString(self._reactor, inner).listen(factory).addBoth(outcome.append)
            if not outcome:
                raise RuntimeError(f"--{role} {description}: the endpoint did not bind at start")
            if not hasattr(outcome[0], "getHost"):
                if outcome[0].check(CannotListenError):
                    raise bind_failure(role, description, outcome[0].value)
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
