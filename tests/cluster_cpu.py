"""Daemon CPU per message, for docs/scaling.md: `python -m tests.cluster_cpu [--store URL --bus URL] [--workers N]`.

Starts `twistd -n chatd` (with its workers, if asked), connects MEMBERS typed clients to one room,
and has SENDERS of them send ROUNDS x BATCH messages each (pipelined, BATCH at a time, every
member reading everything). The daemon's CPU (user + system, from /proc/PID/stat, of the process
and its workers) over the sending, divided by the messages sent, is the figure; deliveries are
MEMBERS times that. Not a test: a measurement, run by hand (the numbers depend on the machine).
"""

import argparse
import os
import re
import secrets
import selectors
import socket
import subprocess
import sys
import tempfile
import time

import orjson

TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out]


class Client:
    def __init__(self, port: int, name: str):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buffer = b""
        self.name = name

    def send(self, kind: str, **payload) -> None:
        self.sock.sendall(orjson.dumps({"type": kind, "timestamp": 0, "payload": payload}) + b"\n")

    def frames(self) -> list[dict]:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError(self.name)
        *lines, self.buffer = (self.buffer + data).split(b"\n")
        return [orjson.loads(line) for line in lines]

    def expect(self, kind: str) -> dict:
        self.sock.setblocking(True)
        while True:
            for frame in self.frames():
                if frame["type"] == kind:
                    return frame


def run(args) -> dict:
    folder = tempfile.mkdtemp(prefix="chatd-cpu-")
    config = os.path.join(folder, "chatd.toml")
    with open(config, "w") as f:
        f.write("[passwords]\ntime_cost = 1\nmemory_cost = 8\nparallelism = 1\n")
        f.write("[limits]\nrate_per_second = 100000.0\nrate_burst = 100000\nmax_connections_per_ip = 10000\n")
        f.write(f'[store]\nurl = "{args.store}"\n[bus]\nurl = "{args.bus}"\nprefix = "cpu-{secrets.token_hex(4)}"\n')
    command = [TWISTD, "-n", "--pidfile=", "chatd", "--config", config, "--data-dir", folder,
               "--line", "tcp:0:interface=127.0.0.1", "--http", "tcp:0:interface=127.0.0.1",
               "--admin", "tcp:0:interface=127.0.0.1", "--workers", str(args.workers)]  # fmt: skip
    daemon = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    port = None
    try:
        for line in daemon.stdout:
            found = re.search(r"line listening on 127\.0\.0\.1:(\d+)", line)
            if found:
                port = int(found.group(1))
            if "chatd ready" in line:
                break
        assert port, "the daemon did not start"
        clients = []
        for i in range(args.members):
            c = Client(port, f"u{i}")
            c.send("REGISTER_REQUEST", username=c.name, passwordHash="pw")
            c.expect("REGISTER_RESPONSE")
            c.send("LOGIN_REQUEST", username=c.name, passwordHash="pw")
            c.expect("LOGIN_RESPONSE")
            c.send("USER_JOIN", room="bench")
            c.expect("USER_JOIN")
            clients.append(c)
        time.sleep(1.0)  # the joins reach every node
        pids = [daemon.pid, *children(daemon.pid)]
        senders = clients[: args.senders]
        selector = selectors.DefaultSelector()
        for c in clients:
            c.sock.setblocking(False)
            selector.register(c.sock, selectors.EVENT_READ, c)
        before, started = cpu_seconds(pids), time.monotonic()
        sent = 0
        for _ in range(args.rounds):
            for s in senders:
                for n in range(args.batch):
                    s.send("TEXT_MESSAGE", receiver="bench", content=f"message {n} from {s.name}")
            sent += args.batch * len(senders)
            acks = {s.name: 0 for s in senders}
            got = {c.name: 0 for c in clients}
            want = args.batch * len(senders)
            while (
                min(acks.values()) < args.batch
                or min(got[c.name] + (args.batch if c in senders else 0) for c in clients) < want
            ):
                for key, _ in selector.select(30):
                    c = key.data
                    for frame in c.frames():
                        if frame["type"] == "MESSAGE_ACK":
                            acks[c.name] += 1
                        elif frame["type"] == "TEXT_MESSAGE":
                            got[c.name] += 1
        seconds, cpu = time.monotonic() - started, cpu_seconds(pids) - before
        return {
            "messages": sent,
            "deliveries": sent * (args.members - 1),
            "seconds": round(seconds, 2),
            "daemon_cpu_s": round(cpu, 2),
            "cpu_us_per_message": round(cpu / sent * 1e6, 1),
            "cpu_us_per_delivery": round(cpu / (sent * (args.members - 1)) * 1e6, 2),
            "messages_per_s": round(sent / seconds),
        }
    finally:
        daemon.terminate()
        daemon.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default="sqlite:")
    parser.add_argument("--bus", default="local")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50)
    print(orjson.dumps(run(parser.parse_args())).decode())


if __name__ == "__main__":
    main()
