"""A fixture server for the official protocol test-suites, run by hand (not part of `make test`).

The suites are upstream's code and are not in this repository; fetch them yourself:

    git clone https://github.com/socketio/socket.io-protocol   (and/or engine.io-protocol)
    cd socket.io-protocol/test-suite && npm ci

Then, from the top of this repository, in one terminal:

    .venv/bin/python tests/socketio_conformance.py socket.io     # or: engine.io

and in the other, in the suite's directory: `npx mocha test-suite.js`. Both suites talk to
localhost:3000 and expect pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1000000 and (Socket.IO)
a connect timeout of 1 s, with the handlers their READMEs list. Results so far: engine.io-protocol
f21de7b 24 passing, socket.io-protocol 4f633dd 32 passing (docs/protocols/socketio.md).
"""

import sys

from twisted.internet import defer, reactor
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

from chatdaemon.transports.engineio import EngineIOOptions, EngineIOResource, EngineIOServer, EngineIOSession
from chatdaemon.transports.socketio import ISocketHandler, ISocketIOApplication, SocketIOOptions, SocketIOServer

OPTIONS = EngineIOOptions(ping_interval=0.3, ping_timeout=0.2, max_payload=1_000_000, allowed_origins=("*",))


@implementer(ISocketHandler)
class SuiteHandler:
    """socket.emit("auth", auth) on connect; "message" -> "message-back"; "message-with-ack" acked."""

    def __init__(self, auth: dict | None):
        self.auth = auth or {}
        self.socket = None

    def connected(self, socket) -> None:
        self.socket = socket
        # The suites read one packet per event-loop turn: sent in the same turn as the CONNECT reply,
        # both would share a TCP segment and the suite would miss this one.
        reactor.callLater(0.02, socket.emit, "auth", self.auth)

    def event(self, name, args, ack) -> None:
        if name == "message":
            self.socket.emit("message-back", *args)
        elif name == "message-with-ack" and ack is not None:
            ack(*args)

    def disconnected(self, reason) -> None:
        pass


@implementer(ISocketIOApplication)
class SuiteApplication:
    def connect(self, auth, peer):
        return defer.succeed(SuiteHandler(auth))


class Echo:
    """An Engine.IO receiver that sends every message back (the engine.io-protocol suite's server)."""

    def __init__(self, session: EngineIOSession):
        self.session = session

    def message(self, data) -> None:
        self.session.send(data)

    def closed(self, reason) -> None:
        pass

    def pause_producing(self) -> None:
        pass

    def resume_producing(self) -> None:
        pass


def main(which: str) -> None:
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    root = Resource()
    if which == "engine.io":
        root.putChild(b"engine.io", EngineIOResource(EngineIOServer(Echo, OPTIONS, reactor)))
    else:
        application = SuiteApplication()
        server = SocketIOServer(
            application, reactor, OPTIONS, SocketIOOptions(connect_timeout=1.0), namespaces={"/custom": application}
        )
        root.putChild(b"socket.io", server.resource)
    reactor.listenTCP(3000, Site(root), interface="127.0.0.1")
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "socket.io")
