"""The PostgreSQL and Redis the cluster tests use: the ones running on this machine (127.0.0.1:5432, :6379).

Each test gets a database of its own (CREATE DATABASE chatd_test_<random>, dropped after) and a Redis
key prefix of its own (its keys deleted after), so that runs never see each other. Where a server is
absent, the tests that need it are skipped with a loud reason; with CI=true they fail instead.
A test that must stop a server starts its own (spare_redis), never the shared one.
"""

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import time

import pytest

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, os.environ.get("CHATD_TEST_PG_USER", "postgres")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def missing(what: str) -> None:
    """Skip (loudly), or with CI=true fail, for want of a server."""
    reason = f"*** {what} NOT REACHABLE: the cluster tests need it (CI=true makes this a failure) ***"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def pg_admin_url(database: str = "postgres") -> str:
    return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


@contextlib.contextmanager
def new_database():
    """A fresh PostgreSQL database: yields its URL; dropped afterwards."""
    if not _reachable(PG_HOST, PG_PORT):
        missing(f"PostgreSQL at {PG_HOST}:{PG_PORT}")
    import psycopg

    name = f"chatd_test_{secrets.token_hex(6)}"
    with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_admin_url(name)
    finally:
        with psycopg.connect(pg_admin_url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url():
    with new_database() as url:
        yield url


def redis_prefix() -> str:
    return f"chatd-test-{secrets.token_hex(6)}"


@pytest.fixture
def redis_bus():
    """(redis URL, a key prefix of this test's own); the prefix's keys are deleted afterwards."""
    if not _reachable(REDIS_HOST, REDIS_PORT):
        missing(f"Redis at {REDIS_HOST}:{REDIS_PORT}")
    prefix = redis_prefix()
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/0", prefix
    delete_prefix(REDIS_HOST, REDIS_PORT, prefix)


def _command(sock_file, sock, *args: str):
    """One RESP command on a blocking socket; its reply (ints, bytes, lists, None)."""
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    sock.sendall(b"".join(out))
    return _reply(sock_file)


def _reply(f):
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:]
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if kind == b"*":
        return [_reply(f) for _ in range(int(rest))]
    raise RuntimeError(f"bad reply {line!r}")


def delete_prefix(host: str, port: int, prefix: str) -> None:
    """Delete every key under `prefix` (the test's own)."""
    with socket.create_connection((host, port), timeout=5) as sock, sock.makefile("rb") as f:
        cursor = "0"
        while True:
            cursor_bytes, keys = _command(f, sock, "SCAN", cursor, "MATCH", f"{prefix}:*", "COUNT", "1000")
            if keys:
                _command(f, sock, "DEL", *[k.decode() for k in keys])
            cursor = cursor_bytes.decode()
            if cursor == "0":
                return


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SpareRedis:
    """A redis-server of the test's own, on a free port, that the test may stop and start again."""

    def __init__(self, folder):
        self.port = free_port()
        self.folder = str(folder)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.folder,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _reachable("127.0.0.1", self.port):
            assert time.monotonic() < deadline, "the spare redis-server did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.fixture
def spare_redis(tmp_path):
    if shutil.which("redis-server") is None:
        missing("redis-server (to start a Redis of the test's own)")
    server = SpareRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)
