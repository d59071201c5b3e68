"""A real full disk: the daemon's data directory on a small tmpfs, filled up while it serves. Sends get 9020 (never
an ack for what was not stored), /health answers 503, the admin shell's `stats` says why, and all of it ends by
itself once space returns. Mounting needs root: without it the test is skipped with the reason (failed when
CI=true)."""

import base64
import dataclasses
import errno
import os
import sqlite3
import subprocess

import orjson
import pytest
import pytest_twisted
from twisted.internet import reactor, task

from chatdaemon import errors
from chatdaemon.config import Admin, Files, Storage
from chatdaemon.store import fault_of
from chatdaemon.store.sqlite import sqlite_fault
from tests.conftest import connect, make_config, need, start_service, typed_user
from tests.integration.test_admin import LOOPBACK, new_key, run
from tests.wsclient import Http

DISK_BYTES = 8 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        need(f"FULL-DISK TEST: cannot mount a small tmpfs (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory) -> str:
    """Write a file until the disk is full; its path."""
    path = os.path.join(directory, "filler")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return path


async def health(service) -> tuple[int, dict]:
    http = Http(service)
    try:
        return await http.json("GET", "/health")
    finally:
        await http.close()


@pytest_twisted.ensureDeferred
async def test_a_full_disk_refuses_sends_with_9020_reports_not_ready_and_recovers_by_itself(small_disk, tmp_path):
    key = new_key()
    keys_path = tmp_path / "admin_keys"
    keys_path.write_bytes(key.public().toString("openssh") + b" operator@test\n")
    config = make_config(small_disk / "data", admin=(LOOPBACK,))
    config = dataclasses.replace(
        config, storage=Storage(probe_interval=0.2), admin_shell=Admin(authorized_keys=str(keys_path))
    )
    service = await start_service(config)
    try:
        alice, bob = await typed_user(service, "alice"), await typed_user(service, "bob")
        for client in (alice, bob):
            client.send("USER_JOIN", room="lobby")
            await client.payload("USER_JOIN")
        colon = await connect(service)
        colon.send_raw(b'{"type": "USER:LOGIN", "data": {"username": "alice", "password": "secret"}}\n')
        filler = fill(small_disk)

        acked, refused = [], None
        for n in range(2000):  # SQLite may still fit a few commits into its write-ahead log
            alice.send("TEXT_MESSAGE", room="lobby", content=f"{n:04d} " + "x" * 3000)
            reply = await alice.frame()
            while reply["type"] not in ("MESSAGE_ACK", "MESSAGE_NACK"):
                reply = await alice.frame()
            ack = reply["payload"]
            if ack["code"] != 0:
                refused = ack
                break
            acked.append(n)
        assert refused is not None, "the disk never filled"
        assert refused["code"] == errors.STORAGE_UNWRITABLE and "disk full" in refused["message"]
        status, body = await health(service)
        assert status == 503 and body["status"] == "storage unavailable" and "database: disk full" in body["storage"]
        text, _ = await run(service, "stats", key)
        assert "storage      CANNOT WRITE: database: disk full" in text

        # a file cannot be stored either: the same code, in the colon dialect's form
        image = base64.b64encode(os.urandom(100_000)).decode()
        colon.send_raw(orjson.dumps({"type": "CHAT:SEND_MESSAGE_IMAGE", "data": {"groupId": "lobby", "data": image}}))
        colon.send_raw(b"\n")
        while True:
            frame = orjson.loads(await colon.line())
            if frame["type"] == "ERROR":
                break
        assert frame["data"]["code"] == errors.STORAGE_UNWRITABLE

        os.remove(filler)  # space returns: the next probe ends the fault, with nobody asking
        for _ in range(100):
            status, body = await health(service)
            if status == 200:
                break
            await task.deferLater(reactor, 0.1, lambda: None)
        assert (status, body) == (200, {"status": "ok"})
        text, _ = await run(service, "stats", key)
        assert "storage      writable" in text
        alice.send("TEXT_MESSAGE", room="lobby", content="space again")
        assert (await alice.payload("MESSAGE_ACK"))["code"] == 0
        delivered = [orjson.loads(line)["payload"]["content"] for line in await bob.sync()]
        assert delivered[-1] == "space again" and len(delivered) == len(acked) + 1  # the refused one never left
        http = Http(service)
        try:
            _, login = await http.json("POST", "/login", json={"username": "bob", "password": "secret"})
            _, page = await http.json("GET", "/messages?cid=lobby&limit=100", token=login["token"])
        finally:
            await http.close()
        stored = [m["text"] for m in page["messages"]]
        assert [t[:4] for t in stored[-len(acked) - 1 : -1]] == [f"{n:04d}" for n in acked]
        assert stored[-1] == "space again" and f"{len(acked):04d}" not in {t[:4] for t in stored}
        for client in (alice, bob, colon):
            await client.close()
    finally:
        await service.stopService()


def test_faults_are_told_apart_from_other_errors(tmp_path):
    path = tmp_path / "ro.sqlite3"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    readonly = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError) as refused:
        readonly.execute("INSERT INTO t VALUES (1)")
    assert sqlite_fault(refused.value) == "read-only"
    assert sqlite_fault(sqlite3.OperationalError("database or disk is full")) == "disk full"
    assert sqlite_fault(sqlite3.IntegrityError("UNIQUE constraint failed: users.name")) == ""
    assert fault_of(OSError(errno.ENOSPC, "No space left on device")) == "disk full"
    assert fault_of(OSError(errno.EROFS, "Read-only file system")) == "read-only file system"
    assert fault_of(OSError(errno.ENOENT, "No such file")) == ""


@pytest_twisted.ensureDeferred
async def test_the_servers_space_for_files_refuses_new_uploads_with_9021_and_keeps_the_rest_working(data_dir):
    config = dataclasses.replace(make_config(data_dir), files=Files(max_total_bytes=3000))
    service = await start_service(config)
    try:
        alice, bob = await typed_user(service, "alice"), await typed_user(service, "bob")
        colon = await connect(service)
        colon.send_raw(b'{"type": "USER:LOGIN", "data": {"username": "alice", "password": "secret"}}\n')
        colon.send_raw(b'{"type": "GROUP:JOIN_GROUP", "data": "pics"}\n')

        async def post(size: int) -> dict:
            image = base64.b64encode(os.urandom(size)).decode()
            colon.send_raw(
                orjson.dumps({"type": "CHAT:SEND_MESSAGE_IMAGE", "data": {"groupId": "pics", "data": image}})
            )
            colon.send_raw(b"\n")
            while True:
                frame = orjson.loads(await colon.line())
                if frame["type"] in ("ERROR", "CHAT:MESSAGE_RETURN_IMAGE"):
                    return frame

        assert (await post(2000))["type"] == "CHAT:MESSAGE_RETURN_IMAGE"
        refused = await post(1001)  # 2000 + 1001 > 3000, whoever uploads it
        assert refused["type"] == "ERROR" and refused["data"]["code"] == errors.FILE_SPACE_FULL
        bob.send("MEDIA_MESSAGE", receiver="alice", mediaId="m1", mediaType="image/png", mediaSize=1001)
        assert (await bob.payload("MEDIA_MESSAGE_ACK"))["code"] == errors.FILE_SPACE_FULL
        assert (await post(1000))["type"] == "CHAT:MESSAGE_RETURN_IMAGE"  # exactly at the bound
        bob.send("TEXT_MESSAGE", receiver="alice", content="messages still go")
        assert (await bob.payload("MESSAGE_ACK"))["code"] == 0
        assert (await alice.payload("TEXT_MESSAGE"))["content"] == "messages still go"
        for client in (alice, bob, colon):
            await client.close()
    finally:
        await service.stopService()


def bind_read_only(path) -> None:
    """Make `path` a read-only view of itself (a bind mount); what is open for writing there stays open."""
    for command in (["mount", "--bind", str(path), str(path)], ["mount", "-o", "remount,bind,ro", str(path)]):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["umount", str(path)], check=False, capture_output=True)
            need(f"READ-ONLY TEST: cannot bind-mount read-only (needs root): {done.stderr.strip()}")


@pytest_twisted.ensureDeferred
async def test_a_read_only_file_system_refuses_uploads_with_9020_and_recovers(data_dir):
    service = await start_service(dataclasses.replace(make_config(data_dir), storage=Storage(probe_interval=0.2)))
    mounted = []
    try:
        colon = await connect(service)
        colon.send_raw(b'{"type": "USER:REGISTER", "data": {"username": "alice", "password": "secret"}}\n')
        colon.send_raw(b'{"type": "USER:LOGIN", "data": {"username": "alice", "password": "secret"}}\n')
        colon.send_raw(b'{"type": "GROUP:JOIN_GROUP", "data": "pics"}\n')

        async def post() -> dict:
            image = base64.b64encode(os.urandom(1000)).decode()
            colon.send_raw(
                orjson.dumps({"type": "CHAT:SEND_MESSAGE_IMAGE", "data": {"groupId": "pics", "data": image}})
            )
            colon.send_raw(b"\n")
            while True:
                frame = orjson.loads(await colon.line())
                if frame["type"] in ("ERROR", "CHAT:MESSAGE_RETURN_IMAGE"):
                    return frame

        for part in ("uploads", "files"):
            bind_read_only(data_dir / part)
            mounted.append(data_dir / part)
        refused = await post()
        assert refused["type"] == "ERROR" and refused["data"]["code"] == errors.STORAGE_UNWRITABLE
        assert "read-only file system" in refused["data"]["message"]
        status, body = await health(service)
        assert status == 503 and body["storage"] == "files: read-only file system"
        for path in mounted:
            subprocess.run(["umount", str(path)], check=True)
        mounted.clear()
        for _ in range(100):
            status, body = await health(service)
            if status == 200:
                break
            await task.deferLater(reactor, 0.1, lambda: None)
        assert (status, body) == (200, {"status": "ok"})
        assert (await post())["type"] == "CHAT:MESSAGE_RETURN_IMAGE"
        await colon.close()
    finally:
        for path in mounted:
            subprocess.run(["umount", str(path)], check=False)
        await service.stopService()
