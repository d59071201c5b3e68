"""The server under test: spawning it (chatd, ngircd, or Twisted Words), pinning it, reading its CPU and memory.

A spawned chatd runs as `twistd -n --pidfile= chatd --data-dir DIR --config BENCH.toml`, where
BENCH.toml raises only what a load test from one address needs (connections per address, the
request rate, the outbound buffer, long login and idle timeouts); argon2's cost and every other key
stay the daemon's defaults unless asked. Its output goes to DIR/chatd.log (never a pipe nobody
reads). A daemon we did not spawn is measured by its pid (`--daemon-pid` or `--pidfile`); with only
a host and port, CPU and memory are reported as unavailable.

CPU is read from /proc/PID/stat (utime + stime of every thread), memory from VmRSS in
/proc/PID/status. Pinning sets the affinity of every thread of the process (a spawned one is pinned
before it starts, so the threads it makes later inherit it).
"""

import contextlib
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Open files for a spawned server (raising the hard limit needs root; else it keeps ours). With
# 20,000, ngircd stopped answering at 9,996 clients.
SERVER_FILES = 65536

# What BENCH.toml changes from chatd's defaults, and why (docs/performance.md repeats it).
BENCH_LIMITS = {
    "max_connections_per_ip": 20000,  # S3 opens 10,000 connections from one address (default 100)
    "rate_per_second": 1000000.0,  # the per-connection request budget (default 20/s) would be the benchmark
    "rate_burst": 1000000,
    "outbound_buffer_bytes": 64 * 1024 * 1024,  # a 200-member room at full speed queues more than 1 MiB
    "idle_timeout": 86400.0,
    "login_timeout": 3600.0,
}
BENCH_THROTTLE = {
    # every connection comes from 127.0.0.1, and the login throttle (docs/security.md) lets one address have at most
    # login_failures_per_address logins undecided at once (each might fail): S3 and the others set up --concurrency
    # connections at a time (default 50)
    "login_failures_per_address": 1000000,
    # L logs in --l-concurrency of them by password at once; past 8 waiting for the password hasher, an address's
    # logins are refused (7030) before any hash
    "hash_queue_per_address": 256,
}


class DaemonError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_toml(argon2: tuple[int, int, int] | None = None, settings: Sequence[tuple[str, str, str]] = ()) -> str:
    """BENCH.toml; `settings` are (section, key, TOML value) the operator asked for (`--set`), over the rest."""
    sections: dict[str, dict[str, str]] = {
        "listeners": {"line": '["tcp:0:interface=127.0.0.1"]', "http": '["tcp:0:interface=127.0.0.1"]', "admin": "[]"},
        "limits": {key: repr(value) for key, value in BENCH_LIMITS.items()},
        "throttle": {key: repr(value) for key, value in BENCH_THROTTLE.items()},
    }
    if argon2 is not None:
        sections["passwords"] = dict(zip(("time_cost", "memory_cost", "parallelism"), map(str, argon2), strict=True))
    for section, key, value in settings:
        sections.setdefault(section, {})[key] = value
    tables = ["\n".join([f"[{name}]", *(f"{key} = {value}" for key, value in values.items())])
              for name, values in sections.items()]  # fmt: skip
    return (
        "# chatd-bench: the daemon's defaults, except what a load test from one address needs.\n"
        + "\n\n".join(tables)
        + "\n"
    )


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def host_busy_seconds() -> float:
    """CPU seconds the processes of the host have used (all cores: user, nice, system).

    Interrupts and softirqs are left out: on loopback they are mostly the benchmark's own packets,
    which the kernel accounts to no process (see `host_times`)."""
    return host_times()["processes"]


def host_times() -> dict[str, float]:
    """The host's CPU seconds (all cores) from /proc/stat: processes (user + nice + system), irq
    (irq + softirq: the network stack, on loopback mostly the benchmark's own traffic) and steal
    (taken by the hypervisor for other machines)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return {
        "processes": (user + nice + system) / CLOCK_TICKS,
        "irq": (irq + softirq) / CLOCK_TICKS,
        "steal": steal / CLOCK_TICKS,
    }


def wait_quiet_host(pid: int | None, max_others_pct: float, timeout: float, sample: float = 2.0) -> dict:
    """Wait (at most `timeout` s) until the rest of the host (every process but `pid` and this one) uses
    less than `max_others_pct` of one core over `sample` seconds. Returns the wait and the last sample."""
    start = time.monotonic()
    others = None
    while True:
        host0, self0 = host_busy_seconds(), time.process_time()
        cpu0 = cpu_seconds(pid) if pid else None
        time.sleep(sample)
        used = host_busy_seconds() - host0 - (time.process_time() - self0)
        cpu1 = cpu_seconds(pid) if pid else None
        if cpu0 is not None and cpu1 is not None:
            used -= cpu1 - cpu0
        others = round(max(0.0, 100 * used / sample), 1)
        waited = time.monotonic() - start
        if others < max_others_pct or waited >= timeout:
            return {"waited_s": round(waited, 1), "others_cpu_pct": others, "quiet": others < max_others_pct}


def rss_kib(pid: int, field: str = "VmRSS") -> int | None:
    """The process's resident memory now (VmRSS), or its peak so far (VmHWM), from /proc."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pin(pid: int, cpu: int) -> dict[int, set[int]]:
    """Pin every thread of `pid` to `cpu`; returns each thread's affinity before, for `unpin`."""
    before: dict[int, set[int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            before[int(tid)] = os.sched_getaffinity(int(tid))
            os.sched_setaffinity(int(tid), {cpu})
    return before


def unpin(before: dict[int, set[int]]) -> None:
    """Give the threads of a server we did not start their affinity back."""
    for tid, cpus in before.items():
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):
            os.sched_setaffinity(tid, cpus)


def read_pidfile(path: str) -> int:
    with open(path) as f:
        return int(f.read().strip())


def raise_fd_limit(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


@dataclass
class Server:
    """Where the load goes, and the process behind it when we know it."""

    kind: str  # chatd, ngircd, words, redis, external
    host: str
    port: int  # the line (or IRC, or Redis) port
    ws_port: int | None = None
    pid: int | None = None
    process: subprocess.Popen | None = None
    log_path: str | None = None
    data_dir: str | None = None
    cleanup: list = field(default_factory=list)

    def stop(self, timeout: float = 20.0) -> int | None:
        """Stop a server we spawned (SIGTERM, then SIGKILL); returns its exit status."""
        p = self.process
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for fn in self.cleanup:
            fn()
        self.cleanup.clear()
        return p.returncode


def _preexec(cpu: int | None) -> Callable[[], None]:
    def run() -> None:
        os.setsid()  # its own process group: a ^C at the terminal reaches chatd-bench, which stops it
        with contextlib.suppress(ValueError, OSError):  # room for 10,000 clients and then some
            resource.setrlimit(resource.RLIMIT_NOFILE, (SERVER_FILES, SERVER_FILES))
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return run


def _wait_log(path: str, process: subprocess.Popen, patterns: dict[str, str], timeout: float) -> dict[str, re.Match]:
    found: dict[str, re.Match] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            text = f.read()
        for name, pattern in patterns.items():
            if name not in found:
                m = re.search(pattern, text)
                if m:
                    found[name] = m
        if len(found) == len(patterns):
            return found
        if process.poll() is not None:
            raise DaemonError(f"the server exited with status {process.returncode}; its log:\n{text[-3000:]}")
        time.sleep(0.05)
    raise DaemonError(f"the server did not start within {timeout:g} s; its log ({path}):\n{text[-3000:]}")


def twistd_path() -> str:
    here = os.path.join(os.path.dirname(sys.executable), "twistd")
    return here if os.path.exists(here) else (shutil.which("twistd") or "twistd")


def spawn_chatd(
    data_dir: str, config_path: str, cpu: int | None, timeout: float = 60.0, twistd: str | None = None
) -> Server:
    log_path = os.path.join(data_dir, "chatd.log")
    log = open(log_path, "w")  # noqa: SIM115 (the daemon writes it for as long as it runs)
    cmd = [twistd or twistd_path(), "-n", "--pidfile=", "chatd", "--data-dir", data_dir, "--config", config_path]
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=_preexec(cpu))
    log.close()
    server = Server("chatd", "127.0.0.1", 0, None, process.pid, process, log_path, data_dir)
    try:
        found = _wait_log(
            log_path,
            process,
            {
                "line": r"line listening on ([\d.]+):(\d+)",
                "http": r"http listening on ([\d.]+):(\d+)",
                "ready": r"chatd ready",
            },
            timeout,
        )
    except BaseException:
        server.stop()
        raise
    server.host, server.port = found["line"].group(1), int(found["line"].group(2))
    server.ws_port = int(found["http"].group(2))
    return server


NGIRCD_CONF = """\
# chatd-bench: ngircd with the limits a load test from one address needs.
[Global]
Name = bench.irc
Info = chatd-bench peer
Listen = 127.0.0.1
Ports = {port}
PidFile = {dir}/ngircd.pid
MotdPhrase = chatd-bench
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 32
PingTimeout = 3600
PongTimeout = 3600
[Options]
DNS = no
Ident = no
PAM = no
# ngircd throttles a client past a few commands a second; an operator with user mode +F ("relaxed
# flood protection") is let through, as chatd's BENCH.toml raises its per-connection rate.
[Operator]
Name = bench
Password = bench
"""

NGIRCD_OPER = "bench:bench"


def spawn_ngircd(work_dir: str, cpu: int | None, timeout: float = 20.0) -> Server:
    binary = shutil.which("ngircd") or "/usr/sbin/ngircd"
    if not os.path.exists(binary):
        raise DaemonError("ngircd is not installed (apt-get install ngircd)")
    port = free_port()
    conf = os.path.join(work_dir, "ngircd.conf")
    with open(conf, "w") as f:
        f.write(NGIRCD_CONF.format(port=port, dir=work_dir))
    log_path = os.path.join(work_dir, "ngircd.log")
    log = open(log_path, "w")  # noqa: SIM115
    process = subprocess.Popen(
        [binary, "-n", "-f", conf], stdout=log, stderr=subprocess.STDOUT, preexec_fn=_preexec(cpu)
    )
    log.close()
    server = Server("ngircd", "127.0.0.1", port, None, process.pid, process, log_path, work_dir)
    try:
        _wait_log(log_path, process, {"ready": r"(?i)now listening on|server .* ready|listening on"}, timeout)
        _wait_port(port, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def spawn_words(work_dir: str, cpu: int | None, timeout: float = 30.0) -> Server:
    port = free_port()
    log_path = os.path.join(work_dir, "words.log")
    log = open(log_path, "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "chatdaemon.bench.wordspeer", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_preexec(cpu),
    )
    log.close()
    server = Server("words", "127.0.0.1", port, None, process.pid, process, log_path, work_dir)
    try:
        _wait_log(log_path, process, {"ready": r"words listening"}, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise DaemonError(f"nothing listens on 127.0.0.1:{port}")


def wait_quiet(pid: int | None, idle_share: float = 0.05, interval: float = 0.25, timeout: float = 15.0) -> float:
    """Wait until the process uses less than `idle_share` of a core over `interval`; returns the seconds waited."""
    if pid is None:
        return 0.0
    start = time.monotonic()
    before = cpu_seconds(pid)
    while before is not None and time.monotonic() - start < timeout:
        time.sleep(interval)
        after = cpu_seconds(pid)
        if after is None or after - before < idle_share * interval:
            break
        before = after
    return time.monotonic() - start
