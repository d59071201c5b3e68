"""chatd-bench against a real `twistd -n chatd`: every scenario at a tiny size, numbers checked for sanity.

No test here asserts a speed: only that the counts add up (every acknowledged message reached
every other member), that latencies are ordered, that the JSON carries every number, and that a
daemon chatd-bench spawned is stopped.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from chatdaemon.bench import cli
from chatdaemon.bench.daemon import bench_toml

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
FAST = (1, 8, 1)  # argon2 time, memory (KiB), parallelism: tests need no real password cost


def _wait_for(path: str, pattern: str, process: subprocess.Popen, timeout: float = 30) -> re.Match:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        with open(path) as f:
            text = f.read()
        match = re.search(pattern, text)
        if match:
            return match
        assert process.poll() is None, text
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in {text}")


BENCH = [sys.executable, "-m", "chatdaemon.bench.cli"]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """A stopped data dir seeded by `chatd-bench seed`, then `twistd -n chatd` on it (fast argon2, bench limits)."""
    data = tmp_path_factory.mktemp("bench")
    config = data / "chatd.toml"
    config.write_text(bench_toml(FAST))
    seed = subprocess.run(
        [*BENCH, "seed", "--data-dir", str(data), "--users", "60", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert seed.returncode == 0, seed.stderr
    assert "60 accounts bench0..bench59" in seed.stdout
    log = data / "chatd.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [TWISTD, "-n", "--pidfile=", "chatd", "--data-dir", str(data), "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    port = int(_wait_for(str(log), r"line listening on 127\.0\.0\.1:(\d+)", process).group(1))
    ws_port = int(_wait_for(str(log), r"http listening on 127\.0\.0\.1:(\d+)", process).group(1))
    _wait_for(str(log), r"chatd ready", process)
    yield {"port": port, "ws_port": ws_port, "pid": process.pid, "data": data}
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0


def bench(daemon, tmp_path, *args: str) -> dict:
    out = tmp_path / "out.json"
    argv = ["run", *args, "--port", str(daemon["port"]), "--ws-port", str(daemon["ws_port"])]
    argv += ["--daemon-pid", str(daemon["pid"]), "--data-dir", str(daemon["data"]), "--quiet", "--json", str(out)]
    assert cli.main(argv) == 0
    return json.loads(out.read_text())


def ordered(latency: dict) -> bool:
    return 0 < latency["p50"] <= latency["p99"] <= latency["max"] and latency["samples"] > 0


def test_s1_every_acknowledged_message_reaches_every_other_member(daemon, tmp_path, capsys):
    doc = bench(daemon, tmp_path, "S1", "--s1-members", "5", "--s1-senders", "2", "--duration", "1")
    r = doc["scenarios"]["S1"]["median"]
    assert r["members"] == 5 and r["senders"] == 2
    assert r["acked"] > 0 and r["sent"] == r["acked"] and r["refused"] == 0
    assert r["delivered"] == r["acked"] * 4 == r["expected_deliveries"]
    assert r["delivered_over_expected"] == 1.0 and r["drained"] is True
    assert r["deliveries_per_s"] > 0 and r["acked_sends_per_s"] > 0
    assert ordered(r["latency_ms"]) and ordered(r["ack_latency_ms"])
    assert r["daemon_cpu_pct"] is not None and r["bench_cpu_pct"] > 0
    assert "errors" not in r
    table = capsys.readouterr().out
    assert "deliveries/s" in table and "latency p99 ms" in table


@pytest.mark.parametrize(
    "transport, dialect",
    [("ws", "typed"), ("line", "events"), ("ws", "events"), ("line", "colon"), ("ws", "colon"), ("line", "action")],
)
def test_s1_in_every_json_dialect_and_over_the_websocket(daemon, tmp_path, transport, dialect):
    doc = bench(
        daemon, tmp_path, "S1", "--transport", transport, "--dialect", dialect,
        "--s1-members", "4", "--s1-senders", "2", "--duration", "0.5",
    )  # fmt: skip
    r = doc["scenarios"]["S1"]["median"]
    assert r["acked"] > 0 and r["sent"] == r["acked"] and r["refused"] == 0, r.get("errors")
    assert r["delivered"] == r["acked"] * 3  # own echoes (events, colon) are not deliveries
    assert ordered(r["latency_ms"])
    assert doc["server"]["transport"] == transport and doc["server"]["dialect"] == dialect


def test_s2_open_loop_delivers_what_was_offered(daemon, tmp_path):
    doc = bench(
        daemon, tmp_path, "S2", "--s2-users", "20", "--s2-room-size", "10", "--s2-rate", "50", "--duration", "1",
    )  # fmt: skip
    r = doc["scenarios"]["S2"]["median"]
    assert r["offered"] == 50 and r["room_size"] == 10 and r["senders"] == 20
    assert 0.9 < r["delivered_over_offered"] <= 1
    assert r["delivered"] <= r["expected_deliveries"] == 50 * 9
    assert ordered(r["latency_ms"]) and r["latency_ms"]["samples"] == r["delivered"]
    assert r["daemon_cpu_pct"] is not None
    assert 10_000 < r["rss_peak_kib"] < 10_000_000  # a Python daemon's peak, in KiB


def test_s2_sweep_reports_each_rate_and_the_best(daemon, tmp_path):
    doc = bench(
        daemon, tmp_path, "S2", "--s2-users", "10", "--s2-room-size", "5", "--s2-sweep", "20,40", "--duration", "0.5",
    )  # fmt: skip
    r = doc["scenarios"]["S2"]["median"]
    assert [p["offered_rate"] for p in r["sweep"]] == [20, 40]
    assert all(0.9 < p["delivered_over_offered"] <= 1 for p in r["sweep"])
    assert r["best_rate"] in (None, 20, 40)


def test_s3_idle_connections_memory_and_connect_time(daemon, tmp_path):
    doc = bench(daemon, tmp_path, "S3", "--s3-connections", "50")
    r = doc["scenarios"]["S3"]["median"]
    assert r["ok"] == 50 and r["failed"] == 0 and r["still_open"] == 50
    assert r["connect_s"] > 0 and r["connects_per_s"] > 0
    assert r["rss_before_kib"] > 0 and r["rss_after_kib"] > 0
    assert isinstance(r["kib_per_connection"], float)


def test_d_counts_only_committed_acknowledgements(daemon, tmp_path):
    doc = bench(daemon, tmp_path, "D", "--d-messages", "200", "--d-senders", "4", "--d-window", "8")
    r = doc["scenarios"]["D"]["median"]
    for variant, per_message in (("room", 3), ("direct", 1)):
        v = r[variant]
        assert v["sent"] == v["acked"] == 200 and v["refused"] == 0, v.get("errors")
        assert v["delivered"] == 200 * per_message
        assert v["acked_sends_per_s"] > 0 and ordered(v["ack_latency_ms"])


def test_l_password_logins(daemon, tmp_path):
    doc = bench(daemon, tmp_path, "L", "--l-logins", "5", "--l-concurrency", "2")
    r = doc["scenarios"]["L"]["median"]
    assert r["ok"] == 5 and r["failed"] == 0
    assert r["logins_per_s"] > 0 and ordered(r["login_latency_ms"])


def test_repeat_reports_the_median_and_every_run(daemon, tmp_path):
    doc = bench(daemon, tmp_path, "S1", "--s1-members", "3", "--s1-senders", "1", "--duration", "0.3", "--repeat", "3")
    entry = doc["scenarios"]["S1"]
    values = sorted(run["acked"] for run in entry["runs"])
    assert len(values) == 3 and entry["median"]["acked"] == values[1]


SMALL_S1 = ["--s1-members", "3", "--s1-senders", "1", "--duration", "0.5"]
SMALL_IRC = ["--s1-members", "4", "--s1-senders", "2", "--s2-users", "6", "--s2-room-size", "3", "--s2-rate", "30"]
SMALL_IRC += ["--duration", "0.5"]


def test_spawn_seeds_runs_and_stops_the_daemon(tmp_path):
    out = tmp_path / "spawn.json"
    result = subprocess.run(
        [*BENCH, "run", "S1", "--spawn", "--argon2", "1,8,1", *SMALL_S1, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["daemon_stopped"] is True and doc["daemon_exit_status"] == 0
    assert not os.path.exists(f"/proc/{doc['server']['pid']}")
    r = doc["scenarios"]["S1"]["median"]
    assert r["delivered"] == r["acked"] * 2 > 0
    assert "S1 " in result.stderr or "seeding" in result.stderr  # progress goes to stderr, the table to stdout
    assert "deliveries/s" in result.stdout


def test_irc_peer_mode_against_twisted_words(tmp_path):
    out = tmp_path / "irc.json"
    result = subprocess.run(
        [*BENCH, "run", "S1", "S2", "--spawn", "words", "--quiet", "--json", str(out), *SMALL_IRC],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    assert doc["server"]["protocol"] == "irc" and doc["daemon_stopped"] is True
    s1 = doc["scenarios"]["S1"]["median"]
    assert s1["acked"] > 0 and s1["delivered"] == s1["acked"] * 3, s1.get("errors")
    s2 = doc["scenarios"]["S2"]["median"]
    assert 0.9 < s2["delivered_over_offered"] <= 1 and ordered(s2["latency_ms"])


def test_redis_pub_sub_mode_against_the_local_redis(tmp_path):
    """The machine's Redis (127.0.0.1:6379): channels under a unique prefix, nothing but SUBSCRIBE and PUBLISH."""
    out = tmp_path / "redis.json"
    argv = ["run", "S1", "S2", "S3", "D", "--protocol", "redis", "--port", "6379", "--quiet", "--json", str(out)]
    argv += ["--redis-prefix", f"chatd-bench-test-{os.getpid()}:", "--s3-connections", "20", *SMALL_IRC]
    assert cli.main(argv) == 0
    doc = json.loads(out.read_text())
    s1 = doc["scenarios"]["S1"]["median"]
    assert s1["acked"] > 0 and s1["delivered"] == s1["acked"] * 3, s1.get("errors")  # the own echo is left out
    assert s1["daemon_cpu_pct"] is None  # no pid given: unavailable, not made up
    s2 = doc["scenarios"]["S2"]["median"]
    assert 0.9 < s2["delivered_over_offered"] <= 1 and ordered(s2["latency_ms"])
    assert doc["scenarios"]["S3"]["median"]["ok"] == 20
    assert "skipped" in doc["scenarios"]["D"]["median"]
