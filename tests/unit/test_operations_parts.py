"""Small pieces of operations without a daemon: sd_notify, log observers, the admin shell on a fake terminal."""

import io
import socket
import types

import orjson
import txaio
from twisted.conch.insults import insults
from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import StringTransport
from twisted.logger import Logger, LogLevel, LogPublisher

from chatdaemon import sdnotify
from chatdaemon.admin import UsageError
from chatdaemon.config import Log
from chatdaemon.logs import apply_level, make_observer
from chatdaemon.transports.admin import AdminShell


def test_sd_notify_sends_one_datagram_per_call(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        monkeypatch.setenv("NOTIFY_SOCKET", path)
        assert sdnotify.notify("READY=1", "STATUS=serving")
        assert server.recv(100) == b"READY=1\nSTATUS=serving"
        assert sdnotify.reloading()
        assert server.recv(100).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not sdnotify.notify("READY=1")  # not under systemd: nothing to do


def test_the_watchdog_pings_at_half_its_period_for_this_process_only(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert sdnotify.watchdog_interval() is None


def test_json_lines_carry_the_fields_and_the_level_filter_applies():
    out = io.StringIO()
    log = Logger(namespace="test", observer=make_observer(Log(format="json", level="info"), out))
    log.debug("hidden {x}", x=1)
    log.info("connection opened: {transport} {peer}", event="connection_opened", transport="tcp", peer="1.2.3.4:5")
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        log.failure("it broke", code=9001)
    first, second = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert first["message"] == "connection opened: tcp 1.2.3.4:5" and first["level"] == "info"
    assert (first["event"], first["transport"], first["peer"], first["namespace"]) == (
        "connection_opened",
        "tcp",
        "1.2.3.4:5",
        "test",
    )
    assert second["level"] == "critical" and second["code"] == 9001 and "ZeroDivisionError" in second["traceback"]


def test_text_logs_are_twisteds_text_format():
    out = io.StringIO()
    Logger(namespace="test", observer=make_observer(Log(), out)).warn("careful {what}", what="now")
    assert out.getvalue().endswith("[test#warn] careful now\n")
    assert LogLevel.levelWithName("warn") is LogLevel.warn


def test_the_level_filters_every_observer_and_holds_autobahn_to_errors():
    seen: list[tuple[str, str]] = []
    publisher = LogPublisher(lambda event: seen.append((event["log_namespace"], event["log_level"].name)))
    apply_level(Log(level="info"), publisher)

    def emit(namespace: str, *levels: str) -> None:
        log = Logger(namespace=namespace, observer=publisher)
        for level in levels:
            getattr(log, level)("x")

    emit("chatdaemon.session", "debug", "info", "warn")
    emit("autobahn.websocket.protocol.WebSocketServerProtocol", "debug", "info", "warn", "error")
    emit("txaio", "info", "critical")
    assert seen == [
        ("chatdaemon.session", "info"),
        ("chatdaemon.session", "warn"),
        ("autobahn.websocket.protocol.WebSocketServerProtocol", "error"),
        ("txaio", "critical"),
    ]
    seen.clear()
    publisher = LogPublisher(lambda event: seen.append((event["log_namespace"], event["log_level"].name)))
    apply_level(Log(level="debug"), publisher)
    emit("autobahn.websocket.protocol", "debug")
    assert seen == [("autobahn.websocket.protocol", "debug")]
    txaio.set_global_log_level("info")  # txaio's level is the process's: back to its default


class Commands:
    """What AdminShell needs of AdminCommands; answers are scripted."""

    def __init__(self, manhole=False):
        self.operator = types.SimpleNamespace(user="@tester")
        self.manhole = manhole
        self.service = types.SimpleNamespace(core="CORE", store="STORE")
        self.ran: list[str] = []
        self.pending: Deferred | None = None

    def run(self, line):
        self.ran.append(line)
        if line == "slow":
            self.pending = Deferred()
            return self.pending
        if line == "bad":
            return Deferred.fromCoroutine(_raise(UsageError("usage: bad")))
        return succeed(f"ran {line}")


async def _raise(error):
    raise error


def shell(manhole=False):
    commands, ended = Commands(manhole), []
    terminal = insults.ServerProtocol(AdminShell, commands, lambda: ended.append(True))
    transport = StringTransport()
    terminal.makeConnection(transport)
    return commands, ended, terminal, transport


def test_the_shell_runs_lines_in_order_even_when_typed_ahead():
    commands, ended, terminal, transport = shell()
    assert b"chatd admin shell, operator @tester: type help" in transport.value()
    terminal.dataReceived(b"slow\rstats\rbad\r")
    assert commands.ran == ["slow"]  # the others wait for it
    commands.pending.callback("slow done")
    assert commands.ran == ["slow", "stats", "bad"]
    output = transport.value()
    assert output.index(b"slow done") < output.index(b"ran stats") < output.index(b"usage: bad")
    assert output.endswith(b"chatd> ")
    terminal.dataReceived(b"exit\r")
    assert ended == [True]


def test_python_is_there_only_when_the_manhole_is_enabled():
    commands, _, terminal, transport = shell(manhole=False)
    terminal.dataReceived(b"python\r")
    assert commands.ran == ["python"]  # an ordinary (refused) command
    commands, _, terminal, transport = shell(manhole=True)
    terminal.dataReceived(b"python\r")
    assert commands.ran == []
    transport.clear()
    terminal.dataReceived(b"core\r")
    assert b"'CORE'" in transport.value()
