"""Socket.IO apps (seeds 003 and 004) on the chat core: each Socket.IO socket is a Session of the events or
colon dialect, like a WebSocket at /ws.

    connect      the auth payload logs in: {"token": SESSION_KEY} or {"username", "password"}, plus an optional
                 "dialect": "events" (default, seed 003's names) or "colon" (seed 004's). A refusal is a
                 connect_error whose message says why and whose data is {"code": CODE}.
    client event `socket.emit(NAME, DATA)` is the frame {"event": NAME, "data": DATA} (colon: {"type": NAME,
                 "data": DATA}); bytes in DATA (binary attachments) arrive as base64 strings, as a dialect
                 frame carries media.
    ack          with an acknowledgement callback, the frames replying to that event go to the callback
                 instead of being emitted: one argument, the list of reply frames as objects
                 ([{"event": NAME, "data": DATA}, ...]; colon: {"type", "data"}), or {"error": {"code",
                 "message"}} when the request was refused.
    server event every frame the session sends otherwise is emitted as NAME with DATA.

Flow control is the session's: it is the socket's streaming producer (paused while Engine.IO's queue is
past its high-water mark), and it pauses the socket's reading while requests wait. Engine.IO's heartbeat
closes dead sessions, so the idle deadline does not apply; the login happens at connect.
"""

import base64
from typing import Any

import orjson
from twisted.internet.defer import Deferred
from zope.interface import implementer

from ..core import commands as c
from ..core.interfaces import IPrincipal
from ..dialects import DIALECTS
from ..errors import ChatError
from ..session import ISessionTransport, Session
from .connection import Connections
from .engineio import EngineIOOptions
from .socketio import ConnectRefused, ISocket, ISocketHandler, ISocketIOApplication, SocketIOOptions, SocketIOServer

KEYS = {"events": "event", "colon": "type"}  # the field that names a frame, per dialect
ERRORS = {"events": "SERVER_ERROR", "colon": "ERROR"}


@implementer(IPrincipal)
class Knocking:
    """The principal of a Socket.IO client checking its password before it is connected (attached to nothing)."""

    user = key_hash = None
    open = operator = False

    def __init__(self, peer: str):
        self.peer = peer


def _text(value: Any) -> Any:
    """`value` with every bytes (a binary attachment) replaced by its base64 text."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list):
        return [_text(v) for v in value]
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    return value


def refusal(error: ChatError) -> dict:
    """`connect_error`'s data for a refused login: its code, and `retryAfter` (seconds) for a throttled one."""
    data = {"code": error.code}
    if "retry_after" in error.details:
        data["retryAfter"] = error.details["retry_after"]
    return data


@implementer(ISocketIOApplication)
class ChatSocketIO:
    def __init__(self, connections: Connections, max_frame_bytes: int):
        self.connections, self.max_frame_bytes = connections, max_frame_bytes

    def connect(self, auth: dict | None, peer: str) -> Deferred:
        return Deferred.fromCoroutine(self._connect(auth or {}, peer))

    async def _connect(self, auth: dict, peer: str) -> "SocketSession":
        dialect = auth.get("dialect", "events")
        if dialect not in KEYS:
            raise ConnectRefused('auth.dialect must be "events" or "colon"')
        core = self.connections.core
        token = auth.get("token")
        if isinstance(token, str) and token:
            try:
                user = await core.authenticate(token, peer)
            except ChatError as e:
                raise ConnectRefused(e.message, refusal(e)) from None
            if user is None:
                raise ConnectRefused("unknown or revoked session key", {"code": 2001})
        elif isinstance(auth.get("username"), str) and isinstance(auth.get("password"), str):
            try:
                result = await core.execute(Knocking(peer), c.Login(auth["username"], auth["password"]))
            except ChatError as e:
                raise ConnectRefused(e.message, refusal(e)) from None
            token = result.session_key
        else:
            raise ConnectRefused('auth is {"token": SESSION_KEY} or {"username": ..., "password": ...}')
        return SocketSession(self.connections, dialect, token, self.max_frame_bytes)


@implementer(ISocketHandler, ISessionTransport)
class SocketSession:
    """One Socket.IO socket: its Session's transport, and the handler of its events."""

    def __init__(self, connections: Connections, dialect: str, token: str, max_frame_bytes: int):
        self.connections, self.dialect, self._token = connections, dialect, token
        self.max_frame_bytes = max_frame_bytes  # an event's data is bounded by Engine.IO's maxPayload
        self.key = KEYS[dialect]
        self.socket: ISocket | None = None
        self.session: Session | None = None

    # ISocketHandler

    def connected(self, socket: ISocket) -> None:
        self.socket = socket
        kind = "socketio-" + socket.transport_name
        self.session = self.connections.open_on(socket, self, kind, socket.peer, idle=False)
        self.session.start(self._token, DIALECTS[self.dialect]())

    def event(self, name: str, args: list, ack) -> None:
        session = self.session
        if session is None:
            return
        self.connections.heard(session)
        data = _text(args[0]) if args else {}
        raw = orjson.dumps({self.key: name, "data": data})
        session.frame_received(raw, None if ack is None else self._answer(ack))

    def _answer(self, ack):
        def answer(frames: list[bytes]) -> None:
            replies = [orjson.loads(f) for f in frames]
            errors = [r for r in replies if r.get(self.key) == ERRORS[self.dialect]]
            if errors:
                data = errors[0].get("data") or {}
                ack({"error": {"code": data.get("code"), "message": data.get("message")}})
            else:
                ack(replies)

        return answer

    def disconnected(self, reason: str) -> None:
        session, self.session = self.session, None
        if session is not None:
            self.connections.lost(session, f" ({reason})")

    # ISessionTransport

    def write_frames(self, frames: list[bytes]) -> None:
        socket = self.socket
        if socket is None or not socket.connected:
            return
        for frame in frames:
            out = orjson.loads(frame)
            socket.emit(out[self.key], out.get("data"))

    def close(self, restarting: bool = False) -> None:
        if self.socket is not None:
            if restarting:
                self.socket.drop()  # the client reconnects by itself (to this server once it is back)
            else:
                self.socket.disconnect()  # kicked, banned, or closed for its own good: it stays away

    def abort(self) -> None:
        self.close()

    def pause_reading(self) -> None:
        if self.socket is not None:
            self.socket.pause_reading()

    def resume_reading(self) -> None:
        if self.socket is not None:
            self.socket.resume_reading()


def socketio_server(connections: Connections, config, clock, addresses) -> SocketIOServer:
    """The Socket.IO server of a service, from its [socketio] and [http] config."""
    sio, http = config.socketio, config.http_options
    engineio = EngineIOOptions(
        ping_interval=sio.ping_interval, ping_timeout=sio.ping_timeout, max_payload=sio.max_payload,
        max_sessions=sio.max_sessions, max_sessions_per_address=sio.max_sessions_per_address,
        polls_per_second=sio.polls_per_second, poll_burst=sio.poll_burst, max_outgoing_bytes=sio.max_outgoing_bytes,
        allowed_origins=http.allowed_origins, same_origin=http.same_origin,
    )  # fmt: skip
    options = SocketIOOptions(connect_timeout=sio.connect_timeout, max_attachments=sio.max_attachments,
                              max_attachment_bytes=sio.max_payload)  # fmt: skip
    return SocketIOServer(ChatSocketIO(connections, sio.max_payload), clock, engineio, options, addresses=addresses)
