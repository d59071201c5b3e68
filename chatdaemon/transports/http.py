"""The HTTP listener: GET /health (readiness) and GET /metrics (Prometheus). The REST API,
the web page and the WebSocket endpoint join this site later."""

import orjson
from prometheus_client.twisted import MetricsResource
from twisted.web.resource import Resource
from twisted.web.server import Site


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


def make_site(state, registry) -> Site:
    """`state()` is "starting", "ok" or "stopping"; `registry` is what /metrics serves."""
    root = Resource()
    root.putChild(b"health", Health(state))
    root.putChild(b"metrics", MetricsResource(registry))
    site = Site(root)
    site.displayTracebacks = False
    return site
