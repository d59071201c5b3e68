"""The web chat page (static/index.html, chat.js, chat.css), served at / by transports/http.py.

Plain files, no build step: the page is a client like any other, using the REST API and the
events dialect over the WebSocket at /ws (docs/http.md, "The web page").
"""

import pathlib

STATIC = pathlib.Path(__file__).parent / "static"
