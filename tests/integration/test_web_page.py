"""The web page at / over real sockets: its three files with their types and policy, nothing else
served from its folder, and the same-origin rule that lets the page (wherever it is reached
from) open the WebSocket while other sites' pages are still refused."""

from dataclasses import replace

import pytest_twisted
from autobahn.util import wildcards2patterns

from chatdaemon.config import Http as HttpOptions
from chatdaemon.transports.websocket import origin_allowed
from tests.conftest import make_config, start_service
from tests.wsclient import Http, http_port, raw_handshake


@pytest_twisted.ensureDeferred
async def test_the_page_its_script_and_style_are_served_with_their_types(chatd):
    http = Http(chatd)
    try:
        for path, mime, needle in (
            ("/", b"text/html; charset=utf-8", b'<script src="chat.js" defer></script>'),
            ("/index.html", b"text/html; charset=utf-8", b"<title>chatd</title>"),
            ("/chat.js", b"text/javascript; charset=utf-8", b"dialect=events"),
            ("/chat.css", b"text/css; charset=utf-8", b"#messages"),
        ):
            response, body = await http.call("GET", path)
            assert response.code == 200, path
            headers = response.headers
            assert headers.getRawHeaders("content-type") == [mime.decode()], path
            assert headers.getRawHeaders("x-content-type-options") == ["nosniff"]
            assert "script-src 'self'" in headers.getRawHeaders("content-security-policy")[0]
            assert needle in body, path
        assert b"innerHTML" not in (await http.call("GET", "/chat.js"))[1]
        response, body = await http.call("HEAD", "/")
        assert response.code == 200 and body == b""
        for path in ("/static/", "/web/", "/static/chat.js", "/chat.js/x", "/__init__.py", "/../service.py"):
            assert (await http.call("GET", path))[0].code == 404, path
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_the_page_own_origin_is_allowed_and_other_sites_are_not(data_dir):
    # Origins outside the allow-list: the page reached as chat.example.org:PORT is same-origin.
    service = await start_service(make_config(data_dir))
    try:
        port = http_port(service)
        host = {"Host": f"chat.example.org:{port}"}
        assert (await raw_handshake(service, "/ws", {**host, "Origin": f"http://chat.example.org:{port}"})).startswith(
            b"HTTP/1.1 101"
        )
        for origin in (
            "https://evil.example",
            f"http://evil.example:{port}",
            f"https://chat.example.org:{port}",
            "http://chat.example.org",
            f"http://chat.example.org:{port + 1}",
            "null",
        ):
            assert (await raw_handshake(service, "/ws", {**host, "Origin": origin})).startswith(b"HTTP/1.1 400"), origin
    finally:
        await service.stopService()
    config = make_config(data_dir)
    service = await start_service(replace(config, http_options=replace(config.http_options, same_origin=False)))
    try:
        port = http_port(service)
        status = await raw_handshake(
            service, "/ws", {"Host": f"chat.example.org:{port}", "Origin": f"http://chat.example.org:{port}"}
        )
        assert status.startswith(b"HTTP/1.1 400")
        assert (await raw_handshake(service, "/ws", {"Origin": f"http://127.0.0.1:{port}"})).startswith(b"HTTP/1.1 101")
    finally:
        await service.stopService()


def test_origin_rules():
    patterns = wildcards2patterns(list(HttpOptions().allowed_origins))

    def ok(origin, host="chat.example.org", secure=False, same=True):
        return origin_allowed(origin, host, secure, patterns, same)

    assert ok("")  # no Origin: not a browser
    assert ok("http://localhost:3000") and ok("https://127.0.0.1:8443")
    assert ok("http://chat.example.org") and ok("http://chat.example.org:80")
    assert ok("https://chat.example.org", secure=True) and not ok("http://chat.example.org", secure=True)
    assert ok("http://[::1]:8080", host="[::1]:8080") and ok("HTTP://Chat.Example.org", host="CHAT.example.org:80")
    assert not ok("http://chat.example.org", same=False)
    assert not ok("http://chat.example.org.evil.example") and not ok("http://evil.example", host="evil.example:x")
    assert not ok("null") and not ok("file:///tmp/x.html") and not ok("http://chat.example.org/path")
    assert not ok("http://chat.example.org", host="")
