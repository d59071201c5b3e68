"""`twistd -n chatd` as a real process: it starts, chats, stops cleanly on SIGTERM."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import orjson
import pytest
import pytest_twisted

from tests.conftest import need

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
# argon2 at its cheapest; and new accounts unthrottled: every test registers its users from 127.0.0.1 (with
# --workers the kernel may hand all of them to one worker, past the default of 5 per address)
FAST = "[passwords]\ntime_cost = 1\nmemory_cost = 8\nparallelism = 1\n[throttle]\nregistrations_per_address = 1000\n"


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
    help_text = " ".join(result.stdout.split())  # as one line: twistd wraps the descriptions
    assert "(default: the config file's admin.authorized_keys, else /etc/chatd/admin_keys)" in help_text
    assert "admin.authorized_keys)" not in help_text.replace("admin.authorized_keys, else", "")


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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_port_in_use_stops_start_up_with_one_line_naming_the_listener(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        http = f"tcp:{port}:interface=127.0.0.1"
        result = subprocess.run(
            [TWISTD, "-n", "--pidfile=", "chatd", "--data-dir", str(tmp_path / "data"), "--http", http,
             "--line", "tcp:0:interface=127.0.0.1", "--admin", "tcp:0:interface=127.0.0.1"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert f"chatd: --http {http}: port {port} is already in use" in output
    assert "Traceback" not in output and "CannotListenError" not in output


def _until_healthy(port: int, process: subprocess.Popen) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)  # polling a process from outside: nothing to wait on but its answer
    raise AssertionError("the daemon never became healthy")


def _logging_daemon(tmp_path, level: str) -> tuple[subprocess.Popen, int, int]:
    """twistd with its default observer (no --logger) and [log] level = `level`; (process, line, http)."""
    config = tmp_path / "chatd.toml"
    config.write_text(FAST + f'[log]\nlevel = "{level}"\n')
    line, http = _free_port(), _free_port()
    process = _twistd(
        "--config", str(config), "--data-dir", str(tmp_path / "data"),
        "--line", f"tcp:{line}:interface=127.0.0.1", "--http", f"tcp:{http}:interface=127.0.0.1",
        "--admin", "tcp:0:interface=127.0.0.1",
    )  # fmt: skip
    _until_healthy(http, process)
    return process, line, http


def _stop(process: subprocess.Popen) -> list[str]:
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0, out
    return out.splitlines()


@pytest_twisted.ensureDeferred
async def test_the_default_log_has_connections_logins_and_errors_and_no_library_chatter(tmp_path):
    from tests.wsclient import Http, WSClient, raw_handshake, ws_connect

    process, line, http = _logging_daemon(tmp_path, "info")
    try:
        web = Http(http)
        assert (await web.json("POST", "/register", json={"username": "ann", "password": "pw"}))[0] == 201
        code, body = await web.json("POST", "/login", json={"username": "ann", "password": "pw"})
        assert code == 200
        assert (await web.json("POST", "/login", json={"username": "ann", "password": "nope"}))[0] == 401
        await web.close()
        token = body["token"]
        for _ in range(3):  # a normal close, after frames both ways
            ws = await ws_connect(http, f"?dialect=events&token={token}")
            await ws.next(event="SERVER_AUTH_OK")
            ws.send({"event": "CLIENT_CHAT_JOIN", "data": {"cid": "lobby"}})
            ws.send({"event": "CLIENT_CHAT_SEND", "data": {"cid": "lobby", "text": "hello"}})
            await ws.next(event="SERVER_CHAT_MESSAGE_STATUS")
            await ws.close()
        dropped: WSClient = await ws_connect(http, f"?dialect=events&token={token}")
        await dropped.next(event="SERVER_AUTH_OK")
        dropped.transport.abortConnection()  # gone without a close handshake
        await dropped.closed
        assert (await raw_handshake(http, "/ws", {"Origin": "https://evil.example"})).startswith(b"HTTP/1.1 400")
        conversation = Conversation(line)
        conversation.send("LOGIN_REQUEST", username="ann", passwordHash="pw")
        assert conversation.expect("LOGIN_RESPONSE")["success"] is True
        conversation.sock.close()
    finally:
        lines = _stop(process)
    text = "\n".join(lines)
    for wanted in (
        "connection opened: ws 127.0.0.1:",
        "login ok: ann on ws",
        "login ok: ann on rest 127.0.0.1",
        "login failed: rest 127.0.0.1: 2001",
        "connection closed: ws 127.0.0.1:",
        "websocket refused: 127.0.0.1:",
        "connection opened: tcp 127.0.0.1:",
        "login ok: ann on tcp",
        "chatd stopped",
    ):
        assert wanted in text, f"{wanted!r} not in the log:\n{text}"
    for unwanted in (
        "Traceback",
        "autobahn",
        "txaio",
        "Starting factory",
        "Stopping factory",
        "POST /login",
        "#debug]",
    ):
        assert unwanted not in text, f"{unwanted!r} in the log:\n{text}"


@pytest_twisted.ensureDeferred
async def test_the_log_level_of_the_config_holds_without_a_logger_option(tmp_path):
    from tests.wsclient import Http

    process, line, http = _logging_daemon(tmp_path, "warn")
    try:
        conversation = Conversation(line)
        conversation.send("REGISTER_REQUEST", username="ann", passwordHash="pw")
        assert conversation.expect("REGISTER_RESPONSE")["code"] == 0
        conversation.sock.close()
    finally:
        lines = _stop(process)
    started = next(i for i, text in enumerate(lines) if "listening on" in text or "#warn]" in text)
    after = lines[started:]  # what twistd logged before chatd's start (its version, the reactor) is not ours
    assert [text for text in after if "#info]" in text or "[-]" in text] == [], "\n".join(lines)

    process, line, http = _logging_daemon(tmp_path, "debug")
    try:
        web = Http(http)
        assert (await web.call("GET", "/chat.css"))[0].code == 200
        await web.close()
    finally:
        lines = _stop(process)
    assert any("#debug] GET /chat.css 200" in text for text in lines), "\n".join(lines)


def _read_only_mounts() -> str:
    """Why read-only bind mounts (as systemd's ProtectSystem=strict makes) cannot be made here, or ""."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "PLUGIN CACHE TEST NOT RUN: needs unshare and mount (util-linux)"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"PLUGIN CACHE TEST NOT RUN: cannot make a mount namespace (root needed): {probe.stderr.strip()}"
    return ""


def _twistd_read_only(directories: list[str], tmp_path, env: dict) -> str:
    """Run twistd until it serves, with `directories` mounted read-only; its output."""
    mounts = " && ".join(f'mount --bind "{d}" "{d}" && mount -o remount,bind,ro "{d}"' for d in directories)
    command = " ".join(
        [TWISTD, "-n", "--pidfile=", "chatd", "--data-dir", str(tmp_path / "data"), "--line",
         "tcp:0:interface=127.0.0.1", "--http", "tcp:0:interface=127.0.0.1", "--admin", "tcp:0:interface=127.0.0.1"]
    )  # fmt: skip
    process = subprocess.Popen(
        ["unshare", "-m", "sh", "-c", f"{mounts} && exec {command}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    seen: list[str] = []
    try:
        _wait_for(process, r"chatd ready", seen)
        process.send_signal(signal.SIGTERM)
        seen.append(process.communicate(timeout=30)[0])
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    return "".join(seen)


def test_a_read_only_install_logs_no_plugin_cache_warning_once_the_cache_is_built(tmp_path):
    need(_read_only_mounts())
    # A plugin directory of its own, without a cache: the control, where twistd must complain.
    extra = tmp_path / "extra"
    (extra / "twisted" / "plugins").mkdir(parents=True)
    (extra / "twisted" / "plugins" / "nothing.py").write_text("# no plugin here\n")
    env = {**os.environ, "PYTHONPATH": str(extra)}
    build = [sys.executable, "-m", "chatdaemon.plugin_cache"]
    assert subprocess.run(build, capture_output=True, text=True).returncode == 0  # the install step: make venv's
    listing = "from chatdaemon.plugin_cache import directories; print('\\n'.join(directories()))"
    directories = subprocess.run(
        [sys.executable, "-c", listing], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert str(extra / "twisted" / "plugins") in directories and len(directories) >= 3

    output = _twistd_read_only(directories, tmp_path, env)
    assert f"Unable to write to plugin cache {extra}/twisted/plugins/dropin.cache" in output

    assert subprocess.run(build, capture_output=True, text=True, env=env).returncode == 0
    output = _twistd_read_only(directories, tmp_path, env)
    assert "dropin.cache" not in output and "plugin cache" not in output, output
