"""The HTTP listener. For now it serves GET /health; the REST API, the web page
and the WebSocket endpoint join this site later."""

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


def make_site(is_ready) -> Site:
    root = Resource()
    root.putChild(b"health", Health(is_ready))
    site = Site(root)
    site.displayTracebacks = False
    return site
