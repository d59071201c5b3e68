"""`twistd chatd --workers 2`: two processes on one listening socket, supervised; refused on SQLite."""

import contextlib
import os
import re
import signal
import subprocess
import time

from tests.integration.test_twistd import FAST, TWISTD, Conversation, _twistd, _wait_for
from tests.services import pg_url, redis_bus  # noqa: F401 (fixtures)


def test_workers_need_postgresql_and_redis(tmp_path):
    result = subprocess.run(
        [TWISTD, "-n", "--pidfile=", "chatd", "--data-dir", str(tmp_path), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "--workers 2: workers are nodes of a cluster and need the PostgreSQL store and the Redis bus" in out
    assert "Traceback" not in out


def test_two_workers_share_the_port_a_dead_one_is_restarted_and_sigterm_stops_all(tmp_path, pg_url, redis_bus):  # noqa: F811
    url, prefix = redis_bus
    config = tmp_path / "chatd.toml"
    config.write_text(FAST + f'[store]\nurl = "{pg_url}"\npool_size = 2\n[bus]\nurl = "{url}"\nprefix = "{prefix}"\n')
    process = _twistd("--config", str(config), "--data-dir", str(tmp_path / "data"), "--workers", "2",
                      "--node-id", "box", "--line", "tcp:0:interface=127.0.0.1", "--http",
                      "tcp:0:interface=127.0.0.1", "--admin", "tcp:0:interface=127.0.0.1")  # fmt: skip
    seen: list[str] = []
    started: set[int] = set()  # the workers' pids, so that a failed test leaves none behind

    def workers_now() -> list[int]:
        pids = [
            int(p)
            for p in subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        ]
        started.update(pids)
        return pids

    try:
        port = int(_wait_for(process, r"line listening on 127\.0\.0\.1:(\d+)", seen).group(1))
        _wait_for(process, r"chatd ready: 2 workers", seen)
        workers = {int(m.group(1)) for m in re.finditer(r"box-w(\d)", "".join(seen))}
        assert workers == {1, 2}
        # users reach each other whichever worker the kernel gave them
        clients = []
        for n in range(6):
            c = Conversation(port)
            c.send("REGISTER_REQUEST", username=f"u{n}", passwordHash="pw")
            assert c.expect("REGISTER_RESPONSE")["code"] == 0
            c.send("LOGIN_REQUEST", username=f"u{n}", passwordHash="pw")
            assert c.expect("LOGIN_RESPONSE")["code"] == 0
            clients.append(c)
        for n, c in enumerate(clients[1:], 1):
            clients[0].send("TEXT_MESSAGE", receiver=f"u{n}", content=f"to u{n}")
            assert clients[0].expect("MESSAGE_ACK")["code"] == 0
            assert c.expect("TEXT_MESSAGE")["content"] == f"to u{n}"
        # a worker killed is started again
        children = workers_now()
        assert len(children) == 2
        os.kill(children[0], signal.SIGKILL)
        _wait_for(process, r"worker \d ended .*starting it again", seen)
        _wait_for(process, r"worker \d started as node box-w\d", seen)
        deadline = time.monotonic() + 30
        while len(workers_now()) < 2 or children[0] in workers_now():
            assert time.monotonic() < deadline, "the worker was not started again"
            time.sleep(0.1)
        # SIGTERM reaches every worker; the parent exits 0 once they have stopped
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert "every worker has stopped" in "".join(seen) + process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_sighup_to_the_parent_reloads_every_worker_and_restarts_none(tmp_path, pg_url, redis_bus):  # noqa: F811
    url, prefix = redis_bus
    config = tmp_path / "chatd.toml"
    cluster = f'[store]\nurl = "{pg_url}"\npool_size = 2\n[bus]\nurl = "{url}"\nprefix = "{prefix}"\n'
    config.write_text(FAST + cluster)
    process = _twistd("--config", str(config), "--data-dir", str(tmp_path / "data"), "--workers", "2",
                      "--node-id", "box", "--line", "tcp:0:interface=127.0.0.1", "--http",
                      "tcp:0:interface=127.0.0.1", "--admin", "tcp:0:interface=127.0.0.1")  # fmt: skip
    seen: list[str] = []
    started: set[int] = set()
    try:
        _wait_for(process, r"chatd ready: 2 workers", seen)
        before = set(subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split())
        started.update(map(int, before))
        assert len(before) == 2
        config.write_text(FAST + cluster + "[limits]\nmax_line_bytes = 40000\n")
        process.send_signal(signal.SIGHUP)
        reloaded = set()
        while reloaded != {"box-w1", "box-w2"}:
            match = _wait_for(process, r"reload: limits\.max_line_bytes changed \(node (box-w\d)\)", seen)
            assert match.group(1) not in reloaded, "a worker reloaded twice"
            reloaded.add(match.group(1))
        after = set(subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split())
        assert after == before  # the same two processes: none restarted
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        out = "".join(seen) + process.stdout.read()
        assert not re.search(r"worker \d ended", out) and len(re.findall(r"worker \d started as node", out)) == 2
        assert len(re.findall(r"reload: limits\.max_line_bytes changed", out)) == 2  # once each
    finally:
        if process.poll() is None:  # the test failed midway: its workers go too (a parent that exited stopped them)
            for pid in started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.kill()
        process.wait()
