"""The REST API of seed 003 on the HTTP Site (docs/http.md): JSON in and out, bearer auth by session key.

POST /register, POST /login, GET /conversations, GET /messages?cid=ID[&before=&after=&limit=],
GET /files/<id>; and for the web page: GET /rooms (public rooms to browse), GET /members?cid=ID
(who is in a room, and connected now), POST /uploads and PUT /uploads/<key>/<index> (a file in
chunks, through the core's one upload path). Errors are JSON {"code", "message"} with the core's codes and an HTTP status
(`status_for`). Request bodies are bounded (`http.max_body_bytes`): twisted.web has no limit of
its own, so BoundedRequest refuses a too-large Content-Length at once and stops reading a body that
grows past it (413, connection closed).
"""

import math
import re
import secrets
import urllib.parse
from typing import cast

import orjson
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from .. import errors
from ..core import commands as c
from ..core.interfaces import IPrincipal
from ..core.model import Address
from ..dialects.shapes import conversation_name, message_json, room_json
from ..errors import ChatError

log = Logger()
INLINE_TYPES = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "audio/webm",
    "text/plain",
}


def status_for(code: int) -> int:
    if code in (errors.UNAUTHORIZED, errors.INVALID_CREDENTIALS, errors.USER_NOT_FOUND):
        return 401
    if code in (errors.TOO_MANY_ATTEMPTS, errors.TOO_MANY_REGISTRATIONS):
        return 429
    if code == errors.STORAGE_UNWRITABLE:
        return 503
    if code == errors.FILE_SPACE_FULL:
        return 507
    if code in (errors.BODY_TOO_LARGE, errors.TOO_LARGE):
        return 413
    if code == errors.METHOD_NOT_ALLOWED:
        return 405
    if code in (
        errors.NOT_FOUND,
        errors.NO_SUCH_ROOM,
        errors.NO_SUCH_USER,
        errors.NO_SUCH_MESSAGE,
        errors.NO_SUCH_MEDIA,
    ):
        return 404
    if code in (errors.NOT_A_MEMBER, errors.PRIVATE_ROOM, errors.NOT_LEADER, errors.NOT_AUTHOR):
        return 403
    if code in (errors.USER_EXISTS, errors.NAME_TAKEN):
        return 409
    if code == errors.STORAGE_UNAVAILABLE:
        return 503
    if code >= 9000:
        return 500
    return 400


def _error_body(error: ChatError) -> bytes:
    return orjson.dumps({"code": error.code, "message": error.message})


class BoundedRequest(Request):
    """A Request whose body may not exceed `max_body` bytes (or, under a path prefix of `max_body_under`,
    that prefix's bound)."""

    max_body = 65536
    max_body_under: dict[bytes, int] = {}  # noqa: RUF012 (set per Site by bounded_request)
    _refused = False
    _received = 0

    def gotLength(self, length):
        # the request line is parsed (by the channel) before the headers end: choose the bound by path
        path = getattr(self.channel, "_path", b"") or b""
        self.max_body = next((n for prefix, n in self.max_body_under.items() if path.startswith(prefix)), self.max_body)
        if length is not None and length > self.max_body:
            self._refuse()
        super().gotLength(None if self._refused else length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self.max_body:
            self._refuse()
            return
        super().handleContentChunk(data)

    def _refuse(self) -> None:
        if self._refused:
            return
        self._refused = True
        body = _error_body(ChatError(errors.BODY_TOO_LARGE, f"request bodies are at most {self.max_body} bytes"))
        head = (
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
        )
        transport = self.channel.transport
        assert transport is not None, "a body is arriving"
        transport.write(head + body)
        transport.loseConnection()

    def requestReceived(self, command, path, version):
        if self._refused:
            return
        super().requestReceived(command, path, version)


def bounded_request(max_body: int, under: dict[bytes, int] | None = None) -> type[BoundedRequest]:
    attributes = {"max_body": max_body, "max_body_under": dict(under or {})}
    return cast(type[BoundedRequest], type("BoundedRequest", (BoundedRequest,), attributes))


@implementer(IPrincipal)
class ApiClient:
    """The core's view of a REST caller: a user, never attached to the bus (REST is not a connection)."""

    open = False
    operator = False
    key_hash = None

    def __init__(self, user: str | None = None, peer: str = ""):
        self.user, self.peer = user, peer


class Endpoint(Resource):
    """One JSON endpoint; subclasses define async get/post(request[, client])."""

    isLeaf = True
    auth = True

    def __init__(self, core):
        super().__init__()
        self.core = core

    def render(self, request):
        method = request.method.decode("ascii", "replace").lower()
        handler = getattr(self, method, None) if method in ("get", "post", "put") else None  # never a helper
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        if handler is None:
            return self._fail(
                request, ChatError(errors.METHOD_NOT_ALLOWED, f"{request.method.decode()} is not allowed here")
            )
        Deferred.fromCoroutine(self._run(handler, request))
        return NOT_DONE_YET

    async def _run(self, handler, request) -> None:
        try:
            args = [request]
            if self.auth:
                args.append(await self.client(request))
            result = await handler(*args)
            if result is not None and not request.finished and not request._disconnected:
                status, body = result
                request.setResponseCode(status)
                request.setHeader(b"Content-Type", b"application/json")
                request.write(orjson.dumps(body))
                request.finish()
        except ChatError as e:
            self._fail(request, e)
        except Exception:
            log.failure("REST {method} {path} failed", method=request.method, path=request.path)
            self._fail(request, ChatError(errors.SERVER_ERROR))

    def _fail(self, request, error: ChatError):
        if request.finished or request._disconnected:
            return b""
        request.setResponseCode(status_for(error.code))
        request.setHeader(b"Content-Type", b"application/json")
        if error.code in (errors.UNAUTHORIZED,):
            request.setHeader(b"WWW-Authenticate", b'Bearer realm="chatd"')
        retry_after = error.details.get("retry_after")
        if isinstance(retry_after, int):
            request.setHeader(b"Retry-After", str(retry_after).encode("ascii"))
        request.write(_error_body(error))
        request.finish()
        return NOT_DONE_YET

    async def client(self, request) -> ApiClient:
        auth = (request.getHeader(b"authorization") or b"").decode("latin-1")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        host = request.getClientAddress().host
        user = await self.core.authenticate(token, host)
        if user is None:
            raise ChatError(errors.UNAUTHORIZED)
        return ApiClient(user, host)

    @staticmethod
    def body(request) -> dict:
        try:
            data = orjson.loads(request.content.read() or b"{}")
        except orjson.JSONDecodeError as e:
            raise ChatError(errors.BAD_JSON, f"not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise ChatError(errors.BAD_FRAME, "the body is a JSON object")
        return data

    @staticmethod
    def field(data: dict, key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str):
            raise ChatError(errors.BAD_FIELD, f"{key} (a string) is required")
        return value

    @staticmethod
    def int_arg(request, name: str, default):
        raw = request.args.get(name.encode(), [None])[0]
        if raw is None or raw == b"":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ChatError(errors.BAD_FIELD, f"{name} must be an integer") from None
        if value < 0:
            raise ChatError(errors.BAD_FIELD, f"{name} must not be negative")
        return value


class RegisterEndpoint(Endpoint):
    auth = False

    async def post(self, request):
        data = self.body(request)
        command = c.Register(self.field(data, "username"), self.field(data, "password"))
        user = await self.core.execute(ApiClient(peer=request.getClientAddress().host), command)
        return 201, {"username": user}


class LoginEndpoint(Endpoint):
    """A login is logged as a connection's is (login_ok / login_failed), with transport "rest"."""

    auth = False
    log = Logger(namespace="chatdaemon.session")

    async def post(self, request):
        data = self.body(request)
        if "token" in data:
            command = c.Login(session_key=self.field(data, "token"))
        else:
            command = c.Login(self.field(data, "username"), self.field(data, "password"))
        peer = request.getClientAddress().host
        try:
            result = await self.core.execute(ApiClient(peer=peer), command)
        except ChatError as e:
            self.log.info(
                "login failed: rest {peer}: {code}", event="login_failed", transport="rest", peer=peer, code=e.code
            )
            raise
        self.log.info(
            "login ok: {user} on rest {peer}", event="login_ok", user=result.user, transport="rest", peer=peer
        )
        return 200, {"username": result.user, "token": result.session_key, "session_key": result.session_key}


class ConversationsEndpoint(Endpoint):
    async def get(self, request, client):
        out = []
        for s in await self.core.execute(client, c.Conversations()):
            entry = room_json(s.room, client.user)
            entry["last_message"] = message_json(s.last) if s.last else None
            entry["unread"] = s.unread
            out.append(entry)
        return 200, {"conversations": out}


class RoomsEndpoint(Endpoint):
    async def get(self, request, client):
        listings = await self.core.execute(client, c.ListRooms())
        rooms = [
            {"cid": r.room.id, "kind": r.room.kind, "name": conversation_name(r.room, client.user),
             "members": r.members, "online": r.online, "joined": r.joined}
            for r in listings
        ]  # fmt: skip
        return 200, {"rooms": rooms}


class MembersEndpoint(Endpoint):
    async def get(self, request, client):
        cid = request.args.get(b"cid", [b""])[0].decode("utf-8", "replace")
        if not cid:
            raise ChatError(errors.BAD_FIELD, "cid is required")
        room, members = await self.core.execute(client, c.Members(cid))
        out = [{"user": m.user, "online": m.online, "status": m.status if m.online else ""} for m in members]
        return 200, {"cid": room.id, "members": out}


UPLOAD_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


class UploadsEndpoint(Endpoint):
    """POST /uploads announces a file (StartUpload); PUT /uploads/<key>/<index> stores chunk `index`
    (1-based, the raw bytes as the body, at most `chunk_bytes`); the chunk that completes the file
    posts it (PutChunk), answered 201 with the message."""

    def __init__(self, core, chunk_bytes: int):
        super().__init__(core)
        self.chunk_bytes = chunk_bytes

    async def post(self, request, client):
        if request.postpath not in ([], [b""]):
            raise ChatError(errors.NOT_FOUND, "announce an upload with POST /uploads")
        data = self.body(request)
        size = data.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ChatError(errors.BAD_FIELD, "size (a number of bytes) is required")
        mime = data.get("mime") or "application/octet-stream"
        if not isinstance(mime, str) or not re.fullmatch(r"[\w.+-]+/[\w.+-]+", mime):
            raise ChatError(errors.BAD_FIELD, "mime must be a media type such as image/png")
        key = data.get("key") or secrets.token_urlsafe(12)
        if not isinstance(key, str) or not UPLOAD_KEY.fullmatch(key):
            raise ChatError(errors.BAD_FIELD, "key is 1-64 of A-Z a-z 0-9 _ -")
        chunks = max(1, math.ceil(size / self.chunk_bytes))
        command = c.StartUpload(
            key, Address(self.field(data, "cid")), self.field(data, "name"), mime, size, chunks=chunks
        )
        upload = await self.core.execute(client, command)
        return 201, {"key": key, "chunks": chunks, "chunk_bytes": self.chunk_bytes, "missing": upload.missing()}

    async def put(self, request, client):
        parts = [p.decode("ascii", "replace") for p in request.postpath]
        if len(parts) != 2 or not UPLOAD_KEY.fullmatch(parts[0]) or not parts[1].isdigit():
            raise ChatError(errors.NOT_FOUND, "chunks go to PUT /uploads/<key>/<index>")
        data = request.content.read()
        if len(data) > self.chunk_bytes:
            raise ChatError(errors.BAD_CHUNK, f"a chunk is at most {self.chunk_bytes} bytes")
        result = await self.core.execute(client, c.PutChunk(parts[0], int(parts[1]), data))
        body = {"key": result.key, "index": result.index, "total": result.total, "missing": result.missing}
        if result.message is None:
            return 200, body
        return 201, body | {"message": message_json(result.message)}


class MessagesEndpoint(Endpoint):
    async def get(self, request, client):
        cid = request.args.get(b"cid", [b""])[0].decode("utf-8", "replace")
        if not cid:
            raise ChatError(errors.BAD_FIELD, "cid is required")
        before, after = self.int_arg(request, "before", 0), self.int_arg(request, "after", None)
        limit = self.int_arg(request, "limit", 50)
        page = await self.core.execute(client, c.History(Address.room(cid), before, after, limit=limit))
        messages = [message_json(m, page.changes, page.reads) for m in page.messages]
        return 200, {
            "cid": page.room.id,
            "messages": messages,
            "read_upto": page.reads.get(client.user, 0),
            "has_more": page.more,
        }


def content_disposition(name: str, inline: bool) -> bytes:
    """A safe header for a display name: an ASCII fallback and the RFC 5987 UTF-8 form."""
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", name)[:100] or "file"
    quoted = urllib.parse.quote(name, safe="")
    return f"{'inline' if inline else 'attachment'}; filename=\"{ascii_name}\"; filename*=UTF-8''{quoted}".encode(
        "ascii"
    )


STREAM_BYTES = 256 * 1024  # read from the file store at a time, for a download


@implementer(IPushProducer)
class _Paced:
    """A download's producer: paused while the client's connection has too much unsent."""

    def __init__(self):
        self.paused = self.stopped = False
        self._waiting: Deferred | None = None

    def ready(self) -> Deferred:
        """Fires when more may be written."""
        if not self.paused or self.stopped:
            return succeed(None)
        self._waiting = Deferred()
        return self._waiting

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.callback(None)

    def stopProducing(self) -> None:
        self.stopped = True
        self.resumeProducing()


class FilesResource(Endpoint):
    isLeaf = True

    def __init__(self, core, file_store):
        super().__init__(core)
        self.file_store = file_store

    async def get(self, request, client):
        file_id = request.postpath[0].decode("ascii", "replace") if request.postpath else ""
        if not re.fullmatch(r"[0-9a-f]{32}", file_id):
            raise ChatError(errors.NO_SUCH_MEDIA, "no such file")
        ref = await self.core.execute(client, c.FileInfo(file_id))
        mime = ref.mime if re.fullmatch(r"[\w.+-]+/[\w.+-]+", ref.mime) else "application/octet-stream"
        request.setResponseCode(200)
        request.setHeader(b"Content-Type", mime.encode("ascii"))
        request.setHeader(b"Content-Length", str(ref.size).encode())
        request.setHeader(b"Content-Disposition", content_disposition(ref.name, mime in INLINE_TYPES))
        request.setHeader(b"Content-Security-Policy", b"sandbox; default-src 'none'")
        paced = _Paced()
        request.registerProducer(paced, True)
        offset = 0
        try:
            while offset < ref.size and not paced.stopped:
                data = await self.file_store.read(ref.id, offset, STREAM_BYTES)
                if not data:
                    break
                request.write(data)
                offset += len(data)
                await paced.ready()
        finally:
            request.unregisterProducer()
        if not request._disconnected:
            request.finish()
        return None


class NotFound(Endpoint):
    auth = False

    def render(self, request):
        return self._fail(request, ChatError(errors.NOT_FOUND, "no such endpoint"))


def rest_children(core, file_store, chunk_bytes: int = 32768) -> dict:
    """`chunk_bytes`: the largest chunk PUT /uploads takes (at most the request body limit)."""
    return {
        b"register": RegisterEndpoint(core),
        b"login": LoginEndpoint(core),
        b"conversations": ConversationsEndpoint(core),
        b"messages": MessagesEndpoint(core),
        b"rooms": RoomsEndpoint(core),
        b"members": MembersEndpoint(core),
        b"uploads": UploadsEndpoint(core, chunk_bytes),
        b"files": FilesResource(core, file_store),
    }
