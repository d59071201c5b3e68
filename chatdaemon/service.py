"""ChatService: store, then state, then core, then listeners; and the reverse on stop.

Under systemd (Type=notify) it says READY=1 once every listener is bound and the
state is loaded, STOPPING=1 when it begins to stop, RELOADING=1 around a
reload, and WATCHDOG=1 if the unit has a watchdog.
"""

import time
from collections import Counter

from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.conch.ssh.keys import FingerprintFormats
from twisted.conch.ssh.transport import DISCONNECT_BY_APPLICATION
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger

from . import errors, logs, reload, sdnotify
from .bus.local import LocalBus
from .core.accounts import Passwords
from .core.chat import Core
from .core.events import Notice
from .dialects import fallback_error
from .dialects.irc.encode import closing
from .errors import ChatError
from .listeners import AddressCounter, Listeners, PerAddressLimit
from .metrics import Metrics, Sampler, ServiceCollector
from .store.files import FileStore
from .store.sqlite import SQLiteStore
from .tls import ReloadableTLS
from .transports.admin import AdminFactory, AdminKeys, host_key
from .transports.connection import Connections
from .transports.http import make_site, page_children
from .transports.irc import IrcFactory
from .transports.line import LineFactory
from .transports.rest import bounded_request, rest_children
from .transports.websocket import ChatWebSocketFactory, websocket_resource

STOP_GRACE_SECONDS = 5.0


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
        self.store = SQLiteStore(config.data_dir, reactor, config.storage.group_commit_max, config.storage.synchronous)
        self.file_store = FileStore(config.data_dir)
        self.bus = LocalBus()
        pw = config.passwords
        passwords = Passwords(pw.time_cost, pw.memory_cost, pw.parallelism)
        self.core = Core(self.store, self.file_store, self.bus, passwords, config.limits, config.files, reactor)
        TimerService(60, self.core.files.expire).setServiceParent(self)
        TimerService(config.storage.cursor_interval, self.core.delivery.save_cursors).setServiceParent(self)
        self.connections = Connections(self.core, config.limits, reactor, self.metrics)
        self.line_factory = LineFactory(self.connections)
        self.tls = ReloadableTLS(config.tls.certificate, config.tls.private_key) if config.tls.certificate else None
        self.listeners = Listeners(reactor, self.tls)
        farewell = fallback_error(ChatError(errors.TOO_MANY_CONNECTIONS)) + b"\n"
        per_ip = lambda: self.config.limits.max_connections_per_ip  # noqa: E731 (read at each connection)
        guarded = PerAddressLimit(self.line_factory, AddressCounter(per_ip), farewell, self._refused_per_ip)
        for description in config.line:
            self.listeners.add("line", description, guarded)
        self.irc_factory = IrcFactory(self.connections, config.irc_options)
        irc_farewell = closing(errors.TOO_MANY_CONNECTIONS, errors.MESSAGES[errors.TOO_MANY_CONNECTIONS]) + b"\r\n"
        irc_guarded = PerAddressLimit(self.irc_factory, AddressCounter(per_ip), irc_farewell, self._refused_per_ip)
        for description in config.irc:
            self.listeners.add("irc", description, irc_guarded)
        http_addresses = AddressCounter(per_ip)
        self.ws_factory = ChatWebSocketFactory(self.connections, config.http_options, http_addresses)
        children = {
            **page_children(),
            b"ws": websocket_resource(self.ws_factory),
            **rest_children(self.core, self.file_store),
        }
        site = make_site(
            lambda: self.state, self.metrics.registry, http_addresses, self._refused_per_ip, children=children
        )
        site.requestFactory = bounded_request(config.http_options.max_body_bytes)
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
        self.started = Deferred()  # fires once clients are accepted

    def _refused_per_ip(self) -> None:
        self.metrics.refused["per_ip"] += 1

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
            await self.store.open()
            self.file_store.open()
            await self.core.start()
        except Exception:
            self.log.failure("chatd could not start")
            self.started.errback()
            self.reactor.stop()
            return
        self.store.observe_commits(self.metrics.observe_commit)
        self._first_message_id = self.core.fanout_upto
        self.listeners.accept()
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
        self.log.info("chatd ready: data in {location}", location=self.store.location)
        self.started.callback(self)

    # -- while serving

    def use_limits(self, limits) -> None:
        """New limits: for the core at once, for line and WebSocket connections opened from now on."""
        self.core.use_limits(limits)
        self.connections.use_limits(limits)

    def reload(self) -> list[str]:
        """Re-read the configuration (SIGHUP); what changed, one line each (also logged)."""
        sdnotify.reloading()
        try:
            report = reload.apply(self)
        finally:
            sdnotify.notify("READY=1", "STATUS=serving")
        for line in report:
            self.log.info("reload: {change}", change=line)
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
            "connections": dict(connections),
            "users_online": len(self.bus.online_users()),
            "rooms": dict(Counter(room.kind for room in self.core.state.rooms.values())),
            "offline_backlog": dict(self.sampler.backlog),
            "pending_writes": self.store.pending_writes(),
            "queued_bytes": sum(s.queued_bytes for s in sessions),
            "started_at": self.started_at,
            "chat_messages": self.chat_messages(),
        }

    # -- stop

    def stopService(self) -> Deferred:
        return Deferred.fromCoroutine(self._stop())

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
        if self._watchdog is not None and self._watchdog.running:
            self._watchdog.stop()
        await super().stopService()
        notice = Notice(code=errors.SHUTTING_DOWN, text="server is shutting down")
        for session in list(self.connections.sessions):
            session.notify_close(notice)
        if self.admin_factory is not None:
            for admin in list(self.admin_factory.sessions):
                admin.avatar.conn.transport.sendDisconnect(DISCONNECT_BY_APPLICATION, b"chatd is stopping")
        await self._until_closed(STOP_GRACE_SECONDS)
        for session in list(self.connections.sessions):
            session.transport.abort()
        self.core.stop()
        self.connections.stop()
        await self._until_closed(1.0)  # an aborted connection is lost on a later turn
        await self.store.close()
        self.log.info("chatd stopped")
