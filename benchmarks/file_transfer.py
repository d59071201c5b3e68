"""File-transfer benchmark: how long seed clients take to move files through a real `twistd chatd`.

Runs the daemon in a child process (default configuration except the listeners, the data directory and
what `--config` adds) and drives it from this process over loopback TCP, with blocking sockets:

    seed001-up      seed 001's example upload: file_send_init of 1,048,576 bytes in total_packets 1024,
                    1024 file_send_data frames of 1 KiB (sent in a window of 64 unanswered), file_send_fin
    seed001-down    the same file downloaded with file_down_req (the server streams its chunks)
    typed-up-32k    10 MiB over seed 002's MEDIA_MESSAGE flow in 32 KiB chunks (window of 64)
    typed-down      the 10 MiB downloaded by the recipient: MEDIA_MESSAGE_ACK, then one
                    MEDIA_MESSAGE_DATA_ACK per chunk as each arrives (stop and wait, as the seed's flow goes)
    typed-up-1m     10 MiB in seed 002's example chunking: totalChunks 10, 1 MiB each (window of 64)
    typed-up-1k     10 MiB in 1 KiB chunks (10,240 MEDIA_MESSAGE_DATA frames, window of 64)
    chat-flood      200 PINGs sent at once and their PONGs: chat frames keep the frame rate (20/s after a
                    burst of 60: about 7 s); MiB/s means nothing here

Usage: .venv/bin/python benchmarks/file_transfer.py [--config FILE] [--only NAME[,NAME...]]
Prints one line per scenario: seconds and MiB/s of file data. A scenario the server refuses prints the error.
"""

import argparse
import base64
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import orjson

MiB = 1 << 20
WINDOW = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Conn:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.file = self.sock.makefile("rb")
        self.lock = threading.Lock()

    def send(self, frame: dict) -> None:
        data = orjson.dumps(frame) + b"\n"
        with self.lock:
            self.sock.sendall(data)

    def recv(self) -> dict:
        line = self.file.readline()
        if not line:
            raise ConnectionError("closed by the server")
        return orjson.loads(line)

    def until(self, check) -> dict:
        while True:
            frame = self.recv()
            if check(frame):
                return frame


def typed(kind: str, **payload) -> dict:
    return {"type": kind, "timestamp": 1630000000, "payload": payload}


def action(name: str, **data) -> dict:
    return {"action": name, "data": data}


def typed_user(port: int, name: str) -> Conn:
    c = Conn(port)
    c.send(typed("REGISTER_REQUEST", username=name, passwordHash="pw"))
    c.until(lambda f: f["type"] == "REGISTER_RESPONSE")
    c.send(typed("LOGIN_REQUEST", username=name, passwordHash="pw"))
    reply = c.until(lambda f: f["type"] == "LOGIN_RESPONSE")
    assert reply["payload"]["code"] == 0, reply
    return c


def action_user(port: int, name: str) -> Conn:
    c = Conn(port)
    c.send(action("register", chatid=name, password="pw"))
    c.until(lambda f: f["action"] in ("register_success", "register_fail"))
    c.send(action("login", chatid=name, password="pw"))
    reply = c.until(lambda f: f["action"] in ("login_success", "login_fail"))
    assert reply["action"] == "login_success", reply
    return c


def windowed(conn: Conn, frames, is_ack, is_error) -> None:
    """Send `frames` with at most WINDOW unanswered; wait for every answer. Raises on an error frame."""
    frames = list(frames)
    sent = answered = 0
    while answered < len(frames):
        while sent < len(frames) and sent - answered < WINDOW:
            conn.send(frames[sent])
            sent += 1
        frame = conn.recv()
        if is_error(frame):
            raise RuntimeError(orjson.dumps(frame)[:300].decode())
        if is_ack(frame):
            answered += 1


def seed001(port: int, results: dict, only) -> None:
    up, down = action_user(port, "user123"), action_user(port, "user456")
    data = os.urandom(MiB)
    where = {"chat_id": "user123", "room_id": "unique_room_id", "file_path": "my_document.pdf"}
    up.send(action("join_room", room_id="unique_room_id"))
    up.until(lambda f: f["action"] in ("join_room", "error"))
    if "seed001-up" in only:
        start = time.perf_counter()
        up.send(action("file_send_init", **where, file_size=MiB, file_type="application/pdf", total_packets=1024))
        reply = up.until(lambda f: f["action"] in ("file_send_init", "error"))
        if reply["action"] == "error":
            results["seed001-up"] = reply["message"]
            return
        packets = (
            action(
                "file_send_data",
                **where,
                sequence_number=i,
                file_data=base64.b64encode(data[i * 1024 : (i + 1) * 1024]).decode(),
            )
            for i in range(1024)
        )
        try:
            windowed(up, packets, lambda f: f["action"] == "file_send_data", lambda f: f["action"] == "error")
        except RuntimeError as e:
            results["seed001-up"] = str(e)
            return
        up.send(action("file_send_fin", **where, total_packets=1024))
        up.until(lambda f: f["action"] == "file_send_fin")
        results["seed001-up"] = time.perf_counter() - start, MiB
    if "seed001-down" in only:
        start = time.perf_counter()
        down.send(action("file_down_req", chat_id="user456", room_id="unique_room_id", file_path="my_document.pdf"))
        got = bytearray()
        while True:
            f = down.recv()
            if f["action"] == "file_down_data":
                got += base64.b64decode(f["data"]["file_data"])
            elif f["action"] == "file_down_fin":
                break
            elif f["action"] == "error":
                results["seed001-down"] = f["message"]
                return
        assert bytes(got) == data
        results["seed001-down"] = time.perf_counter() - start, MiB


def typed_upload(up: Conn, media: str, data: bytes, chunk: int) -> float | str:
    start = time.perf_counter()
    total = -(-len(data) // chunk)
    up.send(typed("MEDIA_MESSAGE", sender="alice", receiver="bob", mediaId=media, mediaType="image/jpeg",
                  mediaSize=len(data)))  # fmt: skip
    reply = up.until(lambda f: f["type"] in ("MEDIA_MESSAGE_ACK", "ERROR"))
    if reply["payload"]["code"]:
        return reply["payload"]["message"]
    frames = (
        typed(
            "MEDIA_MESSAGE_DATA",
            sender="alice",
            receiver="bob",
            mediaId=media,
            chunkIndex=i + 1,
            totalChunks=total,
            data=base64.b64encode(data[i * chunk : (i + 1) * chunk]).decode(),
        )
        for i in range(total)
    )
    try:
        windowed(
            up,
            frames,
            lambda f: f["type"] == "MEDIA_MESSAGE_DATA_ACK",
            lambda f: f["type"] == "ERROR" or f["payload"].get("code", 0) != 0,
        )
    except RuntimeError as e:
        return str(e)
    up.until(lambda f: f["type"] == "MEDIA_MESSAGE_COMPLETE")
    return time.perf_counter() - start


def typed_flows(port: int, results: dict, only) -> None:
    up, down = typed_user(port, "alice"), typed_user(port, "bob")
    data = os.urandom(10 * MiB)
    if "typed-up-32k" in only or "typed-down" in only:
        took = typed_upload(up, "m32", data, 32 * 1024)
        results["typed-up-32k"] = (took, len(data)) if isinstance(took, float) else took
        if isinstance(took, float) and "typed-down" in only:
            push = down.until(lambda f: f["type"] == "MEDIA_MESSAGE")
            file_id = push["payload"]["mediaId"]
            start = time.perf_counter()
            down.send(typed("MEDIA_MESSAGE_ACK", sender="bob", receiver="alice", mediaId=file_id, code=0))
            got = bytearray()
            while True:
                f = down.until(lambda f: f["type"] in ("MEDIA_MESSAGE_DATA", "ERROR"))
                p = f["payload"]
                if f["type"] == "ERROR" or p.get("code"):
                    results["typed-down"] = p.get("message")
                    break
                got += base64.b64decode(p["data"])
                down.send(typed("MEDIA_MESSAGE_DATA_ACK", sender="bob", receiver="alice", mediaId=file_id,
                                chunkIndex=p["chunkIndex"], code=0))  # fmt: skip
                if p["chunkIndex"] == p["totalChunks"]:
                    down.send(typed("MEDIA_MESSAGE_COMPLETE", sender="bob", receiver="alice", mediaId=file_id, code=0))
                    down.until(lambda f: f["type"] == "MEDIA_MESSAGE_COMPLETE_ACK")
                    assert bytes(got) == data
                    results["typed-down"] = time.perf_counter() - start, len(data)
                    break
    if "typed-up-1m" in only:
        took = typed_upload(up, "m1m", data, MiB)
        results["typed-up-1m"] = (took, len(data)) if isinstance(took, float) else took
    if "chat-flood" in only:
        start = time.perf_counter()
        for n in range(200):
            up.send(typed("PING", n=n))
        for _ in range(200):
            up.until(lambda f: f["type"] == "PONG")
        results["chat-flood"] = time.perf_counter() - start, 200 * 64
    if "typed-up-1k" in only:
        took = typed_upload(up, "m1k", data, 1024)
        results["typed-up-1k"] = (took, len(data)) if isinstance(took, float) else took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="a chatd TOML file for the daemon")
    parser.add_argument(
        "--twistd-args", default="", help="more twistd options, e.g. --profile=FILE --profiler=cprofile"
    )
    parser.add_argument(
        "--only", default="seed001-up,seed001-down,typed-up-32k,typed-down,typed-up-1m,typed-up-1k,chat-flood"
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        command = [twistd, "-n", "--pidfile=", *args.twistd_args.split(), "chatd", "--data-dir", tmp, "--line", f"tcp:{port}:interface=127.0.0.1",
                   "--http", f"tcp:{free_port()}:interface=127.0.0.1", "--admin", f"tcp:{free_port()}:interface=127.0.0.1"]  # fmt: skip
        if args.config:
            command += ["--config", args.config]
        log = open(os.path.join(tmp, "log"), "wb")  # noqa: SIM115 (the daemon writes it until the end)
        daemon = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    time.sleep(0.05)
            results: dict = {}
            seed001(port, results, only)
            typed_flows(port, results, only)
        finally:
            daemon.terminate()
            daemon.wait()
            log.close()
    for name in [n for n in parser.get_default("only").split(",") if n in only]:
        result = results.get(name, "not run")
        if isinstance(result, tuple):
            seconds, size = result
            print(f"{name:14} {seconds:8.2f} s  {size / MiB / seconds:8.2f} MiB/s")
        else:
            print(f"{name:14} failed: {result}")


if __name__ == "__main__":
    main()
