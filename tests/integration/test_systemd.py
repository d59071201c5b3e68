"""`twistd -n chatd` as systemd runs it: sd_notify messages on a fake NOTIFY_SOCKET at the right
moments, SIGHUP, SIGTERM exiting 0, and a listening socket inherited through LISTEN_FDS."""

import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.integration.test_twistd import FAST, TWISTD, Conversation, _wait_for

LOOPBACK = "tcp:0:interface=127.0.0.1"


class Notifications:
    """A fake $NOTIFY_SOCKET: a unix datagram socket owned by the test."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(20)

    def next(self) -> set[str]:
        """The fields of the next datagram."""
        return set(self.sock.recv(4096).decode().split("\n"))

    def until(self, field: str) -> set[str]:
        while True:
            fields = self.next()
            if field in fields:
                return fields

    def close(self):
        self.sock.close()


@pytest.fixture
def notifications(tmp_path):
    n = Notifications(tmp_path / "notify.sock")
    yield n
    n.close()


def _start(tmp_path, *args, env=None, **kwargs) -> subprocess.Popen:
    config = tmp_path / "chatd.toml"
    config.write_text(FAST)
    return subprocess.Popen(
        [
            TWISTD,
            "-n",
            "--pidfile=",
            "chatd",
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path / "data"),
            "--admin",
            LOOPBACK,
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def _health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_ready_after_the_listeners_and_the_state_stopping_on_sigterm_then_exit_0(tmp_path, notifications):
    process = _start(
        tmp_path,
        "--line",
        LOOPBACK,
        "--http",
        LOOPBACK,
        env={"NOTIFY_SOCKET": notifications.path, "WATCHDOG_USEC": "400000"},
    )
    seen: list[str] = []
    try:
        first = notifications.next()
        assert "READY=1" in first
        # READY comes after every port is bound and the database is loaded: both are in the log by now
        line_port = int(_wait_for(process, r"line listening on 127\.0\.0\.1:(\d+)", seen).group(1))
        http_port = int(_wait_for(process, r"http listening on 127\.0\.0\.1:(\d+)", seen).group(1))
        _wait_for(process, r"chatd ready", seen)
        assert _health(http_port) == 200
        conversation = Conversation(line_port)
        conversation.send("PING", n=1)
        assert conversation.expect("PONG") == {"n": 1}

        assert "WATCHDOG=1" in notifications.next()  # every 0.2 s, half of WATCHDOG_USEC

        process.send_signal(signal.SIGHUP)
        assert "RELOADING=1" in notifications.until("RELOADING=1")
        assert "READY=1" in notifications.until("READY=1")

        process.send_signal(signal.SIGTERM)
        assert "STOPPING=1" in notifications.until("STOPPING=1")
        assert conversation.expect("SERVER_NOTIFICATION")["code"] == 7012
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_the_daemon_serves_on_a_socket_inherited_from_systemd(tmp_path):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    # As systemd passes it: the socket as fd 3, LISTEN_PID naming the daemon itself. exec keeps the pid,
    # so a small trampoline moves the socket to fd 3, sets LISTEN_PID to its own pid and becomes twistd.
    config = tmp_path / "chatd.toml"
    config.write_text(FAST)
    command = [
        TWISTD,
        "-n",
        "--pidfile=",
        "chatd",
        "--config",
        str(config),
        "--data-dir",
        str(tmp_path / "data"),
        "--line",
        "systemd:domain=INET:name=chatd-line",
        "--http",
        LOOPBACK,
        "--admin",
        LOOPBACK,
    ]
    trampoline = (
        "import os, sys; os.dup2(int(sys.argv[1]), 3); os.close(int(sys.argv[1]));"
        "os.environ['LISTEN_PID'] = str(os.getpid()); os.execv(sys.argv[2], sys.argv[2:])"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", trampoline, str(fd), *command],
        env={**os.environ, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "chatd-line"},
        pass_fds=(fd,),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    listener.close()  # the daemon has its own copy now
    seen: list[str] = []
    try:
        assert int(_wait_for(process, r"line listening on 127\.0\.0\.1:(\d+)", seen).group(1)) == port
        _wait_for(process, r"chatd ready", seen)
        conversation = Conversation(port)
        conversation.send("REGISTER_REQUEST", username="sock", passwordHash="pw")
        assert conversation.expect("REGISTER_RESPONSE")["code"] == 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_missing_inherited_socket_stops_start_up_with_one_line(tmp_path):
    process = _start(tmp_path, "--line", "systemd:domain=INET:name=nope", "--http", LOOPBACK)
    output = process.communicate(timeout=60)[0]
    assert process.returncode != 0
    assert "--line systemd:domain=INET:name=nope: no inherited socket named 'nope'" in output
    assert "Traceback" not in output
