"""ChatService: bus, store, then state, then core, then listeners; and the reverse on stop.

The engines come from the config: the store is SQLite under data_dir or PostgreSQL
([store] url), the bus local or Redis ([bus] url); files go with the store (a directory
beside SQLite, the database with PostgreSQL: see docs/scaling.md).

Under systemd (Type=notify) it says READY=1 once every listener is bound and the
state is loaded, STOPPING=1 when it begins to stop, RELOADING=1 around a
reload, and WATCHDOG=1 if the unit has a watchdog.
"""

import gc
import os
import socket
import time
from collections import Counter
from typing import Any

from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.conch.ssh.keys import FingerprintFormats
from twisted.conch.ssh.transport import DISCONNECT_BY_APPLICATION
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger

from . import errors, logs, reload, sdnotify, workers
from .bus.local import LocalBus
from .bus.redis import RedisBus
from .core.accounts import Passwords
from .core.chat import Core
from .core.events import Notice
from .core.handling import background
from .core.throttle import FairQueue
from .dialects import fallback_error
from .dialects.irc.encode import closing
from .errors import ChatError
from .listeners import AddressCounter, Listeners
from .metrics import Metrics, Sampler, ServiceCollector
from .session.governor import Governor
from .store.files import FileStore
from .store.sqlite import SQLiteStore
from .tls import ReloadableTLS
from .transports.admin import AdminFactory, AdminKeys, host_key
from .transports.connection import Connections
from .transports.http import make_site, page_children
from .transports.irc import IrcFactory
from .transports.line import LineFactory
from .transports.rest import bounded_request, rest_children
from .transports.socketio_chat import socketio_server
from .transports.websocket import ChatWebSocketFactory, websocket_resource

STOP_GRACE_SECONDS = 5.0
FIRST_FRAME_SECONDS = 0.25  # at a stop, how long a connection that has not spoken yet may take to show its dialect
PRUNE_SECONDS = 60.0  # how often client message ids past limits.resend_window are forgotten
# Collect young objects 10x less often than CPython's default (700): a chat daemon allocates many short-lived
# objects per message, and each young collection walks them all (docs/performance.md has the measurements).
GC_THRESHOLDS = (7000, 10, 100)


def settle_garbage_collector() -> None:
    """Once the state is loaded: collect, then freeze what survives (users, rooms, modules) into the permanent
    generation, so that no later full collection walks it again; then raise the thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def make_store(config, reactor) -> tuple[Any, Any]:
    """The store and the file store the config names."""
    if config.store.url == "sqlite:":
        sqlite = SQLiteStore(config.data_dir, reactor, config.storage.group_commit_max, config.storage.synchronous)
        return sqlite, FileStore(config.data_dir)
    from .store.postgres import PostgresStore

    postgres = PostgresStore(
        config.store.url, reactor, config.store.pool_size, config.storage.group_commit_max, config.store.timeout
    )
    return postgres, postgres.file_store(os.path.join(config.data_dir, "uploads"))


def make_bus(config, reactor):
    node_id = config.node.id or socket.gethostname()
    if config.bus.url == "local":
        return LocalBus(node_id)
    return RedisBus(config.bus.url, config.bus.prefix, node_id, reactor, config.bus.heartbeat, config.bus.expiry)


class ChatService(MultiService):
    log = Logger()

    def __init__(self, config, reactor, source=None):
        """`source` (a config.Source) is what `reload()` reads again; None: nothing to re-read."""
        super().__init__()
        self.config = config
        self.source = source
        self.reactor = reactor
        self.state = "starting"  # then "ok", then "stopping"
        self.started_at = time.time()
        self._first_message_id = 0
        self.metrics = Metrics()
        self.store, self.file_store = make_store(config, reactor)
        self.bus = make_bus(config, reactor)
        self.node_id = self.bus.node_id
        pw, throttle = config.passwords, config.throttle
        hashes = FairQueue(pw.max_concurrent, throttle.hash_queue_per_address, throttle.hash_queue)
        self.passwords = Passwords(pw.time_cost, pw.memory_cost, pw.parallelism, hashes)
        self.core = Core(self.store, self.file_store, self.bus, self.passwords, config.limits, config.files, reactor,
                         throttle)  # fmt: skip
        TimerService(60, self.core.files.expire).setServiceParent(self)
        TimerService(config.storage.cursor_interval, self.core.delivery.save_cursors).setServiceParent(self)
        self._prune = LoopingCall(self._forget_sent_ids)  # started once the store is open
        self._prune.clock = reactor
        self._probe = LoopingCall(self._probe_storage)
        self._probe.clock = reactor
        self.governor = Governor(
            reactor,
            config.overload,
            self.store.pending_writes,
            lambda: (s.queued_bytes for s in self.connections.sessions),
        )
        if isinstance(self.bus, RedisBus):
            TimerService(config.bus.resync_interval, self._resync).setServiceParent(self)
            TimerService(config.bus.heartbeat, self._report).setServiceParent(self)
        self.connections = Connections(self.core, config.limits, reactor, self.metrics, self.governor)
        self.tls = ReloadableTLS(config.tls.certificate, config.tls.private_key) if config.tls.certificate else None
        self.listeners = Listeners(reactor, self.tls)
        farewell = fallback_error(ChatError(errors.TOO_MANY_CONNECTIONS)) + b"\n"
        per_ip = lambda: self.config.limits.max_connections_per_ip  # noqa: E731 (read at each connection)
        self.line_factory = LineFactory(self.connections, AddressCounter(per_ip), farewell, self._refused_per_ip)
        for description in config.line:
            self.listeners.add("line", description, self.line_factory)
        irc_farewell = closing(errors.TOO_MANY_CONNECTIONS, errors.MESSAGES[errors.TOO_MANY_CONNECTIONS]) + b"\r\n"
        self.irc_factory = IrcFactory(
            self.connections, config.irc_options, AddressCounter(per_ip), irc_farewell, self._refused_per_ip
        )
        for description in config.irc:
            self.listeners.add("irc", description, self.irc_factory)
        http_addresses = AddressCounter(per_ip)
        self.ws_factory = ChatWebSocketFactory(self.connections, config.http_options, http_addresses)
        self.socketio = socketio_server(self.connections, config, reactor, http_addresses)
        children = {
            **page_children(),
            b"ws": websocket_resource(self.ws_factory),
            b"socket.io": self.socketio.resource,
            **rest_children(
                self.core, self.file_store, min(config.files.chunk_bytes, config.http_options.max_body_bytes)
            ),
        }
        site = make_site(
            self.health, self.metrics.registry, http_addresses, self._refused_per_ip, children=children,
            options=config.http_options, on_timeout=self._http_timed_out, storage=self.storage_fault,
        )  # fmt: skip
        self.site = site
        site.requestFactory = bounded_request(
            config.http_options.max_body_bytes, {b"/socket.io/": config.socketio.max_payload}
        )
        for description in config.http:
            self.listeners.add("http", description, site)
        self.admin_keys = AdminKeys()
        self.admin_factory = AdminFactory(self, self.admin_keys) if config.admin else None
        for description in config.admin:
            self.listeners.add("admin", description, self.admin_factory)
        self.listeners.setServiceParent(self)
        self.metrics.registry.register(ServiceCollector(self))
        self.sampler = Sampler(self, reactor)
        self._watchdog = None
        self._stop_asked = False
        self.started: Deferred[ChatService] = Deferred()  # fires once clients are accepted

    def _probe_storage(self) -> None:
        """While the database or the files cannot be written, try again."""
        for part in (self.store, self.file_store):
            if not part.writable:
                background(part.probe(), "probing storage")

    def storage_fault(self) -> str:
        """Why the database or the files cannot be used now: out of reach (9010) or not writable (9020); "" if they
        can."""
        faults = ["database: out of reach"] if not self.store.available else []
        faults += [f"{what}: {part.fault or 'unknown'}" for what, part in (("database", self.store),
                   ("files", self.file_store)) if not part.writable]  # fmt: skip
        return "; ".join(faults)

    def health(self) -> str:
        """What GET /health says: "ok" (200) while serving with the database in reach and the storage writable;
        otherwise (503) why not: "starting", "stopping" or "storage unavailable" (with storage_fault() beside it)."""
        if self.state == "ok" and self.storage_fault():
            return "storage unavailable"
        return self.state

    def _forget_sent_ids(self) -> None:
        background(self.core.messages.forget_sent_ids(), "forgetting old client message ids")

    def _refused_per_ip(self) -> None:
        self.metrics.refused["per_ip"] += 1

    def _http_timed_out(self) -> None:
        self.metrics.refused["http_deadline"] += 1

    def privilegedStartService(self) -> None:
        if self.admin_factory is not None:
            key = host_key(self.config.data_dir)
            self.admin_factory.use_host_key(key)
            self.log.info(
                "admin shell host key: {fingerprint}", fingerprint=key.fingerprint(FingerprintFormats.SHA256_BASE64)
            )
            self.admin_keys.load(self.config.admin_shell.authorized_keys)
        super().privilegedStartService()

    def startService(self) -> None:
        super().startService()
        Deferred.fromCoroutine(self._start())

    async def _start(self) -> None:
        try:
            if isinstance(self.bus, RedisBus):
                await self.bus.start()
            await self.store.open()
            self.file_store.open()
            await self.core.start()
        except Exception:
            self.log.failure("chatd could not start")
            self.started.errback()
            self.reactor.stop()
            return
        settle_garbage_collector()
        self.store.observe_commits(self.metrics.observe_commit)
        self._first_message_id = self.core.fanout_upto
        self._prune.start(PRUNE_SECONDS, now=False)
        self._probe.start(self.config.storage.probe_interval, now=False)
        self.listeners.accept()
        self.governor.start()
        self.state = "ok"
        self.sampler.start()
        sdnotify.notify("READY=1", "STATUS=serving")
        interval = sdnotify.watchdog_interval()
        if interval:
            self._watchdog = LoopingCall(sdnotify.notify, "WATCHDOG=1")
            self._watchdog.clock = self.reactor
            self._watchdog.start(interval)
        if self.config.log.format == "json" and not logs.in_use():
            self.log.warn("log.format = json needs `twistd --logger chatdaemon.logs.observer`: logging text")
        self.log.info(
            "chatd ready: node {node}, data in {location}, files in {files}, bus {bus}",
            node=self.node_id, location=self.store.location, files=self.file_store.location,
            bus=getattr(self.bus, "location", "local"),
        )  # fmt: skip
        workers.say_ready()
        self.started.callback(self)

    def _resync(self) -> None:
        if self.state == "ok":
            self.core.resync()

    def _report(self) -> None:
        """This node's numbers, for the admin shell's cluster-wide stats."""
        if self.state == "ok":
            snap = self.snapshot()
            self.bus.report({
                "connections": sum(snap["connections"].values()),
                "users_here": len(self.bus.local_users()),
                "messages_per_second": round(self.sampler.messages_per_second(), 1),
                "pending_writes": snap["pending_writes"],
                "started_at": self.started_at,
            })  # fmt: skip

    # -- while serving

    def use_limits(self, limits) -> None:
        """New limits: for the core at once, for line and WebSocket connections opened from now on."""
        self.core.use_limits(limits)
        self.connections.use_limits(limits)

    def use_throttle(self, throttle) -> None:
        """New [throttle] settings (a reload): at once."""
        self.core.use_throttle(throttle)
        self.passwords.queue.per_source, self.passwords.queue.queue = (
            throttle.hash_queue_per_address,
            throttle.hash_queue,
        )

    def reload(self) -> list[str]:
        """Re-read the configuration (SIGHUP); what changed, one line each (also logged)."""
        sdnotify.reloading()
        try:
            report = reload.apply(self)
        finally:
            sdnotify.notify("READY=1", "STATUS=serving")
        for line in report or ["nothing changed"]:  # each naming the node: with --workers, every worker says it
            self.log.info("reload: {change} (node {node})", change=line, node=self.node_id)
        return report

    def shutdown(self, why: str) -> None:
        """Stop gracefully (SIGTERM, the admin shell's `shutdown`); the process then exits 0."""
        if self._stop_asked:
            self.log.info("{why}: already stopping", why=why)
            return
        self._stop_asked = True
        self.log.info("{why}: stopping", why=why)
        self.reactor.stop()

    def chat_messages(self) -> int:
        """Chat messages stored since start."""
        return self.core.fanout_upto - self._first_message_id

    def snapshot(self) -> dict:
        """The live numbers of /metrics and the admin shell's `stats`."""
        sessions = list(self.connections.sessions)
        connections = Counter((s.kind, s.dialect.name if s.dialect else "none") for s in sessions)
        if self.admin_factory is not None:
            connections["ssh", "admin"] = len(self.admin_factory.sessions)
        return {
            "node": self.node_id,
            "connections": dict(connections),
            "users_online": len(self.bus.online_users()),
            "rooms": dict(Counter(room.kind for room in self.core.state.rooms.values())),
            "offline_backlog": dict(self.sampler.backlog),
            "pending_writes": self.store.pending_writes(),
            "queued_bytes": sum(s.queued_bytes for s in sessions),
            "overload": {
                "holding": self.governor.holding,
                "episodes": self.governor.episodes,
                "held_seconds": self.governor.held_seconds,
                "loop_lag": self.governor.lag,
            },
            "started_at": self.started_at,
            "chat_messages": self.chat_messages(),
            "storage": self.storage_fault(),
            "resends": self.core.messages.resends,
            "password_hashes": self.passwords.hashes,
        }

    # -- stop

    def stopService(self) -> Deferred:
        return Deferred.fromCoroutine(self._stop())

    async def _until_spoken(self, seconds: float) -> None:
        """Give connections that have said nothing yet a moment to: their notice is then in their own dialect."""
        waited = 0.0
        while waited < seconds and any(s.dialect is None and s.open for s in self.connections.sessions):
            await deferLater(self.reactor, 0.05, lambda: None)
            waited += 0.05

    async def _until_closed(self, seconds: float) -> None:
        """Wait until every connection is gone (each has saved its user's cursor), or `seconds` pass."""
        waited = 0.0
        while self.connections.sessions and waited < seconds:
            await deferLater(self.reactor, 0.05, lambda: None)
            waited += 0.05

    async def _stop(self) -> None:
        self.state = "stopping"
        sdnotify.notify("STOPPING=1", "STATUS=stopping")
        self.sampler.stop()
        for loop in (self._prune, self._probe):
            if loop.running:
                loop.stop()
        self.governor.stop()
        if self._watchdog is not None and self._watchdog.running:
            self._watchdog.stop()
        await super().stopService()
        await self._until_spoken(FIRST_FRAME_SECONDS)
        notice = Notice(code=errors.SHUTTING_DOWN, text="server is shutting down")
        for session in list(self.connections.sessions):
            session.notify_close(notice)
        if self.admin_factory is not None:
            for admin in list(self.admin_factory.sessions):
                admin.avatar.conn.transport.sendDisconnect(DISCONNECT_BY_APPLICATION, b"chatd is stopping")
        self.socketio.close_all()
        await self._until_closed(STOP_GRACE_SECONDS)
        for session in list(self.connections.sessions):
            session.transport.abort()
        self.core.stop()
        self.connections.stop()
        await self._until_closed(1.0)  # an aborted connection is lost on a later turn
        if isinstance(self.bus, RedisBus):
            await self.bus.stop()
        await self.store.close()
        self.log.info("chatd stopped")
