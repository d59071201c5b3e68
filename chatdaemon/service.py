"""ChatService: store, then state, then core, then listeners; and the reverse on stop."""

from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.logger import Logger

from . import errors
from .bus.local import LocalBus
from .dialects import colon
from .core.accounts import Passwords
from .core.chat import Core
from .core.events import Notice
from .listeners import Listeners
from .session import Flusher
from .store.files import FileStore
from .store.sqlite import SQLiteStore
from .transports.http import make_site, page_children
from .transports.line import LineFactory
from .transports.rest import bounded_request, rest_children
from .transports.websocket import ChatWebSocketFactory, websocket_resource

STOP_GRACE_SECONDS = 5.0


class ChatService(MultiService):
    log = Logger()

    def __init__(self, config, reactor):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.ready = False
        self.store = SQLiteStore(config.data_dir, reactor, config.storage.group_commit_max, config.storage.synchronous)
        self.file_store = FileStore(config.data_dir)
        self.bus = LocalBus()
        pw = config.passwords
        passwords = Passwords(pw.time_cost, pw.memory_cost, pw.parallelism)
        self.core = Core(self.store, self.file_store, self.bus, passwords, config.limits, config.files, reactor)
        TimerService(60, self.core.expire_uploads).setServiceParent(self)
        self.flusher = Flusher(reactor)
        self.line_factory = LineFactory(self.core, config.limits, reactor, self.flusher)
        self.listeners = Listeners(reactor)
        for description in config.line:
            self.listeners.add("line", description, self.line_factory)
        colon.INLINE_MEDIA_BYTES = config.http_options.inline_media_bytes
        self.ws_factory = ChatWebSocketFactory(
            self.core, config.limits, reactor, self.flusher, config.http_options, self.line_factory.sessions
        )
        children = {
            **page_children(), b"ws": websocket_resource(self.ws_factory), **rest_children(self.core, self.file_store),
        }
        site = make_site(lambda: self.ready, children=children)
        site.requestFactory = bounded_request(config.http_options.max_body_bytes)
        for description in config.http:
            self.listeners.add("http", description, site)
        self.listeners.setServiceParent(self)
        self.started = Deferred()  # fires once clients are accepted

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
        self.listeners.accept()
        self.ready = True
        self.log.info("chatd ready: data in {path}", path=self.store.path)
        self.started.callback(self)

    def stopService(self) -> Deferred:
        return Deferred.fromCoroutine(self._stop())

    async def _until_closed(self, seconds: float) -> None:
        """Wait until every connection is gone (each has saved its user's cursor), or `seconds` pass."""
        waited = 0.0
        while self.line_factory.sessions and waited < seconds:
            await deferLater(self.reactor, 0.05, lambda: None)
            waited += 0.05

    async def _stop(self) -> None:
        self.ready = False
        await super().stopService()
        notice = Notice(code=errors.SHUTTING_DOWN, text="server is shutting down")
        for session in list(self.line_factory.sessions):
            session.notify_close(notice)
        await self._until_closed(STOP_GRACE_SECONDS)
        for session in list(self.line_factory.sessions):
            session.transport.abort()
        self.core.stop_typing_timers()
        await self._until_closed(1.0)  # an aborted connection is lost on a later turn
        await self.store.close()
        self.log.info("chatd stopped")
