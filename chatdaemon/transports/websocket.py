"""The WebSocket transport: Autobahn on the HTTP Site at /ws, one JSON object (or text line) per text message.

Every dialect works here as on the line transport, through the same Session.
The handshake may carry a session key (`/ws?token=KEY` or
`Authorization: Bearer KEY`); a bad one is refused with HTTP 401 before the
upgrade. A good one logs the connection in as soon as its dialect is known:
at once with `?dialect=NAME`, else at the first frame (before that frame is
handled). Browsers' Origin headers are checked against `http.allowed_origins`,
and with `http.same_origin` (the default) an Origin equal to the address the
browser asked for (scheme, Host name and port) is accepted too: that is the
page this listener serves at `/`. Others get HTTP 400, the "null" origin
included (Autobahn refuses it before `onConnect`). Frame and message sizes,
the opening-handshake timeout and auto-ping are set from the `[http]` config;
compression is off unless configured, and bounded when on. Autobahn's own
logging stays quiet (no per-frame lines: logs.py holds its namespaces to
errors); a refused handshake is logged here, once, with its reason.

Sizes: a message over `http.max_message_bytes` (or a frame over
`http.max_frame_bytes`) closes the connection with 1009, except on a
connection that `takes_large_frames` (logged in, in a dialect that carries
files): its messages may reach `limits.max_transfer_frame_bytes` while it
holds a large-frame slot (connection.py; the check is made at each frame's
header, so the slot is taken before the data is read), and its session
refuses such a message with 7005 unless it is a file-transfer frame. With
compression on, a message is checked once inflated.

Output: with compression off, on plain TCP, a session's frames of one reactor turn leave as text
messages in one `send_now` (connection.py: at once when the socket has room, no writability
registration around it); otherwise each goes through Autobahn's sendMessage.

Back-pressure: the Session is registered as the streaming producer of the TCP
(or TLS) transport underneath (Autobahn passes registerProducer through), so
a slow reader is paused and then dropped by the Session, never buffered
without bound; reading pauses while the Session's inbox is busy.
"""

import struct
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import cast

from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.util import wildcards2patterns
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.defer import maybeDeferred
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .. import errors
from ..dialects import DIALECTS
from ..errors import ChatError
from ..session import ISessionTransport, Session
from . import IStreamTransport
from .connection import Connections, FrameGate, peer_name, send_now, writes_directly

DEFAULT_PORTS = {"http": 80, "https": 443}
OP_TEXT = 0x1


def frame_header(opcode: int, length: int, masked: bool = False) -> bytes:
    """The header of one final (FIN) frame of `length` bytes (RFC 6455, section 5.2). A client's frames are
    `masked`: the header says so, and the 4-byte masking key follows it."""
    first, mask = 0x80 | opcode, 0x80 if masked else 0
    if length < 126:
        return struct.pack("!BB", first, mask | length)
    if length < 65536:
        return struct.pack("!BBH", first, mask | 126, length)
    return struct.pack("!BBQ", first, mask | 127, length)


def text_message(payload: bytes) -> bytes:
    """One unfragmented text message as a server sends it (unmasked)."""
    return frame_header(OP_TEXT, len(payload)) + payload


log = Logger(namespace="chatdaemon.transports.websocket")


def _scheme_host_port(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    try:
        parts = urllib.parse.urlsplit(f"{scheme}://{netloc}")
        host, port = parts.hostname, parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    return (scheme, host, port) if host and port else None


def origin_allowed(origin: str, host_header: str, secure: bool, patterns, same_origin: bool) -> bool:
    """Whether a browser's Origin may open a WebSocket here.

    `patterns` are the compiled `allowed_origins` (matched, as Autobahn does, against
    "scheme://host:port"). With `same_origin`, an Origin naming exactly the scheme, host
    and port the browser connected to (the Host header) is accepted: a page served by
    this listener. A page of another site sends its own Origin, so it is still refused.
    """
    if not origin:
        return True  # not a browser: nothing to hijack
    parts = urllib.parse.urlsplit(origin.strip())
    mine = _scheme_host_port(parts.scheme.lower(), parts.netloc) if parts.scheme.lower() in DEFAULT_PORTS else None
    if mine is None or parts.path not in ("", "/"):
        return False
    if any(p.match("{}://{}:{}".format(*mine)) for p in patterns):
        return True
    if not same_origin or not host_header:
        return False
    return mine == _scheme_host_port("https" if secure else "http", host_header.strip())


@implementer(ISessionTransport)
class ChatWebSocket(WebSocketServerProtocol):
    transport: IStreamTransport
    peer_host: str | None  # set by the factory
    session: Session | None = None  # from onOpen until onClose
    gate: FrameGate  # the connection's reading, from onOpen on
    _token = _dialect = ""
    _direct = False  # frames leave through send_now (plain TCP, no compression), from onOpen on

    def onConnect(self, request):
        d = maybeDeferred(self._check_handshake, request)
        d.addErrback(self._refused, request)
        return d

    def _refused(self, failure, request):
        peer = peer_name(self.transport)
        if not failure.check(ConnectionDeny):
            log.failure("websocket handshake from {peer} failed", failure, peer=peer)
            raise ConnectionDeny(ConnectionDeny.INTERNAL_SERVER_ERROR, "server error")
        log.info(
            "websocket refused: {peer}: {reason}",
            event="websocket_refused", peer=peer, code=failure.value.code, reason=failure.value.reason,
        )  # fmt: skip
        return failure

    def _check_handshake(self, request):
        factory = self.factory
        secure = ISSLTransport.providedBy(self.transport)
        origin = request.headers.get("origin", "")
        if not origin_allowed(
            origin, request.headers.get("host", ""), secure, factory.origin_patterns, factory.same_origin
        ):
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, f"origin {origin[:100]!r} not allowed")
        token = (request.params.get("token") or [""])[0]
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            token = auth[7:].strip()
        dialect = (request.params.get("dialect") or [""])[0]
        if dialect and dialect not in DIALECTS:
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, f"unknown dialect {dialect[:32]!r}")
        self._token, self._dialect = token, dialect
        if not token:
            return None

        def check(user):
            if user is None:
                raise ConnectionDeny(401, "unknown or revoked session key")

        def throttled(failure):
            failure.trap(ChatError)
            raise ConnectionDeny(429, failure.value.message)

        d = factory.connections.core.authenticate(token, peer_name(self.transport))
        return d.addCallbacks(check, throttled)

    def onOpen(self) -> None:
        self._direct = writes_directly(self.transport) and self._perMessageCompress is None
        self._held: deque[tuple[bytes, bool]] = deque()  # messages that wait for a large-frame slot
        self.gate = self.factory.connections.gate(self.transport, self._deliver)
        self.session = self.factory.connections.open(self.transport, self, "ws")
        self.gate.session = self.session
        self.session.start(self._token, DIALECTS[self._dialect]() if self._dialect else None)

    @property
    def max_frame_bytes(self) -> int:
        return self.factory.maxMessagePayloadSize

    def onMessageFrameBegin(self, length: int) -> None:
        """Before a frame's data: its connection's bounds, and a large-frame slot if the message needs one."""
        factory, session = self.factory, self.session
        if session is not None and session.takes_large_frames:
            large = session.limits.max_transfer_frame_bytes
            self.maxMessagePayloadSize = max(factory.maxMessagePayloadSize, large)
            self.maxFramePayloadSize = max(factory.maxFramePayloadSize, large)
        else:
            self.maxMessagePayloadSize = factory.maxMessagePayloadSize
            self.maxFramePayloadSize = factory.maxFramePayloadSize
        super().onMessageFrameBegin(length)
        self._check_size()

    def onMessageFrameData(self, payload: bytes) -> None:
        super().onMessageFrameData(payload)
        if getattr(self, "_isMessageCompressed", False):
            self._check_size()  # the inflated size is known only now

    def _check_size(self) -> None:
        if self.message_data_total_length > self.factory.maxMessagePayloadSize and not self.failedByMe:
            self.gate.reading_large()  # False: no slot free; reading pauses until one is

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.session is None:
            return
        self.factory.connections.heard(self.session)
        self._held.append((payload, isBinary))
        self._deliver()

    def _deliver(self) -> None:
        """Hand the messages on, in order; one over the ordinary bound only with a slot (else wait for it)."""
        held, gate = self._held, self.gate
        while held and self.session is not None and self.session.open:
            payload, binary = held[0]
            large = len(payload) > self.factory.maxMessagePayloadSize
            if large and not gate.reading_large():
                return
            held.popleft()
            session = self.session
            if binary:
                session.frame_refused(ChatError(errors.BAD_FRAME, "send frames as text messages"))
            else:
                session.frame_received(payload)
            if large:
                gate.handed_over(session.inbox.holding)

    def onPong(self, payload: bytes) -> None:
        if self.session is not None:
            self.factory.connections.heard(self.session)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if hasattr(self, "gate"):  # (not if the opening handshake failed)
            self.gate.close()
        super().connectionLost(reason)
        self.factory.addresses.release(self.peer_host)  # this connection was counted as an HTTP one

    def onClose(self, wasClean: bool, code, reason) -> None:
        session, self.session = self.session, None
        if session is not None:
            self.factory.connections.lost(session, f" ({code})")

    # ISessionTransport
    def write_frames(self, frames: list[bytes]) -> None:
        if self.state != self.STATE_OPEN:
            return  # closing: the peer will not read it
        if self._direct:
            send_now(self.transport, b"".join([text_message(frame) for frame in frames]))
            return
        for frame in frames:
            self.sendMessage(frame, isBinary=False)

    def close(self, restarting: bool = False) -> None:
        if self.state == self.STATE_OPEN:
            self.sendClose(1000)

    def abort(self) -> None:
        self.dropConnection(abort=True)

    def pause_reading(self) -> None:
        self.gate.pause()

    def resume_reading(self) -> None:
        self.gate.resume()


class ChatWebSocketFactory(WebSocketServerFactory):
    protocol = ChatWebSocket

    def __init__(self, connections: Connections, options, addresses):
        super().__init__()
        self.connections = connections
        self.addresses = addresses  # the HTTP site's per-address count: a WebSocket connection keeps its place
        self.logOctets = self.logFrames = self.trackTimings = False  # Autobahn's per-frame logging, never on
        self.configure(options)

    def buildProtocol(self, addr):
        protocol = cast(ChatWebSocket, super().buildProtocol(addr))  # built from self.protocol
        protocol.peer_host = getattr(addr, "host", None)
        return protocol

    def configure(self, options) -> None:
        """Apply the [http] options (at start, and on reload for the connections that follow)."""
        # Autobahn lets every Origin but "null" through (allowedOrigins "*"): onConnect checks the
        # allow-list, and the same-origin rule, which needs the Host header Autobahn does not compare.
        self.origin_patterns = wildcards2patterns(list(options.allowed_origins))
        self.same_origin = options.same_origin
        accept: Callable[[list], PerMessageDeflateOfferAccept | None] | None = None
        limits = self.connections.limits
        if options.compression:

            def accept(offers):
                for offer in offers:
                    if isinstance(offer, PerMessageDeflateOffer):
                        return PerMessageDeflateOfferAccept(
                            offer,
                            no_context_takeover=True,
                            request_no_context_takeover=True,
                            # each connection's own bound (maxMessagePayloadSize) bounds the inflation
                            max_message_size=max(options.max_message_bytes, limits.max_transfer_frame_bytes),
                        )
                return None

        self.setProtocolOptions(
            maxFramePayloadSize=options.max_frame_bytes,
            maxMessagePayloadSize=options.max_message_bytes,
            openHandshakeTimeout=options.open_handshake_timeout,
            closeHandshakeTimeout=1.0,
            autoPingInterval=options.auto_ping_interval,
            autoPingTimeout=options.auto_ping_timeout,
            allowedOrigins=["*"],
            allowNullOrigin=False,
            webStatus=False,
            trustXForwardedFor=0,
            failByDrop=False,  # a protocol violation (e.g. 1009, too big) is told with a close frame
            perMessageCompressionAccept=accept or (lambda offers: None),
        )


def websocket_resource(factory: ChatWebSocketFactory) -> WebSocketResource:
    return WebSocketResource(factory)
