"""The HTTP listener: one twisted.web Site with GET /health, the WebSocket at /ws,
the REST API (transports/rest.py) and the web page (web/static) at /."""

import orjson
from twisted.web.resource import Resource
from twisted.web.server import Site


class Health(Resource):
    isLeaf = True

    def __init__(self, is_ready):
        super().__init__()
        self._is_ready = is_ready

    def render_GET(self, request) -> bytes:
        ready = self._is_ready()
        request.setResponseCode(200 if ready else 503)
        request.setHeader(b"Content-Type", b"application/json")
        return orjson.dumps({"status": "ok" if ready else "starting"})


def make_site(is_ready, root: Resource | None = None, children: dict | None = None) -> Site:
    root = root if root is not None else Resource()
    root.putChild(b"health", Health(is_ready))
    for name, child in (children or {}).items():
        root.putChild(name, child)
    site = Site(root)
    site.displayTracebacks = False
    return site
