"""`twistd -n chatd` as a real process: it starts, chats, stops cleanly on SIGTERM."""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import orjson
import pytest

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
FAST = "[passwords]\ntime_cost = 1\nmemory_cost = 8\nparallelism = 1\n"


def _twistd(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [TWISTD, "-n", "--pidfile=", "chatd", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def _wait_for(process: subprocess.Popen, pattern: str, seen: list[str], timeout: float = 30) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no {pattern!r} in the daemon's output:\n{''.join(seen)}")


class Conversation:
    """A blocking line client."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def send(self, kind: str, **payload) -> None:
        self.sock.sendall(orjson.dumps({"type": kind, "timestamp": 1, "payload": payload}) + b"\n")

    def expect(self, kind: str) -> dict:
        while True:
            line = self.file.readline()
            assert line, f"connection closed while waiting for {kind}"
            frame = orjson.loads(line)
            if frame["type"] == kind:
                return frame["payload"]


@pytest.fixture
def daemon(tmp_path):
    config = tmp_path / "chatd.toml"
    config.write_text(FAST)
    process = _twistd(
        "--config",
        str(config),
        "--data-dir",
        str(tmp_path / "data"),
        "--line",
        "tcp:0:interface=127.0.0.1",
        "--http",
        "tcp:0:interface=127.0.0.1",
        "--admin",
        "tcp:0:interface=127.0.0.1",
    )
    seen: list[str] = []
    port = int(_wait_for(process, r"line listening on 127\.0\.0\.1:(\d+)", seen).group(1))
    _wait_for(process, r"chatd ready", seen)
    yield process, port, seen
    if process.poll() is None:
        process.kill()
    process.wait()


def test_the_daemon_chats_and_stops_cleanly_on_sigterm(daemon):
    process, port, seen = daemon
    alice, bob = Conversation(port), Conversation(port)
    for name, conversation in (("alice", alice), ("bob", bob)):
        conversation.send("REGISTER_REQUEST", username=name, passwordHash="pw")
        assert conversation.expect("REGISTER_RESPONSE")["code"] == 0
        conversation.send("LOGIN_REQUEST", username=name, passwordHash="pw")
        assert conversation.expect("LOGIN_RESPONSE")["success"] is True
    alice.send("TEXT_MESSAGE", sender="alice", receiver="bob", content="from a real process")
    assert alice.expect("MESSAGE_ACK")["code"] == 0
    assert bob.expect("TEXT_MESSAGE")["content"] == "from a real process"

    process.send_signal(signal.SIGTERM)
    notice = bob.expect("SERVER_NOTIFICATION")
    assert notice["code"] == 7012
    # chatd handles SIGTERM itself (twistd's handler would make the process die by the signal)
    assert process.wait(timeout=20) == 0
    assert "chatd stopped" in "".join(seen) + process.stdout.read()


def test_help_lists_the_options():
    result = subprocess.run([TWISTD, "-n", "chatd", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for option in ("--line", "--http", "--admin", "--data-dir", "--config", "--admin-keys", "--log-format"):
        assert option in result.stdout


@pytest.mark.parametrize(
    "text, args, message",
    [
        ("[limits]\nmax_line_bytes = -5\n", (), "limits.max_line_bytes: must be positive"),
        ("[log]\nformat = 'xml'\n", (), "log.format: must be one of text, json"),
        ("[limits\n", (), "bad.toml"),
        ("", ("--line", "tcp:notaport"), "--line tcp:notaport:"),
        ("", ("--line", "tls:tcp:0"), "--line tls:tcp:0: needs [tls] certificate and private_key"),
        (
            "[tls]\ncertificate = '/nonexistent/c.pem'\nprivate_key = '/nonexistent/k.pem'\n",
            (),
            "tls: /nonexistent/c.pem: No such file or directory",
        ),
    ],
)
def test_a_bad_config_stops_start_up_with_one_clear_line(tmp_path, text, args, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    result = subprocess.run(
        [TWISTD, "-n", "--pidfile=", "chatd", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_json_logs_carry_structured_fields(tmp_path):
    config = tmp_path / "chatd.toml"
    config.write_text(FAST + '[log]\nformat = "json"\n')
    process = subprocess.Popen(
        [
            TWISTD,
            "-n",
            "--pidfile=",
            "--logger",
            "chatdaemon.logs.observer",
            "chatd",
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path / "data"),
            "--line",
            "tcp:0:interface=127.0.0.1",
            "--http",
            "tcp:0:interface=127.0.0.1",
            "--admin",
            "tcp:0:interface=127.0.0.1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        events = []

        def next_event(**fields) -> dict:
            for line in process.stdout:
                events.append(orjson.loads(line))  # every line is one JSON object
                if fields.items() <= events[-1].items():
                    return events[-1]
            raise AssertionError(f"no event with {fields} in {events}")

        port = next_event(role="line")["port"]
        next_event(
            namespace="chatdaemon.service.ChatService", location=str(tmp_path / "data" / "chatd.sqlite3")
        )  # ready
        conversation = Conversation(port)
        opened = next_event(event="connection_opened")
        assert opened["transport"] == "tcp" and opened["peer"].startswith("127.0.0.1:")
        conversation.send("REGISTER_REQUEST", username="ann", passwordHash="pw")
        conversation.send("LOGIN_REQUEST", username="ann", passwordHash="wrong")
        failed = next_event(event="login_failed")
        assert (failed["dialect"], failed["code"], failed["level"]) == ("typed", 2001, "info")
        conversation.send("LOGIN_REQUEST", username="ann", passwordHash="pw")
        assert next_event(event="login_ok")["user"] == "ann"
        conversation.file.close()
        conversation.sock.close()
        closed = next_event(event="connection_closed")
        assert (closed["dialect"], closed["user"], closed["transport"]) == ("typed", "ann", "tcp")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
