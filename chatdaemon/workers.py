"""`--workers N`: N processes on one host, each a node of the cluster, sharing the listening sockets.

A Python process uses one core; workers let one host use several. The parent (`twistd chatd
--workers N`) binds every listener itself, then starts N workers, each `twistd -n chatd` with the
same options, handing each the listening sockets (inherited descriptors, `fd:N` descriptions) and
its node id (NODE-wI). The kernel gives each new connection to one of the workers accepting on the
shared socket. The parent never accepts a connection: it supervises.

- A worker that dies is started again (after RESTART_SECONDS, longer if it keeps dying young);
  its clients reconnect, to any worker, and the others see its users go offline when its Redis
  heartbeat expires (or at once, if it could say goodbye).
- SIGTERM and SIGHUP reach every worker; the parent exits once all have stopped.
- Under systemd, the parent says READY=1 once every worker has said it is ready (over a pipe).

Workers are nodes like any other, so they need what nodes share: the PostgreSQL store and the
Redis bus. Start-up refuses more than one worker on SQLite with one line (tap.py).
"""

import contextlib
import json
import os
import signal
import socket
import sys
from typing import Any

from twisted.application.service import Service
from twisted.internet import endpoints, protocol
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessExitedAlready
from twisted.logger import Logger

from . import sdnotify
from .tls import PREFIX as TLS_PREFIX

ENV = "CHATD_WORKER"  # in a worker: JSON {"node", "line", "http", "admin", "ready_fd"}
READY_FD = 3
FIRST_LISTENER_FD = 4
RESTART_SECONDS = 1.0
MAX_RESTART_SECONDS = 30.0
YOUNG_SECONDS = 10.0  # a worker that dies sooner than this after starting is restarted later and later
STOP_SECONDS = 30.0

_SHAREABLE = ("tcp:", "tcp6:", "systemd:")


def inherited_overrides() -> dict:
    """In a worker: the config overrides its parent gave it (listeners as inherited sockets, node id)."""
    raw = os.environ.get(ENV)
    if not raw:
        return {}
    spec = json.loads(raw)
    return {
        "line": tuple(spec["line"]),
        "http": tuple(spec["http"]),
        "admin": tuple(spec["admin"]),
        "node.id": spec["node"],
        "node.workers": 1,
    }


def say_ready() -> None:
    """In a worker: tell the parent this worker serves."""
    raw = os.environ.get(ENV)
    if raw:
        fd = json.loads(raw)["ready_fd"]
        with contextlib.suppress(OSError):
            os.write(fd, b"ready\n")


def check_listeners(config) -> None:
    """With workers, every listener must be a socket the workers can share."""
    for role in ("line", "http", "admin"):
        for description in getattr(config, role):
            if not description.removeprefix(TLS_PREFIX).startswith(_SHAREABLE):
                raise SystemExit(
                    f"chatd: --{role} {description}: with --workers, listeners are tcp:..., tls:tcp:... or "
                    "systemd:... (an ssl: endpoint cannot be shared: use tls:tcp:PORT with the [tls] files)"
                )


def _child_argv() -> list[str]:
    """twistd's own options of this process, made fit for a worker (foreground, no pidfile), then chatd's."""
    argv = sys.argv[1:]
    at = argv.index("chatd") if "chatd" in argv else len(argv)
    own, rest = argv[:at], argv[at + 1 :]
    kept, skip = [], False
    for arg in own:
        if skip:
            skip = False
            continue
        if arg in ("-n", "--nodaemon") or arg.startswith("--pidfile="):
            continue
        if arg == "--pidfile":
            skip = True
            continue
        kept.append(arg)
    return ["-n", "--pidfile=", *kept, "chatd", *rest]


class _Worker(protocol.ProcessProtocol):
    def __init__(self, supervisor: "Supervisor", index: int):
        self.supervisor, self.index = supervisor, index
        self.started_at = 0.0
        self.ready = False
        self.ended: Deferred = Deferred()

    def childDataReceived(self, fd: int, data: bytes) -> None:
        if fd == READY_FD and b"ready" in data and not self.ready:
            self.ready = True
            self.supervisor.worker_ready(self)

    def processEnded(self, reason) -> None:
        self.ended.callback(reason.value)
        self.supervisor.worker_ended(self, reason.value)


class Supervisor(Service):
    """The parent of `--workers N`: binds the listeners, starts the workers, restarts them, passes signals on."""

    log = Logger()

    def __init__(self, config, reactor):
        self.config, self.reactor = config, reactor
        self.count = config.node.workers
        self.base = config.node.id or socket.gethostname()
        self.ports: list[tuple[str, str, Any]] = []  # (role, tls prefix, IListeningPort)
        self.workers: dict[int, _Worker] = {}
        self.processes: dict[int, Any] = {}  # IProcessTransport
        self._delays: dict[int, float] = {}
        self._reload_when_ready: set[int] = set()  # workers a SIGHUP came for while they were starting
        self._stopping = False
        self._announced = False

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        factory = protocol.Factory.forProtocol(protocol.Protocol)  # never used: the parent accepts nothing
        for role in ("line", "http", "admin"):
            for description in getattr(self.config, role):
                inner = description.removeprefix(TLS_PREFIX)
                outcome: list = []
                endpoints.serverFromString(self.reactor, inner).listen(factory).addBoth(outcome.append)
                if not outcome or not hasattr(outcome[0], "getHost"):
                    if outcome:
                        outcome[0].raiseException()
                    raise RuntimeError(f"--{role} {description}: the endpoint did not bind at start")
                port = outcome[0]
                port.stopReading()
                host = port.getHost()
                self.ports.append((role, description[: len(description) - len(inner)], port))
                self.log.info("{role} listening on {host}:{port}", role=role, host=host.host, port=host.port)
        if self.config.admin:
            from .transports.admin import host_key

            host_key(self.config.data_dir)  # made once here, not raced by the workers

    def startService(self) -> None:
        super().startService()
        for index in range(1, self.count + 1):
            self._spawn(index)

    def _spawn(self, index: int) -> None:
        if self._stopping:
            return
        child_fds: dict[int, object] = {0: "w", 1: 1, 2: 2, READY_FD: "r"}
        described: dict[str, list[str]] = {"line": [], "http": [], "admin": []}
        for n, (role, tls, port) in enumerate(self.ports):
            fd = FIRST_LISTENER_FD + n
            child_fds[fd] = port.fileno()
            described[role].append(f"{tls}fd:{fd}")
        spec = {"node": f"{self.base}-w{index}", "ready_fd": READY_FD, **described}
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
        env[ENV] = json.dumps(spec)
        worker = _Worker(self, index)
        worker.started_at = self.reactor.seconds()
        self.workers[index] = worker
        script = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
        self.processes[index] = self.reactor.spawnProcess(
            worker, sys.executable, [sys.executable, "-c", script, *_child_argv()], env=env, childFDs=child_fds
        )
        self.log.info("worker {index} started as node {node}", index=index, node=spec["node"])

    def worker_ready(self, worker: _Worker) -> None:
        self._delays.pop(worker.index, None)
        if worker.index in self._reload_when_ready:
            self._reload_when_ready.discard(worker.index)
            with contextlib.suppress(ProcessExitedAlready, OSError):
                self.processes[worker.index].signalProcess(signal.SIGHUP)
        if not self._announced and all(w.ready for w in self.workers.values()) and len(self.workers) == self.count:
            self._announced = True
            self.log.info("chatd ready: {n} workers", n=self.count)
            sdnotify.notify("READY=1", f"STATUS=serving with {self.count} workers")

    def worker_ended(self, worker: _Worker, reason) -> None:
        if self.workers.get(worker.index) is worker:
            del self.workers[worker.index]
            self.processes.pop(worker.index, None)
        if self._stopping:
            if not self.workers:
                self.log.info("every worker has stopped")
                self.reactor.stop()
            return
        lived = self.reactor.seconds() - worker.started_at
        delay = self._delays.get(worker.index, RESTART_SECONDS)
        self._delays[worker.index] = min(MAX_RESTART_SECONDS, delay * 2) if lived < YOUNG_SECONDS else RESTART_SECONDS
        self.log.warn(
            "worker {index} ended ({reason}); starting it again in {delay:.1f} s",
            index=worker.index, reason=getattr(reason, "exitCode", reason), delay=delay,
        )  # fmt: skip
        self.reactor.callLater(delay, self._spawn, worker.index)

    def handle_signals(self) -> None:
        """SIGTERM: stop every worker, then exit 0; SIGHUP: every worker reloads (installed after twistd's)."""
        signal.signal(signal.SIGTERM, lambda *_: self.reactor.callFromThread(self.shutdown, "SIGTERM"))
        signal.signal(signal.SIGHUP, lambda *_: self.reactor.callFromThread(self.signal_all, signal.SIGHUP))

    def signal_all(self, signum: int) -> None:
        """Send `signum` to every worker; a SIGHUP waits for a worker still starting (before its handler is in
        place, SIGHUP's default action would end it) and reaches it once it is ready."""
        for index, process in list(self.processes.items()):
            if signum == signal.SIGHUP and not self.workers[index].ready:
                self._reload_when_ready.add(index)
                continue
            with contextlib.suppress(ProcessExitedAlready, OSError):
                process.signalProcess(signum)

    def shutdown(self, why: str) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.log.info("{why}: stopping {n} workers", why=why, n=len(self.workers))
        sdnotify.notify("STOPPING=1")
        if not self.workers:
            self.reactor.stop()
            return
        self.signal_all(signal.SIGTERM)
        self.reactor.callLater(STOP_SECONDS, self.signal_all, signal.SIGKILL)

    def stopService(self):
        for _, _, port in self.ports:
            port.stopListening()
        return super().stopService()
