"""What chatd counts, for GET /metrics (Prometheus) and the admin shell's `stats`.

Each ChatService has its own Metrics and CollectorRegistry, so services started
side by side (tests) never mix their numbers. Counters bumped on hot paths are
plain ints, read at scrape time; gauges are read from the live service when
scraped; latencies are histograms (the per-message one is `Buckets`: plain counts, no lock).
"""

import bisect
import time
from collections import defaultdict, deque

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from twisted.internet.task import LoopingCall
from twisted.internet.threads import blockingCallFromThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadable import isInIOThread

from .core.commands import Login, Send
from .errors import SERVER_ERROR, ChatError

RATE_WINDOW_SECONDS = 60.0
SAMPLE_SECONDS = 5.0
BACKLOG_EVERY = 12  # samples: the offline backlog is counted on disk once a minute


def _name(dialect) -> str:
    return dialect.name if dialect is not None else "none"


class Buckets:
    """A histogram observed on the reactor thread only: plain counts per bucket, read when scraped (a
    prometheus_client Histogram takes a lock on every observation, once per message here)."""

    def __init__(self, name: str, documentation: str, bounds: tuple[float, ...]):
        self.name, self.documentation, self.bounds = name, documentation, bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def collect(self):
        counts, total = list(self.counts), self.sum  # a copy: the reactor may go on counting
        cumulative, running = [], 0
        for bound, n in zip((*map(str, self.bounds), "+Inf"), counts, strict=True):
            running += n
            cumulative.append((bound, running))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], cumulative, total)
        yield family


class Metrics:
    log = Logger(namespace="chatdaemon.session")

    def __init__(self):
        self.registry = CollectorRegistry()
        self.messages_in: dict[str, int] = defaultdict(int)  # dialect -> frames received
        self.messages_out: dict[str, int] = defaultdict(int)  # dialect -> frames sent
        self.logins: dict[tuple[str, str], int] = defaultdict(int)  # (dialect, "ok" or code) -> n
        self.errors: dict[int, int] = defaultdict(int)  # code -> n
        self.slow_consumers = 0
        self.refused: dict[str, int] = defaultdict(int)  # reason -> connections refused
        self.delivery = Buckets(
            "chatd_delivery_latency_seconds",
            "From a chat message's arrival to its hand-off to every online recipient (after its commit).",
            (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        self.registry.register(self.delivery)
        self.commit = Histogram(
            "chatd_store_commit_seconds",
            "Duration of one group-commit transaction.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=self.registry,
        )
        self.commit_writes = Histogram(
            "chatd_store_commit_writes",
            "Writes in one group-commit transaction.",
            buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 5000),
            registry=self.registry,
        )

    # -- hooks

    def track(self, session, command, d) -> None:
        """A request has gone to the core: count and log logins (a login may be the first of several commands:
        its reply is then the first of the results)."""
        first = command[0] if isinstance(command, tuple) else command
        if type(first) is Login:
            d.addBoth(self._logged_in, session)

    def done(self, command, started: float) -> None:
        """A request succeeded, `started` (time.perf_counter) after it began: chat messages are timed."""
        if type(command) is Send:
            self.delivery.observe(time.perf_counter() - started)

    def _logged_in(self, results, session):
        result = results[0] if isinstance(results, tuple) else results
        dialect = _name(session.dialect)
        if isinstance(result, Failure):
            code = result.value.code if isinstance(result.value, ChatError) else SERVER_ERROR
            self.logins[dialect, str(code)] += 1
            self.log.info(
                "login failed: {transport} {peer} ({dialect}): {code}",
                event="login_failed",
                transport=session.kind,
                peer=session.peer,
                dialect=dialect,
                code=code,
            )
        else:
            self.logins[dialect, "ok"] += 1
            self.log.info(
                "login ok: {user} on {transport} {peer} ({dialect})",
                event="login_ok",
                user=result.user,
                transport=session.kind,
                peer=session.peer,
                dialect=dialect,
            )
        return results

    def frames_in(self, dialect) -> None:
        self.messages_in[_name(dialect)] += 1

    def frames_out(self, dialect, n: int) -> None:
        self.messages_out[_name(dialect)] += n

    def observe_commit(self, seconds: float, writes: int) -> None:
        self.commit.observe(seconds)
        self.commit_writes.observe(writes)


class Sampler:
    """Every few seconds: the chat message count (for messages/s); once a minute, the offline backlog."""

    log = Logger()

    def __init__(self, service, clock):
        self._service = service
        self._samples: deque[tuple[float, int]] = deque()
        self._ticks = 0
        self._clock = clock
        self.backlog = {"messages": 0, "notices": 0}
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock

    def start(self) -> None:
        self._loop.start(SAMPLE_SECONDS)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()

    def _tick(self) -> None:
        now = self._clock.seconds()
        self._samples.append((now, self._service.chat_messages()))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_SECONDS:
            self._samples.popleft()
        if self._ticks % BACKLOG_EVERY == 0:
            d = self._service.core.store.offline_backlog()
            d.addCallbacks(self._backlog, lambda f: self.log.failure("counting the offline backlog failed", f))
        self._ticks += 1

    def _backlog(self, counts) -> None:
        per_user, notices = counts
        online = self._service.bus.online
        self.backlog = {"messages": sum(n for user, n in per_user.items() if not online(user)), "notices": notices}

    def messages_per_second(self) -> float:
        if not self._samples:
            return 0.0
        (then, first), now, last = self._samples[0], self._clock.seconds(), self._service.chat_messages()
        return (last - first) / (now - then) if now > then else 0.0


class ServiceCollector:
    """The live numbers of a ChatService, read on the reactor thread at each scrape."""

    def __init__(self, service):
        self._service = service

    def _read(self) -> tuple[dict, dict]:
        """On the reactor thread: the live numbers, and copies of the counters the reactor bumps."""
        m = self._service.metrics
        names = ("messages_in", "messages_out", "logins", "errors", "refused")
        counters = {name: dict(getattr(m, name)) for name in names}
        counters["slow_consumers"] = m.slow_consumers
        return self._service.snapshot(), counters

    def collect(self):
        # MetricsResource renders in a thread pool; the service's state belongs to the reactor thread
        snap, m = self._read() if isInIOThread() else blockingCallFromThread(self._service.reactor, self._read)

        def gauge(name, doc, labels=(), values=None, value=None):
            family = GaugeMetricFamily(name, doc, labels=list(labels) or None, value=value)
            for key, v in (values or {}).items():
                family.add_metric(list(key) if isinstance(key, tuple) else [str(key)], v)
            return family

        def counter(name, doc, labels=(), values=None, value=None):
            family = CounterMetricFamily(name, doc, labels=list(labels) or None, value=value)
            for key, v in (values or {}).items():
                family.add_metric(list(key) if isinstance(key, tuple) else [str(key)], v)
            return family

        yield gauge("chatd_node", "This node: its name (node.id) is the label; the value is 1.", ("node",),
                    {snap["node"]: 1})  # fmt: skip
        yield gauge("chatd_connections", "Open client connections.", ("transport", "dialect"), snap["connections"])
        yield gauge("chatd_users_online", "Users with at least one connection logged in.", value=snap["users_online"])
        yield gauge("chatd_rooms", "Rooms, by kind.", ("kind",), snap["rooms"])
        yield gauge(
            "chatd_offline_queue_depth",
            "Messages and notices waiting for offline users (sampled once a minute).",
            ("kind",),
            snap["offline_backlog"],
        )
        yield gauge(
            "chatd_store_pending_writes", "Writes queued for the next group commit.", value=snap["pending_writes"]
        )
        yield gauge(
            "chatd_outbound_queued_bytes", "Bytes queued for clients, over all connections.", value=snap["queued_bytes"]
        )
        overload = snap["overload"]
        yield gauge("chatd_overloaded", "1 while the daemon takes no new work (it cannot keep up).",
                    value=int(overload["holding"]))  # fmt: skip
        yield gauge("chatd_event_loop_lag_seconds", "How late the governor's timer fired, at its last check.",
                    value=overload["loop_lag"])  # fmt: skip
        yield counter("chatd_overload_episodes_total", "Times the daemon stopped taking new work.",
                      value=overload["episodes"])  # fmt: skip
        yield counter("chatd_overload_seconds_total", "Seconds spent taking no new work.",
                      value=overload["held_seconds"])  # fmt: skip
        yield gauge(
            "chatd_storage_writable",
            "1 while the database and the files can be written; 0 during a fault (disk full, read-only, out of reach).",
            value=0 if snap["storage"] else 1,
        )
        yield counter("chatd_resends_total", "Messages resent under a known client id, answered with the original.",
                      value=snap["resends"])  # fmt: skip
        yield counter("chatd_password_hashes_total", "argon2 hashes computed (registrations and password logins).",
                      value=snap["password_hashes"])  # fmt: skip
        yield gauge(
            "chatd_start_time_seconds", "When chatd started, in seconds since the epoch.", value=snap["started_at"]
        )
        yield counter(
            "chatd_messages_received_total",
            "Protocol messages (frames, lines) received, by dialect.",
            ("dialect",),
            m["messages_in"],
        )
        yield counter(
            "chatd_messages_sent_total",
            "Protocol messages (frames, lines) sent, by dialect.",
            ("dialect",),
            m["messages_out"],
        )
        yield counter("chatd_chat_messages_total", "Chat messages stored since start.", value=snap["chat_messages"])
        yield counter(
            "chatd_logins_total",
            "Login attempts, by dialect and result (ok or the error code).",
            ("dialect", "result"),
            m["logins"],
        )
        yield counter("chatd_errors_total", "Errors sent to clients, by code.", ("code",), m["errors"])
        yield counter(
            "chatd_slow_consumers_dropped_total",
            "Connections dropped for not reading their output.",
            value=m["slow_consumers"],
        )
        yield counter("chatd_connections_refused_total", "Connections refused, by reason.", ("reason",), m["refused"])


UNREAD = Metrics()  # for sessions made without a service (unit tests): counted, never scraped
