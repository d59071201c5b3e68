"""The HTTP listener: one twisted.web Site with GET /health (readiness), GET /metrics (Prometheus),
the WebSocket at /ws, the REST API (transports/rest.py) and the web page (web/static) at /."""

import orjson
from prometheus_client.twisted import MetricsResource
from twisted.web.pages import notFound
from twisted.web.resource import Resource
from twisted.web.server import Site

from ..web import STATIC

# The only files served from web/static, by name (so never a directory listing, nor any other file).
PAGE_FILES = {
    b"": ("index.html", "text/html; charset=utf-8"),
    b"index.html": ("index.html", "text/html; charset=utf-8"),
    b"chat.js": ("chat.js", "text/javascript; charset=utf-8"),
    b"chat.css": ("chat.css", "text/css; charset=utf-8"),
}
PAGE_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
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


def make_site(state, registry, root: Resource | None = None, children: dict | None = None) -> Site:
    """`state()` is "starting", "ok" or "stopping"; `registry` is what /metrics serves."""
    root = root if root is not None else Resource()
    root.putChild(b"health", Health(state))
    root.putChild(b"metrics", MetricsResource(registry))
    for name, child in (children or {}).items():
        root.putChild(name, child)
    site = Site(root)
    site.displayTracebacks = False
    return site
