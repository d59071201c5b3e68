"""A raw IRC client for the integration tests: send lines, await the ones expected, and `sync()` (a PING
answered by its PONG proves every earlier line was handled)."""

import base64
import dataclasses
import itertools
from collections import deque

from twisted.internet import defer, endpoints, reactor, ssl
from twisted.internet.protocol import Protocol

from chatdaemon.config import Config
from tests.conftest import TIMEOUT, Arrival, connect, make_config, start_service

_tokens = itertools.count(1)


def irc_config(data_dir, **limits) -> Config:
    return dataclasses.replace(make_config(data_dir, **limits), irc=("tcp:0:interface=127.0.0.1",))


async def start_irc_service(data_dir, **limits):
    return await start_service(irc_config(data_dir, **limits))


async def register(service, *names: str, password: str = "secret") -> None:
    """Register accounts over the text dialect (IRC logs in to existing accounts only)."""
    client = await connect(service)
    for name in names:
        client.say(f"/register {name} {password}")
        await client.text("* registered")
    await client.close()


class IrcClient(Protocol):
    def __init__(self):
        self.lines: deque[str] = deque()
        self.seen: list[str] = []  # every line, for the record
        self._buffer = b""
        self.arrival = Arrival()
        self.closed = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        *complete, self._buffer = (self._buffer + data).split(b"\r\n")
        for raw in complete:
            text = raw.decode("utf-8")
            self.lines.append(text)
            self.seen.append(text)
        self.arrival.wake()

    def connectionLost(self, reason) -> None:
        self.closed.callback(None)
        self.arrival.wake()

    def send(self, *lines: str) -> None:
        self.transport.write(b"".join(text.encode("utf-8") + b"\r\n" for text in lines))

    async def line(self, timeout: float = TIMEOUT) -> str:
        while not self.lines:
            if self.closed.called:
                raise ConnectionError("closed by the server")
            await self.arrival.wait(timeout)
        return self.lines.popleft()

    async def expect(self, *words: str, timeout: float = TIMEOUT) -> str:
        """The next line holding every one of `words` (as its command, a numeric, or anywhere), skipping others."""
        while True:
            got = await self.line(timeout)
            if all(word in got.split(" ") or word in got for word in words):
                return got

    async def sync(self) -> list[str]:
        """Every line before the answer to a PING of ours: what the server had to say until now."""
        token = f"sync{next(_tokens)}"
        self.send(f"PING {token}")
        before = []
        while True:
            got = await self.line()
            if got.endswith(f"PONG chatd {token}"):
                return before
            before.append(got)

    async def quit(self) -> None:
        self.send("QUIT :done")
        await self.closed


async def connect_irc(service, tls_root=None) -> IrcClient:
    port = service.listeners.address("irc").port
    if tls_root is None:
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    else:
        options = ssl.optionsForClientTLS("localhost", trustRoot=tls_root)
        endpoint = endpoints.SSL4ClientEndpoint(reactor, "127.0.0.1", port, options)
    return await endpoints.connectProtocol(endpoint, IrcClient())


async def irc_user(service, nick: str, password: str = "secret", caps: str = "", tls_root=None) -> IrcClient:
    """A registered IRC client (the account must exist): PASS/NICK/USER, or SASL PLAIN if `caps` holds sasl.
    Returns after the end of the welcome's MOTD."""
    client = await connect_irc(service, tls_root)
    if caps:
        client.send("CAP LS 302", f"NICK {nick}", f"USER {nick} 0 * :{nick}", f"CAP REQ :{caps}")
        await client.expect("CAP", "ACK")
        if "sasl" in caps.split():
            plain = base64.b64encode(f"\0{nick}\0{password}".encode()).decode()
            client.send("AUTHENTICATE PLAIN")
            await client.expect("AUTHENTICATE", "+")
            client.send(f"AUTHENTICATE {plain}")
            await client.expect("903")
        else:
            client.send(f"PASS {password}")
        client.send("CAP END")
    else:
        client.send(f"PASS {password}", f"NICK {nick}", f"USER {nick} 0 * :{nick}")
    await client.expect("001")
    await client.expect("376")
    return client
