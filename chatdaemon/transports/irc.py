"""The IRC transport: IRC lines over TCP or TLS (`--irc`, `[listeners] irc`), one session each, in the
IRC dialect from the first byte.

A line transport (line.py) with IRC's framing: the server ends its lines with CRLF; a client's
line (LF or CRLF) may be 512 bytes with its CRLF plus IRCv3 tags (dialects/irc/lines.py): a
longer one is answered with 417 ERR_INPUTTOOLONG and skipped up to its end. Unlike
twisted.words' IRC.dataReceived, nothing is buffered past that, and a line is decoded whole.
Sessions, the login and idle deadlines and the logs are connection.py's, as for every transport.
"""

from collections.abc import Callable

from ..dialects.irc import IrcDialect
from ..dialects.irc.lines import MAX_LINE_BYTES
from ..listeners import AddressCounter
from .connection import Connections
from .line import LineFactory, LineProtocol


class IrcProtocol(LineProtocol):
    newline = b"\r\n"
    max_line_bytes = MAX_LINE_BYTES

    def __init__(self, factory: "IrcFactory", host: str | None):
        super().__init__(factory, host)
        self.options = factory.options

    def connectionMade(self) -> None:
        super().connectionMade()
        self.session.start(dialect=IrcDialect(self.options))


class IrcFactory(LineFactory):
    protocol = IrcProtocol

    def __init__(self, connections: Connections, options, addresses: AddressCounter | None = None,
                 farewell: bytes = b"", on_refused: Callable[[], None] = lambda: None):  # fmt: skip
        """`options`: the [irc] section of the configuration."""
        super().__init__(connections, addresses, farewell, on_refused)
        self.options = options
