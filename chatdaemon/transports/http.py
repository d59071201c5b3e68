"""The HTTP listener: one twisted.web Site with GET /health (readiness), GET /metrics (Prometheus),
the WebSocket at /ws, the REST API (transports/rest.py) and the web page (web/static) at /."""

import orjson
from prometheus_client.twisted import MetricsResource
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
    """200 {"status": "ok"} while chatd serves; 503 with "starting" or "stopping" otherwise."""

    isLeaf = True

    def __init__(self, state):
        super().__init__()
        self._state = state

    def render_GET(self, request) -> bytes:
        state = self._state()
        request.setResponseCode(200 if state == "ok" else 503)
        request.setHeader(b"Content-Type", b"application/json")
        return orjson.dumps({"status": state})


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


class CountedChannel(HTTPChannel):
    """An HTTP connection that gives back its place in the site's per-address count when it ends.
    (One the WebSocket took over never ends here: the WebSocket protocol gives the place back.)"""

    site: "GuardedSite"  # set by Site.buildProtocol
    host = None

    def connectionLost(self, reason: Failure = connectionDone) -> None:
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

    def __init__(self, root, addresses, refused: bytes, on_refused):
        super().__init__(root)
        self.addresses, self._refused, self._on_refused = addresses, refused, on_refused

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
    state, registry, addresses, on_refused, root: Resource | None = None, children: dict | None = None
) -> Site:
    """`state()` is "starting", "ok" or "stopping"; `registry` is what /metrics serves; `addresses`
    counts the open connections per peer address (an AddressCounter)."""
    root = root if root is not None else Resource()
    root.putChild(b"health", Health(state))
    root.putChild(b"metrics", MetricsResource(registry))
    for name, child in (children or {}).items():
        root.putChild(name, child)
    site = GuardedSite(root, addresses, too_many_connections(), on_refused)
    site.displayTracebacks = False
    return site
