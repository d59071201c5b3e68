"""Socket.IO protocol 5 over Engine.IO 4 (transports/engineio.py), and the seam to the application.

`SocketIOServer(application)` serves the main namespace "/" with an `ISocketIOApplication`; mount
its `resource` at /socket.io/ on the HTTP Site. What it speaks, as socket.io-client 4.8 does with its
default parser; the reference is github.com/socketio/socket.io-protocol (Readme, v5).

Each Socket.IO packet is the data of one Engine.IO message packet (so `4` comes before it on the wire):

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]    then <attachments> binary messages

    0 CONNECT        client: `0` or `0{"token": ...}` (the auth payload, an object); `0/admin,{...}` for
                     another namespace. Server: `0{"sid": "<socket id>"}` when the application accepts.
    4 CONNECT_ERROR  server only: `4{"message": "...", "data": ...}` ("data" only if the refusal has some);
                     an unknown namespace gets `4/name,{"message":"Invalid namespace"}`.
    1 DISCONNECT     either way, no payload: `1`, `1/admin,`.
    2 EVENT          `2["name", arg, ...]`, `2<id>["name", ...]` when the sender wants an ACK. The payload is
                     a non-empty array whose first element is a string and not a reserved name (connect,
                     connect_error, disconnect, disconnecting, newListener, removeListener).
    3 ACK            `3<id>[arg, ...]`: the reply to event <id> (an array, maybe empty).
    5 BINARY_EVENT   an EVENT whose arguments hold bytes: each replaced by {"_placeholder":true,"num":N}
    6 BINARY_ACK     and sent as the N-th binary message after the packet: `51-["up",{"_placeholder":...}]`.

The namespace is absent for "/". A client may connect several namespaces over one Engine.IO session;
only the ones given to `SocketIOServer` are served. The client's first CONNECT must come within
`connect_timeout` (and again whenever no namespace is left connected), else the session is closed.
Packets for a namespace that is not connected are ignored, as are ACKs (the server asks for none).

A malformed packet closes the Engine.IO session ("parse error"): an unknown type, a bad JSON payload,
an EVENT payload that is not a non-empty array with a string name first, a CONNECT payload that is not an
object, an ACK without id, a CONNECT_ERROR from the client, an ack id longer than 16 digits, a namespace
longer than 200 characters, more than `max_attachments` attachments, attachments larger than
`max_attachment_bytes` together, a placeholder whose num is not one of the packet's attachments, text
where an attachment is due or an attachment where none is.

The seam (zope interfaces, below): the application's `connect(auth, peer)` returns a Deferred firing
with an `ISocketHandler` for the new socket, or failing with `ConnectRefused(message, data=None)` (any
other failure is logged and told as "server error"). The handler is given its `ISocket` by
`connected(socket)`, then its events by `event(name, args, ack)`, then `disconnected(reason)`, once.
`disconnected` is called from the reactor in a later turn, never from inside a call the handler made.
Reasons: "client namespace disconnect", "server namespace disconnect", and the Engine.IO session's:
"transport close", "transport error", "ping timeout", "parse error", "slow client", "connect timeout",
"server close", "server shutting down".

Flow control: outgoing packets share their Engine.IO session's bounded queue. A producer registered with
`socket.registerProducer(producer, True)` is paused when the queue passes its high-water mark, resumed
when it drains to half, and stopped when the socket ends; past `max_outgoing_bytes` the session is
dropped ("slow client"). `socket.pause_reading()` stops reading the whole Engine.IO session (its other
namespaces too) until every socket that paused it resumes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from .engineio import Data, EngineIOOptions, EngineIOResource, EngineIOServer, EngineIOSession, ProtocolError

CONNECT, DISCONNECT, EVENT, ACK, CONNECT_ERROR, BINARY_EVENT, BINARY_ACK = range(7)
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
MAX_ID_DIGITS = 16
MAX_NAMESPACE_CHARS = 200
SERVER_ERROR = "server error"
# What an event's unanswered ack gets when the handler raised.
ERROR_ACK = {"error": {"message": SERVER_ERROR}}

log = Logger()


# -- the seam to the application


class ISocket(Interface):
    """One client's connection to a namespace, as the application sees it."""

    sid = Attribute("The Socket.IO socket id (str), as sent to the client in the CONNECT reply.")
    namespace = Attribute('The namespace (str), "/" for the main one.')
    peer = Attribute('"host:port" of the request that opened the Engine.IO session.')
    transport_name = Attribute('"polling" or "websocket": what carries the session now (it may upgrade).')
    connected = Attribute("True from the CONNECT reply until the socket ends.")

    def emit(name: str, *args: Any) -> None:
        """Send event `name` with `args` (JSON values; bytes anywhere in them go as binary attachments).
        Nothing happens once the socket has ended. Raises ValueError for a reserved name, TypeError for a
        value JSON cannot carry."""

    def disconnect() -> None:
        """End this socket: the client is sent DISCONNECT (it will not reconnect by itself); the handler gets
        disconnected("server namespace disconnect"). With no namespace left, the session is closed too."""

    def drop() -> None:
        """Close the whole Engine.IO session after what is queued, with no DISCONNECT: the client sees its
        transport close and reconnects by itself (a server going down for a restart). The handler gets
        disconnected("server close")."""

    def registerProducer(producer: IPushProducer, streaming: bool) -> None:
        """Have `producer` paused and resumed with the outgoing queue, and stopped when the socket ends.
        Only streaming (push) producers."""

    def unregisterProducer() -> None:
        """Forget the producer."""

    def pause_reading() -> None:
        """Stop delivering this client's packets (its WebSocket is no longer read; its next POST is held)."""

    def resume_reading() -> None:
        """Deliver them again, those held first."""


class ISocketHandler(Interface):
    """The application's side of one socket."""

    def connected(socket: ISocket) -> None:
        """The client was sent the CONNECT reply; `socket` is how to talk to it. Called once, first."""

    def event(name: str, args: list, ack: Callable[..., None] | None) -> None:
        """The client emitted `name` with `args` (JSON values; bytes where it sent binary). If it wants an
        acknowledgement, `ack` is to be called once with the reply's arguments, e.g. `ack({"ok": True})` or,
        for an error, `ack({"error": {...}})`: the client's callback gets them as its arguments. If this raises,
        the error is logged and an unanswered ack is answered with ERROR_ACK."""

    def disconnected(reason: str) -> None:
        """The socket ended (see the module's list of reasons). Called once, last."""


class ISocketIOApplication(Interface):
    """What serves a namespace."""

    def connect(auth: dict | None, peer: str) -> Deferred:
        """A client asks to connect with `auth` (the CONNECT payload, e.g. {"token": KEY} or {"username",
        "password"}; None if it sent none), from `peer` ("host:port"). Fire with an ISocketHandler to accept;
        fail with ConnectRefused(message) to refuse: the client gets connect_error with that message."""


class ConnectRefused(Exception):
    """A refused CONNECT: the client gets CONNECT_ERROR {"message": message[, "data": data]}."""

    def __init__(self, message: str, data: Any = None):
        super().__init__(message)
        self.message, self.data = message, data


@dataclass(frozen=True)
class SocketIOOptions:
    """Socket.IO's limits (seconds, counts, bytes)."""

    connect_timeout: float = 45.0  # for the first CONNECT, and after the last namespace disconnected
    max_attachments: int = 10  # binary attachments in one packet
    max_attachment_bytes: int = 1_000_000  # all the attachments of one packet together (each is one
    # Engine.IO message, so also at most EngineIOOptions.max_payload)


# -- the codec


@dataclass(frozen=True)
class Packet:
    kind: int
    namespace: str = "/"
    data: Any = None  # None: no payload
    id: int | None = None
    attachments: int = 0  # announced by a binary packet (decoding)


def decode(text: str, max_attachments: int = SocketIOOptions.max_attachments) -> Packet:
    """A Socket.IO packet from an Engine.IO text message, checked as the module docstring says (the
    placeholders of a binary one are left for `reconstruct`). Raises ProtocolError."""
    if not text or text[0] not in "0123456":
        raise ProtocolError("unknown Socket.IO packet type")
    kind, i, end = int(text[0]), 1, len(text)
    attachments = 0
    if kind in (BINARY_EVENT, BINARY_ACK):
        dash = text.find("-", 1)
        digits = text[1:dash] if dash > 0 else ""
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 6:
            raise ProtocolError("a binary packet without its attachment count")
        attachments, i = int(digits), dash + 1
        if attachments > max_attachments:
            raise ProtocolError(f"more than {max_attachments} attachments")
    namespace = "/"
    if text.startswith("/", i):
        comma = text.find(",", i)
        stop = end if comma == -1 else comma
        namespace, i = text[i:stop], (end if comma == -1 else comma + 1)
        if len(namespace) > MAX_NAMESPACE_CHARS:
            raise ProtocolError("namespace too long")
    j = i
    while j < end and text[j] in "0123456789":
        j += 1
    ack_id = None
    if j > i:
        if j - i > MAX_ID_DIGITS:
            raise ProtocolError("ack id too long")
        ack_id, i = int(text[i:j]), j
    data = None
    if i < end:
        try:
            data = orjson.loads(text[i:])
        except orjson.JSONDecodeError:
            raise ProtocolError("the payload is not JSON") from None
    _check(kind, data, ack_id)
    return Packet(kind, namespace, data, ack_id, attachments)


def _check(kind: int, data: Any, ack_id: int | None) -> None:
    if kind == CONNECT:
        ok = data is None or isinstance(data, dict)
    elif kind == DISCONNECT:
        ok = data is None
    elif kind in (EVENT, BINARY_EVENT):
        ok = isinstance(data, list) and bool(data) and isinstance(data[0], str) and data[0] not in RESERVED_EVENTS
    elif kind in (ACK, BINARY_ACK):
        ok = isinstance(data, list) and ack_id is not None
    else:  # CONNECT_ERROR is the server's
        ok = False
    if not ok:
        raise ProtocolError(f"invalid payload for packet type {kind}")


def reconstruct(data: Any, attachments: list[bytes]) -> Any:
    """`data` with each placeholder replaced by its attachment."""
    if isinstance(data, list):
        return [reconstruct(item, attachments) for item in data]
    if isinstance(data, dict):
        if data.get("_placeholder") is True:
            num = data.get("num")
            if type(num) is not int or not 0 <= num < len(attachments):
                raise ProtocolError("a placeholder without its attachment")
            return attachments[num]
        return {key: reconstruct(value, attachments) for key, value in data.items()}
    return data


def deconstruct(data: Any, attachments: list[bytes]) -> Any:
    """`data` with each bytes value replaced by a placeholder, the bytes appended to `attachments`."""
    if isinstance(data, bytes | bytearray | memoryview):
        attachments.append(bytes(data))
        return {"_placeholder": True, "num": len(attachments) - 1}
    if isinstance(data, list | tuple):
        return [deconstruct(item, attachments) for item in data]
    if isinstance(data, dict):
        return {key: deconstruct(value, attachments) for key, value in data.items()}
    return data


def encode(packet: Packet) -> list[Data]:
    """The Engine.IO messages for `packet`: its text, then its attachments. EVENT and ACK become BINARY_EVENT
    and BINARY_ACK when their data holds bytes."""
    attachments: list[bytes] = []
    data = deconstruct(packet.data, attachments)
    kind = packet.kind
    head = str(kind)
    if attachments:
        kind = {EVENT: BINARY_EVENT, ACK: BINARY_ACK}[kind]
        head = f"{kind}{len(attachments)}-"
    if packet.namespace != "/":
        head += packet.namespace + ","
    if packet.id is not None:
        head += str(packet.id)
    text = head if data is None else head + orjson.dumps(data).decode("utf-8")
    return [text, *attachments]


# -- sockets and connections


@implementer(ISocket)
class Socket:
    """A namespace connected over one Engine.IO session."""

    def __init__(self, connection: SocketIOConnection, namespace: str, handler: ISocketHandler):
        self._connection, self.namespace, self.handler = connection, namespace, handler
        self.sid = secrets.token_urlsafe(15)
        self.connected = False
        self._producer: IPushProducer | None = None
        self._reading_paused = False

    def __repr__(self) -> str:
        return f"<Socket {self.sid} {self.namespace} {self.peer}>"

    @property
    def peer(self) -> str:
        return self._connection.session.peer

    @property
    def transport_name(self) -> str:
        return self._connection.session.transport

    def emit(self, name: str, *args: Any) -> None:
        if not isinstance(name, str) or name in RESERVED_EVENTS:
            raise ValueError(f"{name!r} is not an event name one may emit")
        if self.connected:
            self._connection.send(Packet(EVENT, self.namespace, [name, *args]))

    def disconnect(self) -> None:
        if not self.connected:
            return
        self._connection.send(Packet(DISCONNECT, self.namespace))
        self._connection.remove(self, "server namespace disconnect")

    def drop(self) -> None:
        if self.connected:
            self._connection.session.close("server close")

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        if not streaming:
            raise ValueError("only streaming producers")
        self._producer = producer
        if self._connection.producers_paused:
            producer.pauseProducing()

    def unregisterProducer(self) -> None:
        self._producer = None

    def pause_reading(self) -> None:
        if self.connected and not self._reading_paused:
            self._reading_paused = True
            self._connection.session.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            self._connection.session.resume_reading()

    # the connection's side

    def _start(self) -> None:
        self.connected = True
        try:
            self.handler.connected(self)
        except Exception:
            log.failure("socket.io {sid}: the handler's connected() failed", sid=self.sid)

    def _event(self, packet: Packet) -> None:
        name, *args = packet.data
        ack = Ack(self, packet.id) if packet.id is not None else None
        try:
            self.handler.event(name, args, ack)
        except Exception:
            log.failure("socket.io {sid}: the handler of {name!r} failed", sid=self.sid, name=name)
            if ack is not None and not ack.called:
                ack(ERROR_ACK)

    def _pause(self, paused: bool) -> None:
        if self._producer is not None:
            if paused:
                self._producer.pauseProducing()
            else:
                self._producer.resumeProducing()

    def _ended(self, reason: str, clock: IReactorTime) -> None:
        if not self.connected:
            return
        self.connected = False
        if self._reading_paused:
            self._reading_paused = False
            self._connection.session.resume_reading()
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.stopProducing()
        clock.callLater(0, self.handler.disconnected, reason)


class Ack:
    """The acknowledgement an event asked for: call it once with the reply's arguments (bytes go as
    attachments). Later calls, and calls after the socket ended, do nothing."""

    def __init__(self, socket: Socket, ack_id: int):
        self._socket, self.id = socket, ack_id
        self.called = False

    def __call__(self, *args: Any) -> None:
        if self.called:
            log.warn("socket.io {sid}: ack {id} answered twice", sid=self._socket.sid, id=self.id)
            return
        self.called = True
        if self._socket.connected:
            self._socket._connection.send(Packet(ACK, self._socket.namespace, list(args), self.id))


class SocketIOConnection:
    """The Socket.IO side of one Engine.IO session (its Receiver): the namespaces connected over it, the
    attachments of a binary packet being gathered, and the deadline for a CONNECT."""

    def __init__(
        self,
        session: EngineIOSession,
        namespaces: Mapping[str, ISocketIOApplication],
        options: SocketIOOptions,
        clock: IReactorTime,
    ):
        self.session, self._namespaces, self._options, self._clock = session, namespaces, options, clock
        self.sockets: dict[str, Socket] = {}
        self._connecting: set[str] = set()
        self._partial: Packet | None = None
        self._attachments: list[bytes] = []
        self._attachment_bytes = 0
        self.producers_paused = False
        self.ended: str | None = None  # the reason, once the session has ended
        self._deadline: IDelayedCall | None = clock.callLater(options.connect_timeout, self._no_connect)

    def send(self, packet: Packet) -> None:
        for part in encode(packet):
            self.session.send(part)

    def remove(self, socket: Socket, reason: str) -> None:
        if self.sockets.get(socket.namespace) is socket:
            del self.sockets[socket.namespace]
        socket._ended(reason, self._clock)
        if not self.sockets and not self._connecting and self.ended is None:
            if reason == "server namespace disconnect":
                self.session.close(reason)  # the client will not come back on this session
            elif self._deadline is None:
                self._deadline = self._clock.callLater(self._options.connect_timeout, self._no_connect)

    # Receiver

    def message(self, data: Data) -> None:
        try:
            if isinstance(data, bytes):
                self._attachment(data)
            elif self._partial is not None:
                raise ProtocolError("text where a binary attachment was due")
            else:
                packet = decode(data, self._options.max_attachments)
                if packet.attachments:
                    self._partial = packet
                else:
                    self._dispatch(packet)
        except ProtocolError as e:
            log.info("socket.io from {peer}: {error}", peer=self.session.peer, error=str(e))
            self.session.close("parse error")

    def closed(self, reason: str) -> None:
        self.ended = reason
        self._cancel_deadline()
        self._partial, self._attachments = None, []
        sockets, self.sockets = list(self.sockets.values()), {}
        for socket in sockets:
            socket._ended(reason, self._clock)

    def pause_producing(self) -> None:
        self.producers_paused = True
        for socket in list(self.sockets.values()):
            socket._pause(True)

    def resume_producing(self) -> None:
        self.producers_paused = False
        for socket in list(self.sockets.values()):
            socket._pause(False)

    # incoming

    def _attachment(self, data: bytes) -> None:
        packet = self._partial
        if packet is None:
            raise ProtocolError("a binary attachment where none was due")
        self._attachment_bytes += len(data)
        if self._attachment_bytes > self._options.max_attachment_bytes:
            raise ProtocolError(f"attachments over {self._options.max_attachment_bytes} bytes")
        self._attachments.append(data)
        if len(self._attachments) == packet.attachments:
            attachments = self._attachments
            self._partial, self._attachments, self._attachment_bytes = None, [], 0
            self._dispatch(Packet(packet.kind, packet.namespace, reconstruct(packet.data, attachments), packet.id))

    def _dispatch(self, packet: Packet) -> None:
        kind, namespace = packet.kind, packet.namespace
        if kind == CONNECT:
            self._connect(namespace, packet.data)
        elif kind == DISCONNECT:
            socket = self.sockets.get(namespace)
            if socket is not None:
                self.remove(socket, "client namespace disconnect")
        elif kind in (EVENT, BINARY_EVENT):
            socket = self.sockets.get(namespace)
            if socket is not None:
                socket._event(packet)
        # ACK, BINARY_ACK: the server asks for no acknowledgement; nothing waits for one

    def _connect(self, namespace: str, auth: dict | None) -> None:
        application = self._namespaces.get(namespace)
        if application is None:
            self.send(Packet(CONNECT_ERROR, namespace, {"message": "Invalid namespace"}))
            return
        if namespace in self.sockets or namespace in self._connecting:
            return  # one at a time
        self._connecting.add(namespace)
        d = maybeDeferred(application.connect, auth, self.session.peer)
        d.addCallbacks(self._accepted, self._refused, callbackArgs=(namespace,), errbackArgs=(namespace,))

    def _accepted(self, handler: ISocketHandler, namespace: str) -> None:
        self._connecting.discard(namespace)
        socket = Socket(self, namespace, handler)
        if self.ended is not None:  # gone meanwhile: the handler still hears both ends
            socket._start()
            socket._ended(self.ended, self._clock)
            return
        self.sockets[namespace] = socket
        self._cancel_deadline()
        self.send(Packet(CONNECT, namespace, {"sid": socket.sid}))
        log.info(
            "socket.io {sid} connected to {namespace} ({peer})", sid=socket.sid, namespace=namespace, peer=self.peer
        )
        socket._start()

    def _refused(self, failure: Failure, namespace: str) -> None:
        self._connecting.discard(namespace)
        refusal = failure.value
        if isinstance(refusal, ConnectRefused):
            reply = {"message": refusal.message}
            if refusal.data is not None:
                reply["data"] = refusal.data
        else:
            log.failure("socket.io: connect to {namespace} failed", failure, namespace=namespace)
            reply = {"message": SERVER_ERROR}
        if self.ended is None:
            self.send(Packet(CONNECT_ERROR, namespace, reply))

    @property
    def peer(self) -> str:
        return self.session.peer

    def _no_connect(self) -> None:
        self._deadline = None
        if not self.sockets:
            self.session.close("connect timeout")

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None


class SocketIOServer:
    """Socket.IO at /socket.io/: mount `resource` there. `application` serves "/", `namespaces` maps other
    namespace names ("/admin") to their applications; any other namespace is refused."""

    def __init__(
        self,
        application: ISocketIOApplication,
        clock: IReactorTime,
        engineio: EngineIOOptions = EngineIOOptions(),  # noqa: B008 (frozen)
        options: SocketIOOptions = SocketIOOptions(),
        namespaces: Mapping[str, ISocketIOApplication] | None = None,
        addresses=None,
    ):
        """`addresses`: the HTTP Site's per-address connection count (listeners.AddressCounter), if it has one."""
        self.namespaces: dict[str, ISocketIOApplication] = {"/": application, **(namespaces or {})}
        self.options, self.clock = options, clock
        self.engine = EngineIOServer(self._session_opened, engineio, clock)
        self.resource = EngineIOResource(self.engine, addresses)

    def _session_opened(self, session: EngineIOSession) -> SocketIOConnection:
        return SocketIOConnection(session, self.namespaces, self.options, self.clock)

    def close_all(self) -> None:
        """Close every session ("server shutting down"), e.g. when the service stops."""
        self.engine.close_all()
