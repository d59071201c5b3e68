"""`twistd chatd`: command-line options, the service they build, and its signals."""

import os
import signal
from typing import Any

from twisted.application.service import MultiService
from twisted.internet import reactor
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python import usage

from . import config as configuration
from . import logs, workers
from .listeners import CannotBind, check_endpoint
from .service import ChatService
from .tls import PREFIX as TLS_PREFIX
from .tls import ReloadableTLS, TLSFileError


def _stop(message: str) -> SystemExit:
    """A start-up error: one line on stderr, exit status 1 (a UsageError would print the whole --help first)."""
    return SystemExit(f"chatd: {message}")


class Options(usage.Options):
    synopsis = (
        "[--line ENDPOINT]... [--http ENDPOINT]... [--admin ENDPOINT]... [--irc ENDPOINT]... [--data-dir DIR] "
        "[--config FILE]"
    )
    longdesc = (
        "chatd: one chat core speaking five dialects (typed: seeds 000/002, action: 001, events: 003, colon: 004, "
        "and text for nc/telnet) over line transports (TCP, TLS) and WebSocket, and IRC on its own listeners, with a "
        "REST API, a web chat page and an SSH admin shell. Listener options take Twisted endpoint strings (tcp:PORT[:interface=ADDR], "
        "ssl:PORT:privateKey=KEY.pem:certKey=CERT.pem, systemd:domain=INET:name=NAME, or tls:ENDPOINT for TLS "
        "with the [tls] files of the config) and may repeat; given on the command line they replace the config "
        "file's list. Defaults: --line tcp:7070:interface=127.0.0.1, --http tcp:8080:interface=127.0.0.1, "
        "--admin tcp:2222:interface=127.0.0.1, no --irc. SIGHUP reloads the config file; SIGTERM stops gracefully."
    )
    optParameters = [  # noqa: RUF012 (usage.Options reads it from the class)
        ["data-dir", "d", None, "Directory for the database and the SSH host key (default: ./var, or data_dir)."],
        ["config", "c", None, "TOML configuration file; every key is documented in etc/chatd.toml."],
        [
            "admin-keys",
            None,
            None,
            "OpenSSH authorized_keys file of the admin shell (default: the config file's admin.authorized_keys,"
            f" else {configuration.Admin().authorized_keys}).",
        ],
        [
            "log-format",
            None,
            None,
            "text or json, with `twistd --logger chatdaemon.logs.observer` (default: log.format).",
        ],
        ["store", None, None, 'Where durable state lives: "sqlite:" (the default, under --data-dir) or '
         '"postgresql://user@host:port/db" (several nodes). Default: store.url.'],
        ["bus", None, None, 'What links the nodes: "local" (the default: a node alone) or "redis://host:port/db". '
         "Default: bus.url."],
        ["node-id", None, None, "This node's name in logs, /metrics and the admin shell (default: node.id, or the "
         "host name)."],
        ["workers", None, None, "Processes on this host sharing the listening sockets, each a node of the cluster "
         "(needs PostgreSQL and Redis). Default: node.workers (1)."],
    ]  # fmt: skip

    def __init__(self):
        super().__init__()
        self["line"], self["http"], self["admin"], self["irc"] = [], [], [], []

    def opt_line(self, description: str) -> None:
        """Line transport endpoint (one JSON object or text command per line), e.g. tcp:7070 or ssl:7071:privateKey=key.pem:certKey=cert.pem. Repeatable."""
        self["line"].append(description)

    def opt_http(self, description: str) -> None:
        """HTTP endpoint, plain or TLS: the web chat page at /, the WebSocket at /ws, the REST API, GET /health and GET /metrics. Repeatable."""
        self["http"].append(description)

    def opt_admin(self, description: str) -> None:
        """SSH admin shell endpoint; keep it on loopback or a private network. Repeatable."""
        self["admin"].append(description)

    def opt_irc(self, description: str) -> None:
        """IRC endpoint, plain or TLS (e.g. tcp:6667, or tls:tcp:6697 with the [tls] files): IRC clients log in to chatd accounts and share its rooms. Repeatable."""
        self["irc"].append(description)

    def postOptions(self) -> None:
        overrides: dict[str, Any] = {key: tuple(self[key]) for key in ("line", "http", "admin", "irc") if self[key]}
        for option, key in (
            ("data-dir", "data_dir"),
            ("admin-keys", "admin.authorized_keys"),
            ("log-format", "log.format"),
            ("store", "store.url"),
            ("bus", "bus.url"),
            ("node-id", "node.id"),
        ):
            if self[option]:
                overrides[key] = self[option]
        if self["workers"]:
            if not self["workers"].isdigit() or int(self["workers"]) < 1:
                raise _stop(f"--workers {self['workers']}: a number of processes, 1 or more")
            overrides["node.workers"] = int(self["workers"])
        overrides.update(workers.inherited_overrides())
        self.source = configuration.Source(self["config"], overrides)
        try:
            config = self.source.load()
        except configuration.ConfigError as e:
            raise _stop(f"config: {e}") from None
        for role in ("line", "http", "admin", "irc"):
            for description in getattr(config, role):
                _check_listener(role, description, config)
        if config.tls.certificate:
            try:
                ReloadableTLS(config.tls.certificate, config.tls.private_key)
            except TLSFileError as e:
                raise _stop(f"config: tls: {e}") from None
        keys = config.admin_shell.authorized_keys
        if config.admin and os.path.exists(keys) and not os.access(keys, os.R_OK):
            raise _stop(f"config: admin.authorized_keys: {keys} is not readable")
        if config.node.workers > 1 and not config.cluster:
            raise _stop(
                f"--workers {config.node.workers}: workers are nodes of a cluster and need the PostgreSQL store and "
                "the Redis bus (--store postgresql://... --bus redis://...); with SQLite, run one process"
            )
        if config.node.workers > 1:
            workers.check_listeners(config)
        logs.configure(config.log)
        self.config = config


def _check_listener(role: str, description: str, config) -> None:
    if description.startswith(TLS_PREFIX) and (role == "admin" or not config.tls.certificate):
        why = "the admin shell is SSH already" if role == "admin" else "needs [tls] certificate and private_key"
        raise _stop(f"--{role} {description}: {why}")
    try:
        check_endpoint(reactor, description)
    except (ValueError, OSError) as e:
        raise _stop(f"--{role} {description}: {e}") from None


def _handle_signals(service: ChatService) -> None:
    """SIGTERM stops gracefully and lets the process exit 0 (twistd's own handler has it die by
    the signal once stopped); SIGHUP reloads the configuration."""
    # adapted, as Twisted advises: the global reactor is typed by its common interfaces only
    threads = IReactorFromThreads(reactor)
    signal.signal(signal.SIGTERM, lambda *_: threads.callFromThread(service.shutdown, "SIGTERM"))
    signal.signal(signal.SIGHUP, lambda *_: threads.callFromThread(service.reload))


class Daemon(MultiService):
    """What twistd runs: the chat service, once `[log] level` is on twistd's log observers (twistd
    begins logging after makeService, before this starts); a port that cannot be bound ends start-up
    with one line and exit status 1, like a bad config value."""

    def __init__(self, chat: ChatService):
        super().__init__()
        self.chat = chat
        chat.setServiceParent(self)

    def privilegedStartService(self) -> None:
        logs.apply_level(self.chat.config.log)
        try:
            super().privilegedStartService()
        except CannotBind as e:
            raise _stop(str(e)) from None


def makeService(options: Options):
    if options.config.node.workers > 1:
        supervisor = workers.Supervisor(options.config, reactor)
        reactor.addSystemEventTrigger("after", "startup", supervisor.handle_signals)
        return supervisor
    service = ChatService(options.config, reactor, options.source)
    # after twistd's handlers, which are installed during startup
    reactor.addSystemEventTrigger("after", "startup", _handle_signals, service)
    return Daemon(service)
