"""Engine.IO protocol 4 on twisted.web and Autobahn: the transport under Socket.IO (transports/socketio.py).

`EngineIOResource` is a leaf resource for /socket.io/ on the HTTP Site. What it speaks, as
socket.io-client 4.8 (engine.io-client 6.6) does with its default options; the reference is
github.com/socketio/engine.io-protocol (README, v4):

Packets: one digit for the type, then the data.

    0 open     server -> client, the first packet: {"sid","upgrades","pingInterval","pingTimeout","maxPayload"}
               (milliseconds; maxPayload in bytes). "upgrades" is ["websocket"] on polling, [] on a WebSocket.
    1 close    either way: the session ends.
    2 ping     server -> client every pingInterval; "2probe" client -> server opens an upgrade.
    3 pong     client -> server within pingTimeout of each ping; "3probe" answers "2probe".
    4 message  either way: `4` + text (a Socket.IO packet), or binary.
    5 upgrade  client -> server, on the probing WebSocket: from now on use it.
    6 noop     server -> client: releases a held GET while the client upgrades.

HTTP long-polling, `/socket.io/?EIO=4&transport=polling[&sid=S]` (any other query parameter, such as
the client's cache-buster `t`, is ignored):

    GET  (no sid)   the handshake: 200, body `0{...}`. Any other method: 400 code 2.
    GET  &sid=S     held until something is queued for S (a ping is, every pingInterval), then answered
                    with the queued packets separated by "\\x1e", a binary one as "b" + base64; a reply
                    holds at most maxPayload bytes unless the session is closing. text/plain; charset=UTF-8.
    POST &sid=S     the client's packets in the same framing (a body is at most maxPayload bytes, else
                    413 and the session is closed); answered `ok` once they are all handed on.
    At most one GET and one POST in flight per session: another one gets 400 and closes the session
    (a held GET is answered `1`). After the upgrade, polling requests for S get 400 and S stays open.

WebSocket, `/socket.io/?EIO=4&transport=websocket[&sid=S]`: one packet per WebSocket message, binary
packets as binary messages, text as UTF-8 text messages; no `\\x1e` framing. Without sid: a new session,
whose first message is the open packet. With the sid of a polling session: the upgrade. The client sends
`2probe` on the new WebSocket; the server answers `3probe`, and `6` to the held GET (and to every GET
until the upgrade ends); the client sends `5` and the WebSocket carries everything from then on, the
packets still queued first. Anything else on a probing WebSocket, or no `5` within `upgrade_timeout`,
closes that WebSocket and the session goes on polling. A second WebSocket for a session is accepted
and closed at once (as the reference server does).

Heartbeat: the server queues `2` every pingInterval after the last pong; no `3` within pingTimeout closes
the session ("ping timeout"). A polling client that stops polling never sees the ping, so its session is
closed pingInterval + pingTimeout after its last pong. (While the application has paused reading, a
missing pong does not count: the server is the one not listening.)

Closing: the server queues `1` and ends the session once the queue is delivered (polling: to the next
GET, or after pingTimeout; WebSocket: then a close frame 1000). A client's `1` ends it at once (a held
GET is answered `6`). A bad packet or payload (an unknown type, bad base64, invalid UTF-8, `0` from the
client, `5` on polling) ends it at once: 400 to the POST, or WebSocket close 1000.

Errors answer HTTP 400 with Engine.IO's JSON `{"code": N, "message": ...}`: 0 "Transport unknown",
1 "Session ID unknown", 2 "Bad handshake method", 3 "Bad request", 5 "Unsupported protocol version";
code 4 "Forbidden" comes with 403 for a refused Origin, 429 past the sessions per address and 503
past all sessions. A too-large POST body gets 413.

Limits are `EngineIOOptions`; every one bounds something the client controls. The WebSocket side is an
Autobahn factory with its frame and message sizes set to maxPayload (past it: close 1009), compression
off, Autobahn's own pings off (Engine.IO has its heartbeat), no status page, and the same Origin rule
as /ws (`websocket.origin_allowed`, applied to polling requests too).

Flow control: the outgoing queue of a session is bounded (`max_outgoing_bytes`, past it the session is
dropped: "slow client"); above `outgoing_high_water` the receiver is paused, and resumed at half of it.
On a WebSocket the queue drains only as fast as the TCP transport takes it (the session is its
streaming producer). Polling GET/POST requests past `polls_per_second` (burst `poll_burst`) are
answered late rather than refused. `pause_reading()` stops reading the WebSocket, or holds the POST.

A twisted.web Site reads a whole request body before the resource sees it, so mount this on a Site whose
request factory bounds bodies (`rest.bounded_request`) to at least `max_payload`.
"""

from __future__ import annotations

import base64
import secrets
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, cast

import orjson
from autobahn.twisted.resource import WebSocketResource
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.util import wildcards2patterns
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from ..config import Http
from . import IStreamTransport
from .websocket import origin_allowed

OPEN, CLOSE, PING, PONG, MESSAGE, UPGRADE, NOOP = range(7)
SEPARATOR = "\x1e"

# Engine.IO's error codes, for HTTP error bodies
UNKNOWN_TRANSPORT, UNKNOWN_SID, BAD_HANDSHAKE_METHOD, BAD_REQUEST, FORBIDDEN, UNSUPPORTED_VERSION = range(6)
ERROR_MESSAGES = {
    UNKNOWN_TRANSPORT: "Transport unknown",
    UNKNOWN_SID: "Session ID unknown",
    BAD_HANDSHAKE_METHOD: "Bad handshake method",
    BAD_REQUEST: "Bad request",
    FORBIDDEN: "Forbidden",
    UNSUPPORTED_VERSION: "Unsupported protocol version",
}
TEXT_PLAIN = b"text/plain; charset=UTF-8"

Data = str | bytes
log = Logger()


class ProtocolError(ValueError):
    """A packet or payload that breaks Engine.IO: the session is closed."""


# -- the codec


def decode_packet(raw: Data) -> tuple[int, Data]:
    """One packet as received: a binary WebSocket message (bytes) is a binary message; text is a type digit
    and its data, or "b" + base64 for a binary message (polling)."""
    if isinstance(raw, bytes):
        return MESSAGE, raw
    if not raw:
        raise ProtocolError("empty packet")
    kind = raw[0]
    if kind == "b":
        try:
            return MESSAGE, base64.b64decode(raw[1:], validate=True)
        except ValueError:  # binascii.Error, or text that is not ASCII ("b\x80")
            raise ProtocolError("bad base64 in a binary packet") from None
    if kind not in "0123456":
        raise ProtocolError(f"unknown packet type {kind!r}")
    return int(kind), raw[1:]


def encode_packet(kind: int, data: Data = "") -> tuple[bytes, bool]:
    """A packet as a WebSocket message: (payload, is_binary). Binary data is a message packet as it is."""
    if isinstance(data, bytes):
        if kind != MESSAGE:
            raise ValueError("only a message packet may be binary")
        return data, True
    return str(kind).encode("ascii") + data.encode("utf-8"), False


def polling_form(packet: bytes, binary: bool) -> bytes:
    """A WebSocket-form packet as it goes in a polling payload (binary as "b" + base64)."""
    return b"b" + base64.b64encode(packet) if binary else packet


def encode_payload(packets: Iterable[tuple[bytes, bool]]) -> bytes:
    """Packets in WebSocket form, joined for a polling GET reply."""
    return SEPARATOR.encode("ascii").join(polling_form(packet, binary) for packet, binary in packets)


def decode_payload(body: bytes) -> list[tuple[int, Data]]:
    """A polling POST body: UTF-8 text, packets separated by "\\x1e"."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("the payload is not UTF-8") from None
    return [decode_packet(raw) for raw in text.split(SEPARATOR)]


# -- options and the seam to the layer above


@dataclass(frozen=True)
class EngineIOOptions:
    """Engine.IO's limits and timers (seconds, bytes). Each bounds something a client controls."""

    ping_interval: float = 25.0  # between the server's pings (advertised as pingInterval)
    ping_timeout: float = (
        20.0  # for the pong (pingTimeout); a silent session ends interval + timeout after its last pong
    )
    max_payload: int = 1_000_000  # one WebSocket message, one POST body, one GET reply (maxPayload)
    max_sessions: int = 10_000  # open sessions in all
    max_sessions_per_address: int = 32  # open sessions per peer address
    polls_per_second: float = 20.0  # polling requests per session, steady rate (beyond it: answered late)
    poll_burst: int = 40  # ... and burst
    max_outgoing_bytes: int = 1 << 20  # queued for one session; past it the session is dropped ("slow client")
    outgoing_high_water: int = 256 << 10  # the receiver is paused above this, resumed at half of it
    upgrade_timeout: float = 10.0  # from the probing WebSocket's opening to its "5"
    open_handshake_timeout: float = 5.0  # the WebSocket opening handshake
    allowed_origins: tuple[str, ...] = Http.allowed_origins  # as [http] allowed_origins: browsers' Origin patterns
    same_origin: bool = True  # as [http] same_origin: a page of this listener may connect too


class Receiver(Protocol):
    """What a session hands its traffic to (the Socket.IO layer): one per session, made when it opens."""

    def message(self, data: Data) -> None:
        """A message packet's data: text, or bytes for a binary one."""

    def closed(self, reason: str) -> None:
        """The session ended (once; nothing is delivered after it)."""

    def pause_producing(self) -> None:
        """The outgoing queue passed the high-water mark."""

    def resume_producing(self) -> None:
        """It drained to half of it."""


class TokenBucket:
    """`rate` per second, `burst` at once; `take()` says how long the caller must wait for its token."""

    def __init__(self, rate: float, burst: int, clock: IReactorTime):
        self._rate, self._burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._stamp = clock.seconds()

    def take(self) -> float:
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate) - 1
        self._stamp = now
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


# -- a session


OPENED, CLOSING, CLOSED = "open", "closing", "closed"


class EngineIOSession:
    """One Engine.IO session: its outgoing queue, heartbeat, transport (polling or a WebSocket) and upgrade.

    The layer above uses `send`, `close`, `pause_reading`/`resume_reading` and is told what happens
    through its `Receiver`. `server` keeps the table of sessions this one leaves when it ends.
    """

    def __init__(self, server: EngineIOServer, sid: str, address: str, peer: str, transport: str):
        self.server, self.options, self.clock = server, server.options, server.clock
        self.sid, self.address, self.peer = sid, address, peer  # peer: "host:port" of the opening request
        self.transport = transport  # "polling" or "websocket"
        self.receiver: Receiver | None = None
        self.state = OPENED
        self.reason = ""
        self.queued_bytes = 0
        self._queue: deque[tuple[bytes, bool]] = deque()
        self._receiver_paused = False
        self._read_paused = 0
        self._inbox: deque[tuple[int, Data]] = deque()
        self._bucket = TokenBucket(self.options.polls_per_second, self.options.poll_burst, self.clock)
        self._get: Request | None = None  # the held GET
        self._get_not_before = 0.0  # rate: when it may be answered
        self._post: Request | None = None  # the POST whose packets are being handed on
        self._post_waits = False  # ... or wait for their turn (the poll rate)
        self._ws: EngineIOWebSocket | None = None  # the WebSocket transport
        self._ws_paused = False  # its TCP transport is full
        self._probe: EngineIOWebSocket | None = None  # a WebSocket upgrading this polling session
        self._probed = False  # ... that has sent 2probe
        self._answer_call: IDelayedCall | None = None
        self._ping_call: IDelayedCall | None = None
        self._pong_call: IDelayedCall | None = None
        self._upgrade_call: IDelayedCall | None = None
        self._closing_call: IDelayedCall | None = None

    def __repr__(self) -> str:
        return f"<EngineIOSession {self.sid} {self.transport} {self.state} {self.peer}>"

    def handshake(self) -> bytes:
        """The open packet (text), as this session's first packet."""
        opts = self.options
        data = {
            "sid": self.sid,
            "upgrades": ["websocket"] if self.transport == "polling" else [],
            "pingInterval": round(opts.ping_interval * 1000),
            "pingTimeout": round(opts.ping_timeout * 1000),
            "maxPayload": opts.max_payload,
        }
        return b"0" + orjson.dumps(data)

    def can_upgrade(self) -> bool:
        """Whether a WebSocket may open for this session now (it polls, and no other WebSocket is probing)."""
        return self.state == OPENED and self.transport == "polling" and self._probe is None

    def start(self) -> None:
        self._ping_call = self.clock.callLater(self.options.ping_interval, self._ping)

    # -- the layer above

    def send(self, data: Data) -> None:
        """Queue a message packet (text, or bytes for binary)."""
        self._enqueue(*encode_packet(MESSAGE, data))

    def close(self, reason: str = "server close") -> None:
        """End the session after what is queued, with a close packet."""
        if self.state != OPENED:
            return
        self._enqueue(*encode_packet(CLOSE))
        self._end(reason, CLOSING)
        # bounded: a client that never collects the rest (polling) or never reads it (WebSocket)
        self._closing_call = self.clock.callLater(self.options.ping_timeout, self._finish, True)
        self._flush()

    def pause_reading(self) -> None:
        self._read_paused += 1
        if self._read_paused == 1 and self._ws is not None:
            self._ws.transport.pauseProducing()

    def resume_reading(self) -> None:
        if not self._read_paused:
            return
        self._read_paused -= 1
        if self._read_paused:
            return
        if self._ws is not None and self.state != CLOSED:
            self._ws.transport.resumeProducing()
        self._drain()

    # -- outgoing

    def _enqueue(self, packet: bytes, binary: bool) -> None:
        if self.state != OPENED:
            return
        self._queue.append((packet, binary))
        self.queued_bytes += len(packet)
        if self.queued_bytes > self.options.max_outgoing_bytes:
            self._terminate("slow client", abort=True)
            return
        self._flush()

    def _flush(self) -> None:
        if self.state == CLOSED:
            return
        ws = self._ws
        if ws is not None:
            while self._queue and not self._ws_paused and self._ws is ws:
                packet, binary = self._queue.popleft()
                self.queued_bytes -= len(packet)
                ws.sendMessage(packet, isBinary=binary)
            if self.state == CLOSING and not self._queue and ws.state == ws.STATE_OPEN:
                ws.sendClose(1000)
        elif self._get is not None and self._queue and not self._probed and self._answer_call is None:
            # answer in a later turn, so that what is queued in this one goes in the same reply
            delay = max(0.0, self._get_not_before - self.clock.seconds())
            self._answer_call = self.clock.callLater(delay, self._answer_get)
        self._check_pressure()

    def _check_pressure(self) -> None:
        receiver = self.receiver
        if receiver is None or self.state != OPENED:
            return
        high = self.options.outgoing_high_water
        if not self._receiver_paused and self.queued_bytes > high:
            self._receiver_paused = True
            receiver.pause_producing()
        elif self._receiver_paused and self.queued_bytes <= high // 2:
            self._receiver_paused = False
            receiver.resume_producing()

    def _answer_get(self) -> None:
        self._answer_call = None
        request, self._get = self._get, None
        if request is None:
            return
        parts: list[bytes] = []
        size = 0
        limit = self.options.max_payload if self.state == OPENED else None  # closing: all that is left
        while self._queue:
            packet, binary = self._queue[0]
            part = polling_form(packet, binary)
            if parts and limit is not None and size + len(part) + 1 > limit:
                break
            self._queue.popleft()
            self.queued_bytes -= len(packet)
            parts.append(part)
            size += len(part) + 1
        _respond(request, 200, SEPARATOR.encode("ascii").join(parts) if parts else b"6")
        if self.state == CLOSING and not self._queue:
            self._finish()
        else:
            self._check_pressure()

    def _release_get(self, answer: bytes = b"6") -> None:
        """Answer a held GET at once with `answer` (a noop, or a close)."""
        request, self._get = self._get, None
        if self._answer_call is not None:
            self._answer_call.cancel()
            self._answer_call = None
        if request is not None:
            _respond(request, 200, answer)

    # -- heartbeat

    def _ping(self) -> None:
        self._ping_call = None
        self._pong_call = self.clock.callLater(self.options.ping_timeout, self._pong_missed)
        self._enqueue(*encode_packet(PING))

    def _pong_missed(self) -> None:
        self._pong_call = None
        if self._read_paused:
            self._pong_call = self.clock.callLater(self.options.ping_timeout, self._pong_missed)
            return
        self._terminate("ping timeout", abort=True)

    def _pong(self) -> None:
        if self._pong_call is None:
            return  # not asked for: ignored
        self._pong_call.cancel()
        self._pong_call = None
        self._ping_call = self.clock.callLater(self.options.ping_interval, self._ping)

    # -- incoming

    def _take_in(self, packets: Iterable[tuple[int, Data]]) -> None:
        self._post_waits = False
        if self.state == OPENED:
            self._inbox.extend(packets)
        self._drain()

    def _drain(self) -> None:
        while self._inbox and not self._read_paused and self.state == OPENED:
            kind, data = self._inbox.popleft()
            self._handle(kind, data)
        if self.state != OPENED:
            self._inbox.clear()
        if not self._inbox and self._post is not None and not self._post_waits:
            request, self._post = self._post, None
            _respond(request, 200, b"ok")

    def _handle(self, kind: int, data: Data) -> None:
        if kind == MESSAGE:
            if self.receiver is not None:
                self.receiver.message(data)
        elif kind == PONG:
            self._pong()
        elif kind == CLOSE:
            self._terminate("transport close", get_answer=b"6")
        elif kind in (NOOP, PING):
            pass  # a v3 client's ping, or a noop: nothing to do
        else:  # open from a client, or upgrade where there is nothing to upgrade
            self._terminate("parse error")

    # -- polling

    def poll(self, request: Request) -> bytes | int:
        """A GET for this session."""
        if self.state == CLOSED or self._ws is not None:
            return _error(request, 400, BAD_REQUEST)
        if self._get is not None:  # two at once: the first gets a close, this one 400, the session ends
            self._terminate("transport error")
            return _error(request, 400, BAD_REQUEST)
        if self._probed:  # upgrading: polling is over
            return _reply(request, 200, b"6", TEXT_PLAIN)
        self._get = request
        self._get_not_before = self.clock.seconds() + self._bucket.take()
        request.notifyFinish().addErrback(self._get_lost, request)
        self._flush()
        return NOT_DONE_YET

    def _get_lost(self, _failure, request: Request) -> None:
        if self._get is request:
            self._get = None

    def post(self, request: Request, body: bytes) -> bytes | int:
        """A POST for this session, with its body."""
        if self.state == CLOSED or self._ws is not None:
            return _error(request, 400, BAD_REQUEST)
        if self.state == CLOSING:
            return _reply(request, 200, b"ok", TEXT_PLAIN)  # nobody listens any more
        if self._post is not None:
            self._terminate("transport error")
            return _error(request, 400, BAD_REQUEST)
        if len(body) > self.options.max_payload:
            self._terminate("transport error")
            return _error(request, 413, BAD_REQUEST, f"a payload is at most {self.options.max_payload} bytes")
        try:
            packets = decode_payload(body)
        except ProtocolError as e:
            log.info("engine.io {sid} from {peer}: {error}", sid=self.sid, peer=self.peer, error=str(e))
            self._terminate("parse error")
            return _error(request, 400, BAD_REQUEST, str(e))
        self._post = request
        delay = self._bucket.take()
        if delay:
            self._post_waits = True
            self.clock.callLater(delay, self._take_in, packets)
        else:
            self._take_in(packets)
        return NOT_DONE_YET

    # -- WebSocket

    def attach(self, ws: EngineIOWebSocket) -> None:
        """A WebSocket opened for this session: its transport (a WebSocket session) or a probe."""
        if self.transport == "websocket" and self._ws is None and self.state == OPENED:
            self._use(ws)
            self._flush()
            return
        if not self.can_upgrade():
            ws.sendClose(1000)  # one WebSocket per session
            return
        self._probe, self._probed = ws, False
        self._upgrade_call = self.clock.callLater(self.options.upgrade_timeout, self._drop_probe)

    def _use(self, ws: EngineIOWebSocket) -> None:
        self._ws, self._ws_paused, self.transport = ws, False, "websocket"
        ws.transport.registerProducer(WriteSignals(self, ws), True)
        if self._read_paused:
            ws.transport.pauseProducing()

    def ws_message(self, ws: EngineIOWebSocket, raw: Data) -> None:
        try:
            kind, data = decode_packet(raw)
        except ProtocolError as e:
            log.info("engine.io {sid} from {peer}: {error}", sid=self.sid, peer=self.peer, error=str(e))
            if ws is self._ws:
                self._terminate("parse error")
            else:
                self._drop_probe()
            return
        if ws is self._ws:
            if kind == UPGRADE:
                self._terminate("parse error")
            else:
                self._take_in([(kind, data)])
        elif ws is self._probe:
            self._probe_packet(kind, data)

    def _probe_packet(self, kind: int, data: Data) -> None:
        probe = self._probe
        assert probe is not None
        if not self._probed and kind == PING and data == "probe":
            self._probed = True
            probe.sendMessage(b"3probe")
            self._release_get()
        elif self._probed and kind == UPGRADE and self.state == OPENED:
            self._probe = None
            if self._upgrade_call is not None and self._upgrade_call.active():
                self._upgrade_call.cancel()
            self._upgrade_call = None
            self._release_get()
            self._use(probe)
            log.info("engine.io {sid} upgraded to a WebSocket", sid=self.sid)
            self._flush()
        else:
            self._drop_probe()

    def _drop_probe(self) -> None:
        probe, self._probe, self._probed = self._probe, None, False
        if self._upgrade_call is not None and self._upgrade_call.active():
            self._upgrade_call.cancel()
        self._upgrade_call = None
        if probe is not None and probe.state == probe.STATE_OPEN:
            probe.sendClose(1000)
        self._flush()

    def ws_closed(self, ws: EngineIOWebSocket) -> None:
        if ws is self._probe:
            self._drop_probe()
        elif ws is self._ws:
            self._ws = None
            if self.state == OPENED:
                self._terminate("transport close")
            else:
                self._finish()

    def ws_writable(self, ws: EngineIOWebSocket, writable: bool) -> None:
        if ws is not self._ws:
            return
        self._ws_paused = not writable
        if writable:
            self._flush()

    # -- ending

    def _end(self, reason: str, state: str) -> None:
        """Leave the open state and tell the receiver, once."""
        self.state, self.reason = state, reason
        for name in ("_ping_call", "_pong_call", "_upgrade_call"):
            call = getattr(self, name)
            if call is not None and call.active():
                call.cancel()
            setattr(self, name, None)
        receiver, self.receiver = self.receiver, None
        log.info("engine.io {sid} closed: {reason} ({peer})", sid=self.sid, reason=reason, peer=self.peer)
        if receiver is not None:
            receiver.closed(reason)

    def _terminate(self, reason: str, get_answer: bytes = b"1", abort: bool = False) -> None:
        """End the session now: a held GET is answered `get_answer`; a WebSocket is closed (dropped if
        `abort`: a peer that does not read or answer)."""
        if self.state == CLOSED:
            return
        if self.state == OPENED:
            self._end(reason, CLOSING)
        self._queue.clear()
        self.queued_bytes = 0
        self._release_get(get_answer)
        self._finish(abort)

    def _finish(self, abort: bool = False) -> None:
        if self.state == CLOSED:
            return
        if self.state == OPENED:
            self._end("server close", CLOSING)
        self.state = CLOSED
        for name in ("_answer_call", "_closing_call"):
            call = getattr(self, name)
            if call is not None and call.active():
                call.cancel()
            setattr(self, name, None)
        self._release_get(b"1")
        if self._post is not None:
            request, self._post = self._post, None
            _respond(request, 200, b"ok")
        self._inbox.clear()
        self._queue.clear()
        self.queued_bytes = 0
        for ws in (self._ws, self._probe):
            if ws is not None and ws.state in (ws.STATE_OPEN, ws.STATE_CONNECTING):
                if abort:
                    ws.dropConnection(abort=True)
                else:
                    ws.sendClose(1000)
        self._probe = None
        self.server.forget(self)


@implementer(IPushProducer)
class WriteSignals:
    """The streaming producer registered on a WebSocket's TCP transport: tells its session when it is full."""

    def __init__(self, session: EngineIOSession, ws: EngineIOWebSocket):
        self._session, self._ws = session, ws

    def pauseProducing(self) -> None:
        self._session.ws_writable(self._ws, False)

    def resumeProducing(self) -> None:
        self._session.ws_writable(self._ws, True)

    def stopProducing(self) -> None:
        pass  # the connection is going: ws_closed follows


# -- the table of sessions


class EngineIOServer:
    """The open sessions by sid, with the limits on how many; each new session is given a receiver
    from `on_session(session)`."""

    def __init__(
        self, on_session: Callable[[EngineIOSession], Receiver], options: EngineIOOptions, clock: IReactorTime
    ):
        self.on_session, self.options, self.clock = on_session, options, clock
        self.sessions: dict[str, EngineIOSession] = {}
        self.per_address: Counter[str] = Counter()

    def refusal(self, address: str) -> tuple[int, str] | None:
        """Why a new session from `address` may not open, as (HTTP status, message); None if it may."""
        if len(self.sessions) >= self.options.max_sessions:
            return 503, "too many sessions"
        if self.per_address[address] >= self.options.max_sessions_per_address:
            return 429, "too many sessions from this address"
        return None

    def open(self, address: str, peer: str, transport: str) -> EngineIOSession:
        sid = secrets.token_urlsafe(15)
        session = EngineIOSession(self, sid, address, peer, transport)
        self.sessions[sid] = session
        self.per_address[address] += 1
        log.info("engine.io {sid} opened: {transport} {peer}", sid=sid, transport=transport, peer=peer)
        session.receiver = self.on_session(session)
        session.start()
        return session

    def forget(self, session: EngineIOSession) -> None:
        if self.sessions.get(session.sid) is not session:
            return
        del self.sessions[session.sid]
        self.per_address[session.address] -= 1
        if self.per_address[session.address] <= 0:
            del self.per_address[session.address]

    def close_all(self, reason: str = "server shutting down") -> None:
        for session in list(self.sessions.values()):
            session.close(reason)


# -- HTTP


def _reply(request: Request, status: int, body: bytes, content_type: bytes) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", content_type)
    return body


def _error(request: Request, status: int, code: int, message: str = "") -> bytes:
    body = orjson.dumps({"code": code, "message": message or ERROR_MESSAGES[code]})
    return _reply(request, status, body, b"application/json")


def _respond(request: Request, status: int, body: bytes) -> None:
    """Answer a request held with NOT_DONE_YET (unless its client has gone)."""
    if request.finished or getattr(request, "_disconnected", False):
        return
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", TEXT_PLAIN)
    request.write(body)
    request.finish()


def _peer(request: Request) -> tuple[str, str]:
    address = request.getClientAddress()
    host = str(getattr(address, "host", address))
    return host, f"{host}:{getattr(address, 'port', '')}"


class EngineIOResource(Resource):
    """/socket.io/ (a leaf): polling requests, and WebSocket requests handed to Autobahn."""

    isLeaf = True

    def __init__(self, server: EngineIOServer, addresses=None):
        """`addresses`: the Site's per-address connection count (a listeners.AddressCounter), whose place
        a WebSocket gives back when it closes (the HTTP channel it took over never ends)."""
        super().__init__()
        self.engine = server
        self.factory = EngineIOWebSocketFactory(server, addresses)
        self._websocket = WebSocketResource(self.factory)
        self._origins = wildcards2patterns(list(server.options.allowed_origins))

    def render(self, request: Request) -> bytes | int:
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        origin = (request.getHeader(b"origin") or b"").decode("latin-1")
        host = (request.getHeader(b"host") or b"").decode("latin-1")
        options = self.engine.options
        if not origin_allowed(origin, host, request.isSecure(), self._origins, options.same_origin):
            return _error(request, 403, FORBIDDEN, f"origin {origin[:100]!r} not allowed")
        args = request.args
        if args.get(b"EIO") != [b"4"]:
            return _error(request, 400, UNSUPPORTED_VERSION)
        transport = (args.get(b"transport") or [b""])[0]
        sid = (args.get(b"sid") or [b""])[0].decode("latin-1")
        address, peer = _peer(request)
        if transport == b"websocket":
            if request.method != b"GET":
                return _error(request, 400, BAD_HANDSHAKE_METHOD)
            if sid:
                if sid not in self.engine.sessions:
                    return _error(request, 400, UNKNOWN_SID)
                # one that may not upgrade now is still accepted, then closed (as the reference server does)
            else:
                refused = self.engine.refusal(address)
                if refused:
                    return _error(request, refused[0], FORBIDDEN, refused[1])
            return self._websocket.render(request)
        if transport != b"polling":
            return _error(request, 400, UNKNOWN_TRANSPORT)
        if not sid:
            if request.method != b"GET":
                return _error(request, 400, BAD_HANDSHAKE_METHOD)
            refused = self.engine.refusal(address)
            if refused:
                return _error(request, refused[0], FORBIDDEN, refused[1])
            opened = self.engine.open(address, peer, "polling")
            return _reply(request, 200, opened.handshake(), TEXT_PLAIN)
        session = self.engine.sessions.get(sid)
        if session is None:
            return _error(request, 400, UNKNOWN_SID)
        if request.method == b"GET":
            return session.poll(request)
        if request.method == b"POST":
            assert request.content is not None, "the body is read before render"
            return session.post(request, request.content.read(options.max_payload + 1))
        return _error(request, 400, BAD_REQUEST)


# -- WebSocket


class EngineIOWebSocket(WebSocketServerProtocol):
    """A WebSocket at /socket.io/: the transport of a new session, or one upgrading a polling session."""

    transport: IStreamTransport
    log = Logger()

    def __init__(self):
        super().__init__()
        self.session: EngineIOSession | None = None
        self.peer_host: str | None = None
        self._sid = ""

    def onConnect(self, request):
        # The resource checked EIO, transport, Origin and the sid before handing the request over.
        self._sid = (request.params.get("sid") or [""])[0]
        server = self.factory.server
        if self._sid and self._sid not in server.sessions:
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, "Session ID unknown")
        if not self._sid and (refused := server.refusal(self.peer_host or "")):
            raise ConnectionDeny(refused[0], refused[1])
        return None

    def onOpen(self) -> None:
        transport = self.transport
        if getattr(transport, "producer", None) is not None:
            transport.unregisterProducer()  # the HTTPChannel whose transport Autobahn took over
        server = self.factory.server
        if self._sid:
            session = server.sessions.get(self._sid)
            if session is None:
                self.sendClose(1000)
                return
        else:
            peer = transport.getPeer()
            host = str(getattr(peer, "host", peer))
            session = server.open(host, f"{host}:{getattr(peer, 'port', '')}", "websocket")
            self.sendMessage(session.handshake())
        self.session = session
        session.attach(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.session is not None:
            self.session.ws_message(self, payload if isBinary else payload.decode("utf-8"))

    def onClose(self, wasClean: bool, code, reason) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.ws_closed(self)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(reason)
        addresses = self.factory.addresses
        if addresses is not None:
            addresses.release(self.peer_host)


class EngineIOWebSocketFactory(WebSocketServerFactory):
    protocol = EngineIOWebSocket

    def __init__(self, server: EngineIOServer, addresses=None):
        super().__init__()
        self.server, self.addresses = server, addresses
        options = server.options
        self.setProtocolOptions(
            maxFramePayloadSize=options.max_payload,
            maxMessagePayloadSize=options.max_payload,
            openHandshakeTimeout=options.open_handshake_timeout,
            closeHandshakeTimeout=1.0,
            autoPingInterval=0,  # Engine.IO's heartbeat does it
            allowedOrigins=["*"],  # the resource applied origin_allowed already
            allowNullOrigin=False,
            webStatus=False,
            trustXForwardedFor=0,
            failByDrop=False,
            perMessageCompressionAccept=lambda offers: None,
        )

    def buildProtocol(self, addr):
        protocol = cast(EngineIOWebSocket, super().buildProtocol(addr))  # built from self.protocol
        protocol.peer_host = getattr(addr, "host", None)
        return protocol
