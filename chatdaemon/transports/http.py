"""The HTTP listener: one twisted.web Site with GET /health (readiness), GET /metrics (Prometheus),
the WebSocket at /ws, the REST API (transports/rest.py) and the web page (web/static) at /.

Deadlines (slowloris): twisted.web's idle timeout restarts with every byte, so a client trickling a
header a byte at a time would hold its connection forever. Each connection here times its request
instead: the line and headers must arrive within `http.headers_timeout` seconds of the request's
first byte, and a body within `http.body_timeout` seconds of the headers' end; past either, the
client gets 408 with {"code": 7032, "message"} and the connection is closed. Once a request's
headers (and body) are in, nothing is timed: a WebSocket upgrade, a Socket.IO long poll or a
download may last as long as it needs. The next request on a kept-alive connection is timed from
its own first byte; between requests, twisted.web's idle timeout applies.
"""

import orjson
from prometheus_client.twisted import MetricsResource
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.pages import notFound
from twisted.web.resource import Resource
from twisted.web.server import Site

from .. import errors
from ..listeners import Refused
from ..web import STATIC

# The only files served from web/static, by name (so never a directory listing, nor any other file).
PAGE_FILES = {
    b"": ("index.html", "text/html; charset=utf-8"),
    b"index.html": ("index.html", "text/html; charset=utf-8"),
    b"chat.js": ("chat.js", "text/javascript; charset=utf-8"),
    b"chat.css": ("chat.css", "text/css; charset=utf-8"),
}
PAGE_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
    b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class Health(Resource):
    """200 {"status": "ok"} while chatd serves; 503 with "starting", "stopping" or "storage unavailable" (and then
    "storage": why) otherwise."""

    isLeaf = True

    def __init__(self, state, storage=lambda: ""):
        super().__init__()
        self._state, self._storage = state, storage

    def render_GET(self, request) -> bytes:
        state = self._state()
        request.setResponseCode(200 if state == "ok" else 503)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        fault = self._storage()
        return orjson.dumps({"status": state} | ({"storage": fault} if fault else {}))


class PageFile(Resource):
    """One file of the web page, read once at start-up, with its Content-Type and a strict policy."""

    isLeaf = True

    def __init__(self, body: bytes, content_type: str):
        super().__init__()
        self.body, self.content_type = body, content_type.encode("ascii")

    def render_GET(self, request) -> bytes:
        if request.postpath:  # /chat.js/anything
            return notFound().render(request)
        request.setHeader(b"Content-Type", self.content_type)
        request.setHeader(b"Cache-Control", b"no-cache")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        request.setHeader(b"Referrer-Policy", b"no-referrer")
        request.setHeader(b"Content-Security-Policy", PAGE_POLICY)
        request.setHeader(b"X-Frame-Options", b"DENY")
        return self.body

    render_HEAD = render_GET


def page_children() -> dict:
    return {name: PageFile((STATIC / file).read_bytes(), mime) for name, (file, mime) in PAGE_FILES.items()}


def _ignore(data: bytes) -> None:
    """What a channel past its deadline does with whatever still trickles in."""


class CountedChannel(HTTPChannel):
    """An HTTP connection that gives back its place in the site's per-address count when it ends, and that times
    each request's headers and body (see the module's docstring). (One the WebSocket took over never ends
    here: the WebSocket protocol gives the place back.)"""

    site: "GuardedSite"  # set by Site.buildProtocol
    host = None
    _phase = "idle"  # "idle" (between requests), "headers", "body", "handling" (all in: answering)
    _deadline: IDelayedCall | None = None

    def dataReceived(self, data: bytes) -> None:
        if self._phase == "idle" and data:
            self._phase = "headers"
            self._arm(self.site.headers_timeout, "line and headers")
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._disarm()
        super().allHeadersReceived()
        if self._phase == "headers" and self.length != 0:  # a body follows (Content-Length, or chunked)
            self._phase = "body"
            self._arm(self.site.body_timeout, "body")

    def allContentReceived(self) -> None:
        self._disarm()
        self._phase = "handling"
        super().allContentReceived()

    def requestDone(self, request) -> None:
        self._phase = "idle"  # the next request (perhaps buffered already) is timed from its first byte
        super().requestDone(request)

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.site.reactor.callLater(seconds, self._expired, seconds, what)

    def _disarm(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def _expired(self, seconds: float, what: str) -> None:
        self._deadline = None
        transport = self.transport
        if transport is None:
            return
        self._phase = "expired"
        self.site.on_timeout()
        message = f"the request's {what} did not arrive within {seconds:g} seconds"
        body = orjson.dumps({"code": errors.REQUEST_TIMEOUT, "message": message})
        head = (
            "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        self.dataReceived = _ignore  # type: ignore[method-assign]
        transport.write(head.encode("ascii") + body)
        transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._disarm()
        super().connectionLost(reason)
        self.site.addresses.release(self.host)


class GuardedSite(Site):
    """A Site that lets each address hold at most so many connections; past it: 503 and close.

    Its access log is one debug event per request (`http_request`: method, path without the query,
    which may hold a session key, status, bytes, peer): seen with `[log] level = "debug"`."""

    # Twisted types HTTPFactory.protocol as its own channel factory; Site.buildProtocol calls any channel class.
    protocol = CountedChannel  # type: ignore[assignment]
    noisy = False
    access = Logger(namespace="chatdaemon.http.access")

    headers_timeout = 10.0  # seconds for a request's line and headers, from its first byte
    body_timeout = 60.0  # seconds for its body, from the end of its headers

    def __init__(self, root, addresses, refused: bytes, on_refused, on_timeout=lambda: None):
        super().__init__(root)
        self.addresses, self._refused, self._on_refused = addresses, refused, on_refused
        self.on_timeout = on_timeout  # a request missed its deadline (metrics)

    def buildProtocol(self, addr):
        host = getattr(addr, "host", None)
        if not self.addresses.acquire(host):
            self._on_refused()
            return Refused(self._refused)
        channel = super().buildProtocol(addr)
        channel.host = host
        return channel

    def log(self, request) -> None:
        self.access.debug(
            "{method} {path} {code} {length} {peer}",
            event="http_request", method=request.method.decode("latin-1"),
            path=request.path.decode("latin-1"), code=request.code, length=request.sentLength,
            peer=getattr(request.getClientAddress(), "host", "-"),
        )  # fmt: skip


def too_many_connections() -> bytes:
    """What an HTTP connection past the per-address limit is told: 503 with the JSON error."""
    body = orjson.dumps({"code": errors.TOO_MANY_CONNECTIONS, "message": errors.MESSAGES[errors.TOO_MANY_CONNECTIONS]})
    head = f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode("ascii") + body


def make_site(
    state,
    registry,
    addresses,
    on_refused,
    root: Resource | None = None,
    children: dict | None = None,
    options=None,
    on_timeout=lambda: None,
    storage=lambda: "",
) -> GuardedSite:
    """`state()` is "starting", "ok" or "stopping"; `registry` is what /metrics serves; `addresses`
    counts the open connections per peer address (an AddressCounter); `options`: the [http] config (its
    deadlines); `on_timeout()` is called when a request misses one; `storage()` says why storage cannot be
    written ("" while it can)."""
    root = root if root is not None else Resource()
    root.putChild(b"health", Health(state, storage))
    root.putChild(b"metrics", MetricsResource(registry))
    for name, child in (children or {}).items():
        root.putChild(name, child)
    site = GuardedSite(root, addresses, too_many_connections(), on_refused, on_timeout)
    if options is not None:
        site.headers_timeout, site.body_timeout = options.headers_timeout, options.body_timeout
    site.displayTracebacks = False
    return site
