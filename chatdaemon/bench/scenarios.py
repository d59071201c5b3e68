"""The scenarios: S1 fan-out, S2 latency (open loop, and a rate sweep), S3 idle connections,
D durable acknowledged sends (one room, many direct conversations), L password logins.

Each run: connect and log in (by session key) the connections it needs, join their rooms, let the
daemon settle, then measure over a window bounded by `duration` and `messages` (and a hard
`timeout` over the whole run), then drain: wait (bounded) until every send is acknowledged and
every delivery has arrived, so the totals can be checked (deliveries = acked sends x (members - 1)).

Rates are taken over the window: deliveries and acks counted between its start and its end,
divided by its length. Latency comes from the send time carried in the message text (the marker of
dialects.py), read at each recipient when the bytes arrive: every receipt in S2, the first of each
read in S1 (a sample). Daemon CPU is the daemon's CPU seconds over the window's wall seconds (one
core = 100 %); the load generator's own CPU is shown the same way as its headroom: near 100 %, the
numbers are bounded by the client, not the daemon.
"""

import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import daemon as proc
from .accounts import Accounts
from .dialects import JOIN_OK, LOGIN_OK, MARK, Adapter, Irc, marker, own_prefix
from .net import CLOSED, Conn, Loop

CLIENT_BOUND_PCT = 90.0


@dataclass
class Settings:
    host: str
    port: int
    ws_port: int | None
    transport: str  # line | ws
    adapter: Adapter
    accounts: Accounts
    pid: int | None
    duration: float = 10.0
    messages: int = 0  # 0: no cap beyond duration
    timeout: float = 300.0
    quiet: bool = False
    text_bytes: int = 32
    drain: float = 5.0
    grace: float = 1.0
    concurrency: int = 50
    s1_members: int = 200
    s1_senders: int = 20
    s2_users: int = 1000
    s2_room_size: int = 20
    s2_rate: float = 2000.0
    s2_senders: int = 0  # 0: every user
    s2_sweep: list[float] = field(default_factory=list)
    slo_ms: float = 25.0
    s3_connections: int = 10000
    d_senders: int = 20
    d_window: int = 32
    d_messages: int = 100000
    l_logins: int = 40
    l_concurrency: int = 8
    quickack: bool = False
    stall: float = 30.0  # give up setting up connections when none has answered for this long


def percentiles(values: list[int], scale: float = 1e-3) -> dict:
    """p50/p99/max of microsecond values, in milliseconds."""
    if not values:
        return {"p50": None, "p99": None, "max": None, "samples": 0}
    v = sorted(values)
    n = len(v)

    def at(q: float) -> float:
        return round(v[min(n - 1, int(q * n))] * scale, 3)

    return {"p50": at(0.50), "p99": at(0.99), "max": round(v[-1] * scale, 3), "samples": n}


class Progress:
    def __init__(self, quiet: bool, label: str) -> None:
        self.quiet, self.label = quiet, label
        self.start = time.monotonic()
        self.next = self.start + 1.0
        self.shown = False

    def show(self, text: str, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if force or now >= self.next:
            self.next = now + 1.0
            sys.stderr.write(f"\r\x1b[K{self.label} {now - self.start:6.1f}s  {text}")
            sys.stderr.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown and not self.quiet:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


class Meter:
    """Daemon CPU and the load generator's own CPU over a window."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.wall0 = time.monotonic()
        self.cpu0: float | None = proc.cpu_seconds(pid) if pid else None
        self.self0 = time.process_time()
        self.host0 = proc.host_times()

    def read(self) -> dict:
        wall = time.monotonic() - self.wall0
        out: dict = {
            "window_s": round(wall, 3),
            "bench_cpu_pct": round(100 * (time.process_time() - self.self0) / wall, 1),
        }
        cpu = proc.cpu_seconds(self.pid) if self.pid else None
        out["daemon_cpu_pct"] = (
            round(100 * (cpu - self.cpu0) / wall, 1) if cpu is not None and self.cpu0 is not None else None
        )
        out["client_bound"] = out["bench_cpu_pct"] >= CLIENT_BOUND_PCT
        # the noise: CPU that neither the daemon nor chatd-bench used (other tenants, other tests)
        host = proc.host_times()
        others = host["processes"] - self.host0["processes"] - (time.process_time() - self.self0)
        if cpu is not None and self.cpu0 is not None:
            others -= cpu - self.cpu0
        out["others_cpu_pct"] = round(max(0.0, 100 * others / wall), 1)
        # the kernel's network work (loopback: mostly our own traffic), and what the hypervisor took
        out["irq_cpu_pct"] = round(100 * (host["irq"] - self.host0["irq"]) / wall, 1)
        out["steal_cpu_pct"] = round(100 * (host["steal"] - self.host0["steal"]) / wall, 1)
        return out


class Bench:
    """One scenario run: its connections, its loop, its counters."""

    def __init__(self, s: Settings, label: str) -> None:
        self.s = s
        self.a = s.adapter
        self.label = label
        self.tag = "b" + secrets.token_hex(3)
        self.loop = Loop(s.host, s.port, s.transport == "ws", s.ws_port)
        self.loop.quickack = s.quickack
        self.deadline = time.monotonic() + s.timeout
        self.progress = Progress(s.quiet, label)
        self.sent = self.acks = self.deliveries = self.refusals = 0
        self.latencies: list[int] = []  # microseconds, send to receipt
        self.ack_latencies: list[int] = []  # microseconds, send to ack
        self.notes: list[str] = []
        self.conns: list[Conn] = []  # every connection of this run
        self.new_conns: list[Conn] = []  # those of the last establish()
        self.text_pad = "x" * max(0, s.text_bytes - 24)

    # -- set-up: connect, log in, join

    def establish(
        self,
        users: list[int],
        rooms: dict[int, str] | None = None,
        password: bool = False,
        on_ready: Callable[[Conn], None] | None = None,
    ) -> dict:
        """Connect `users` (at most `concurrency` in flight), log each in (by key, or by password), and join
        its room if `rooms` names one. Returns timings and failures."""
        s, a, loop = self.s, self.a, self.loop
        conns = [Conn(i, s.accounts.name(i), s.accounts.key(i)) for i in users]
        queue = list(reversed(conns))
        inflight = [0]
        created: set[str] = set()
        waiting: dict[str, list[Conn]] = {}
        leaders: set[str] = set()
        done = [0]
        failed: list[Conn] = []
        started = time.monotonic()

        def finish(c: Conn, ok: bool) -> None:
            inflight[0] -= 1
            done[0] += 1
            if ok:
                c.step = "ready"
                if on_ready is not None:
                    on_ready(c)
            else:
                c.step = "failed"
                failed.append(c)
                if len(loop.errors) < 20:
                    loop.errors.append(f"{c.name}: set-up failed")

        def join(c: Conn) -> None:
            room = rooms.get(c.idx) if rooms else None
            if not room:
                finish(c, True)
                return
            c.room = room
            c.step = "join"
            if room in created:
                loop.send_raw(c, self._frame(c, a.join(room, c.name)))
            elif room not in leaders:
                leaders.add(room)
                loop.send_raw(c, self._frame(c, a.join(room, c.name)))
            else:
                waiting.setdefault(room, []).append(c)

        def on_open(c: Conn) -> None:
            c.step = "login"
            if password:
                loop.send_raw(c, self._frame(c, a.login_password(c.name, s.accounts.password)))
            elif a.raw:
                loop.send_raw(c, a.login_key(c.name, c.key))
            elif not c.ws:
                loop.send_raw(c, self._frame(c, a.login_key(c.name, c.key)))
            # WebSocket with a token: the daemon logs in at the handshake and answers with the login reply

        def on_data(c: Conn, buf: bytearray, stop: int, now: int) -> None:
            for f in loop.frames(c, buf, stop):
                if f.startswith(b"PING"):
                    loop.send_raw(c, b"PONG" + f[4:] + b"\r\n")
                    continue
                r = a.classify(f, c.name)
                if r is None:
                    continue
                if c.step == "login":
                    if r == LOGIN_OK:
                        join(c)
                    else:
                        self._note(f"{c.name}: login refused: {f[:200]!r}")
                        finish(c, False)
                elif c.step == "join":
                    if r == JOIN_OK:
                        if c.room not in created:
                            created.add(c.room)
                            for w in waiting.pop(c.room, []):
                                loop.send_raw(w, self._frame(w, a.join(w.room, w.name)))
                        finish(c, True)
                    else:
                        self._note(f"{c.name}: join refused: {f[:200]!r}")
                        finish(c, False)

        def on_close(c: Conn) -> None:
            if c.step in ("", "login", "join"):
                finish(c, False)

        loop.on_open, loop.on_data, loop.on_close = on_open, on_data, on_close

        def tick() -> float:
            while queue and inflight[0] < s.concurrency:
                c = queue.pop()
                inflight[0] += 1
                path = ""
                if loop.ws:
                    path = f"/ws?dialect={a.ws_dialect}" + ("" if password else f"&token={c.key}")
                loop.connect(c, path)
            self.progress.show(f"connected and logged in {done[0] - len(failed)}/{len(conns)}, failed {len(failed)}")
            return 0.05

        last = [0, time.monotonic()]  # connections done, and when that count last moved

        def stalled() -> bool:
            if done[0] >= len(conns):
                return True
            now = time.monotonic()
            if done[0] != last[0]:
                last[0], last[1] = done[0], now
                return False
            return now - last[1] > s.stall

        tick()
        loop.run(stalled, self.deadline, tick)
        elapsed = time.monotonic() - started
        if done[0] < len(conns):
            why = f"no progress for {s.stall:g} s" if time.monotonic() < self.deadline else "the time limit"
            self._note(f"set-up gave up ({why}): {done[0]}/{len(conns)} connections answered after {elapsed:.1f} s")
            elapsed = last[1] - started  # the time to connect those that made it
        self.conns = self.conns + conns
        self.new_conns = conns
        return {
            "connections": len(conns),
            "ok": len(conns) - len(failed) - (len(conns) - done[0]),
            "failed": len(failed) + (len(conns) - done[0]),
            "connect_s": round(elapsed, 3),
        }

    def _frame(self, c: Conn, data: bytes) -> bytes:
        if self.a.raw:
            return data
        from .wsframe import encode_frame

        return encode_frame(data) if c.ws else data + b"\n"

    def _note(self, text: str) -> None:
        if len(self.notes) < 20:
            self.notes.append(text)

    def text(self, c: Conn, micros: int) -> str:
        c.sent += 1
        return marker(c.idx, micros, c.sent) + self.text_pad

    def send(self, c: Conn, micros: int) -> None:
        """One closed-loop send (IRC: PRIVMSG and the PING whose PONG acknowledges it)."""
        self.write(c, self.a.send(c.target, self.text(c, micros), c.sent, c.target != c.room))
        self.sent += 1

    def write(self, c: Conn, data: bytes) -> None:
        if self.a.raw:
            self.loop.send_raw(c, data)
        else:
            self.loop.send(c, data)

    def publishers(self, members: list[Conn]) -> list[Conn]:
        """Redis: a connection of its own to publish on, for each of `members` (same user, same marker)."""
        self.establish([c.idx for c in members])
        by_idx = {c.idx: c for c in self.new_conns if c.step == "ready"}
        for c in members:
            c.own = own_prefix(c.idx)  # its subscription gets its own messages back: not deliveries
        return [by_idx[c.idx] for c in members if c.idx in by_idx]

    def settle(self, seconds: float = 0.3) -> None:
        """Let set-up pushes (joins, presence) arrive and be discarded."""
        loop = self.loop
        irc = isinstance(self.a, Irc)

        def discard(c: Conn, buf: bytearray, stop: int, now: int) -> None:
            if irc:
                self._irc_pings(c, buf, stop)

        loop.on_data = discard
        end = time.monotonic() + seconds
        loop.run(lambda: False, min(end, self.deadline))

    def _irc_pings(self, c: Conn, buf: bytearray, stop: int) -> None:
        pos = buf.find(b"PING :", 0, stop)
        while pos >= 0:
            if pos == 0 or buf[pos - 1] == 10:
                eol = buf.find(b"\r\n", pos, stop)
                self.loop.send_raw(c, b"PONG" + bytes(buf[pos + 4 : eol if eol > 0 else stop]) + b"\r\n")
            pos = buf.find(b"PING :", pos + 1, stop)

    # -- the fast path

    def handler(self, sampled: bool, closed_loop: bool, running: Callable[[], bool], window: int = 1) -> None:
        """Install the steady-state reader: count markers (deliveries) and acks; a closed-loop sender sends
        its next message for each ack while `running()`; with `sampled`, read the latency of the first
        receipt of each read only, else of every receipt."""
        a, loop = self.a, self.loop
        ack, echo, ack_is_echo = a.ack, a.echo, a.ack_is_echo
        refusals = a.refusals
        irc = isinstance(a, Irc)
        handshake = a.handshake
        lat, acklat = self.latencies, self.ack_latencies
        count_frame = getattr(a, "count_frame", b"")

        def on_data(c: Conn, buf: bytearray, stop: int, now: int) -> None:
            m = buf.count(MARK, 0, stop)
            own = 0
            if m:
                if echo and c.own:
                    own = buf.count(c.own, 0, stop)
                us = now // 1000
                pos = buf.find(MARK, 0, stop)
                while pos >= 0:
                    d1 = buf.find(b".", pos + 3, stop)
                    d2 = buf.find(b".", d1 + 1, stop)
                    if d1 < 0 or d2 < 0:
                        break
                    if int(buf[pos + 3 : d1]) != c.idx:
                        lat.append(us - int(buf[d1 + 1 : d2]))
                        if sampled:  # the first receipt of each read only
                            break
                    pos = buf.find(MARK, d2, stop)
                c.deliveries += m - own
                self.deliveries += m - own
            if c.target:
                n = own if ack_is_echo else buf.count(ack, 0, stop)
                if handshake:
                    pos = buf.find(count_frame, 0, stop)
                    while pos >= 0:
                        t0 = buf.find(b'"transaction_id":"', pos, stop) + 18
                        t1 = buf.find(b'"', t0, stop)
                        loop.send(c, a.confirm(bytes(buf[t0:t1])))
                        pos = buf.find(count_frame, t1, stop)
                if n:
                    c.acks += n
                    self.acks += n
                    pending = c.pending
                    for _ in range(min(n, len(pending))):
                        acklat.append((now - pending.popleft()) // 1000)
                    if closed_loop:
                        for _ in range(n):
                            if not running():
                                break
                            t = time.monotonic_ns()
                            c.pending.append(t)
                            self.send(c, t // 1000)
                for r in refusals:
                    k = buf.count(r, 0, stop)
                    if k:
                        c.refusals += k
                        self.refusals += k
                        self._note(
                            f"{c.name}: refused: {bytes(buf[max(0, buf.find(r, 0, stop) - 40) : buf.find(r, 0, stop) + 160])!r}"
                        )
            if irc:
                self._irc_pings(c, buf, stop)

        loop.on_data = on_data
        loop.on_close = lambda c: self._note(f"{c.name}: connection lost: {c.closed_why}")

    def close(self) -> None:
        self.loop.close_all()
        self.progress.done()

    def status(self) -> str:
        return f"sent {self.sent}  acked {self.acks}  delivered {self.deliveries}  refused {self.refusals}"

    def alive(self) -> int:
        return sum(1 for c in self.conns if c.state != CLOSED)


def _rooms_of(users: list[int], room: str) -> dict[int, str]:
    return dict.fromkeys(users, room)


def _need(s: Settings, n: int, what: str) -> None:
    if s.accounts.users < n and not s.adapter.raw:
        raise SystemExit(
            f"chatd-bench: {what} needs {n} accounts, the accounts file has {s.accounts.users}: "
            f"seed more (chatd-bench seed --users {n})"
        )


def _closed_loop_window(b: Bench, senders: list[Conn], members_minus_one: int | None, window: int) -> dict:
    """Run a closed-loop window: each sender keeps `window` sends outstanding, sending one more per ack."""
    s, loop = b.s, b.loop
    b.settle()
    stop_at = [time.monotonic() + s.duration]
    cap = s.messages or 0

    def running() -> bool:
        return time.monotonic() < stop_at[0] and (not cap or b.sent < cap)

    b.handler(sampled=True, closed_loop=True, running=running)
    meter = Meter(s.pid)
    for _ in range(window):
        for c in senders:
            if not running():
                break
            t = time.monotonic_ns()
            c.pending.append(t)
            b.send(c, t // 1000)

    def tick() -> float:
        b.progress.show(b.status())
        return 0.05

    loop.run(lambda: not running(), min(stop_at[0], b.deadline), tick)
    stats = meter.read()
    at_end = {"sent": b.sent, "acked": b.acks, "delivered": b.deliveries}
    window_s = stats["window_s"]
    # drain: every send acknowledged, every delivery in
    drain_end = time.monotonic() + s.drain

    def drained() -> bool:
        if b.acks + b.refusals < b.sent:
            return False
        return members_minus_one is None or b.deliveries >= b.acks * members_minus_one

    loop.run(drained, min(drain_end, b.deadline), tick)
    out = {
        "acked_sends_per_s": round(at_end["acked"] / window_s, 1),
        "deliveries_per_s": round(at_end["delivered"] / window_s, 1),
        **stats,
        "sent": b.sent,
        "acked": b.acks,
        "delivered": b.deliveries,
        "refused": b.refusals,
        "drained": drained(),
        "latency_ms": percentiles(b.latencies),
        "ack_latency_ms": percentiles(b.ack_latencies),
    }
    if members_minus_one is not None:
        expected = b.acks * members_minus_one
        out["expected_deliveries"] = expected
        out["delivered_over_expected"] = round(b.deliveries / expected, 4) if expected else None
    return out


def s1(s: Settings) -> dict:
    """Fan-out: one room of `s1_members`, `s1_senders` of them in a closed loop."""
    _need(s, s.s1_members, "S1")
    b = Bench(s, "S1")
    try:
        room = f"{b.tag}-s1"
        users = list(range(s.s1_members))
        setup = b.establish(users, _rooms_of(users, room))
        senders = [c for c in b.conns[: s.s1_senders] if c.step == "ready"]
        if s.adapter.separate_publisher:
            senders = b.publishers(senders)
        if not senders:
            return _finish(b, {"error": "no connection could be set up", "setup": setup})
        members = sum(1 for c in b.conns if c.step == "ready" and c.room)
        for c in senders:
            c.target, c.own = room, own_prefix(c.idx)
        result = _closed_loop_window(b, senders, members - 1, 1)
        result.update(members=members, senders=len(senders), setup=setup)
        return _finish(b, result)
    finally:
        b.close()


def d_durable(s: Settings) -> dict:
    """Acknowledged (committed) sends per second: into one room, and into many direct conversations."""
    if not s.adapter.durable:
        return {"skipped": f"{s.adapter.name} acknowledges nothing durably"}
    out = {}
    k = s.d_senders
    _need(s, 2 * k, "D")
    for variant in ("room", "direct"):
        b = Bench(s, f"D-{variant}")
        try:
            if variant == "room":
                room = f"{b.tag}-d"
                users = list(range(k))
                setup = b.establish(users, _rooms_of(users, room))
                senders = [c for c in b.conns if c.step == "ready"]
                for c in senders:
                    c.target, c.own = room, own_prefix(c.idx)
                per_delivery = len(senders) - 1
            else:
                users = list(range(2 * k))
                setup = b.establish(users)
                senders = [c for c in b.conns[:k] if c.step == "ready"]
                for c in senders:
                    c.target = s.accounts.name(c.idx + k)
                    c.own = own_prefix(c.idx)
                per_delivery = 1
            saved = s.messages
            s.messages = s.d_messages if not s.messages else min(s.messages, s.d_messages)
            try:
                window = min(s.d_window, 16) if s.adapter.handshake else s.d_window
                if isinstance(s.adapter, Irc):
                    window = 1
                result = _closed_loop_window(b, senders, per_delivery, window)
            finally:
                s.messages = saved
            result.update(senders=len(senders), window=window, setup=setup)
            out[variant] = _finish(b, result)
        finally:
            b.close()
        proc.wait_quiet(s.pid)
    return out


def s2(s: Settings, rates: list[float] | None = None) -> dict:
    """Latency under an open-loop offered rate: `s2_users` users in rooms of `s2_room_size`."""
    _need(s, s.s2_users, "S2")
    b = Bench(s, "S2")
    try:
        size = s.s2_room_size
        users = list(range(s.s2_users))
        rooms = {i: f"{b.tag}-s2-{i // size}" for i in users}
        setup = b.establish(users, rooms)
        ready = [c for c in b.conns if c.step == "ready"]
        nrooms = (len(users) + size - 1) // size
        order = [c for k in range(size) for r in range(nrooms) for c in ready[r * size + k : r * size + k + 1]]
        if s.s2_senders:
            order = order[: s.s2_senders]
        if s.adapter.separate_publisher:
            order = b.publishers(order)
        if not order:
            return _finish(b, {"error": "no connection could be set up", "setup": setup})
        rooms_of = {c.idx: c.room for c in ready}
        for c in order:
            c.target, c.own = rooms_of[c.idx], own_prefix(c.idx)
        results = []
        for rate in rates or [s.s2_rate]:
            results.append(_open_loop(b, order, rate, size - 1))
            b.progress.done()
        if rates:
            best = max(
                (
                    r["offered_rate"]
                    for r in results
                    if r["latency_ms"]["p99"] is not None
                    and r["latency_ms"]["p99"] <= s.slo_ms
                    and r["delivered_over_offered"] >= 0.99
                ),
                default=None,
            )
            return _finish(b, {"sweep": results, "slo_ms": s.slo_ms, "best_rate": best, "setup": setup})
        result = results[0]
        result["setup"] = setup
        return _finish(b, result)
    finally:
        b.close()


def _open_loop(b: Bench, senders: list[Conn], rate: float, recipients: int) -> dict:
    s, loop = b.s, b.loop
    b.settle(0.5)
    b.sent = b.acks = b.deliveries = b.refusals = 0
    b.latencies.clear()
    b.ack_latencies.clear()
    for c in senders:
        c.pending.clear()
    b.progress = Progress(s.quiet, f"S2 @{rate:g}/s")
    b.handler(sampled=False, closed_loop=False, running=lambda: False)
    n = len(senders)
    cap = int(s.duration * rate)
    if s.messages:
        cap = min(cap, s.messages)
    lags: list[int] = []
    meter = Meter(s.pid)
    t0 = time.monotonic_ns()
    step = 1e9 / rate
    irc = isinstance(b.a, Irc)

    def tick() -> float:
        now = time.monotonic_ns()
        due = min(cap, int((now - t0) / step) + 1)
        while b.sent < due:
            k = b.sent
            c = senders[k % n]
            scheduled = t0 + int(k * step)
            lags.append((now - scheduled) // 1000)
            if irc:
                c.sent += 1
                loop.send_raw(c, b.a.send_open(c.target, marker(c.idx, scheduled // 1000, c.sent) + b.text_pad, False))
            else:
                c.pending.append(scheduled)
                b.write(c, b.a.send(c.target, b.text(c, scheduled // 1000), c.sent, False))
            b.sent += 1
        b.progress.show(b.status())
        if b.sent >= cap:
            return 0.05
        return max(0.0, min(0.01, (t0 + b.sent * step - time.monotonic_ns()) / 1e9))

    loop.run(lambda: b.sent >= cap, b.deadline, tick)
    stats = meter.read()
    at_end = {"acked": b.acks, "delivered": b.deliveries}
    grace_end = time.monotonic() + s.grace
    expected = b.sent * recipients

    def ticked() -> float:
        b.progress.show(b.status())
        return 0.05

    loop.run(lambda: b.deliveries >= expected and (irc or b.acks >= b.sent), min(grace_end, b.deadline), ticked)
    window_s = stats["window_s"]
    return {
        "offered_rate": rate,
        "offered": b.sent,
        "acked": b.acks,
        "delivered": b.deliveries,
        "expected_deliveries": expected,
        "delivered_over_offered": round(b.deliveries / expected, 4) if expected else None,
        "acked_sends_per_s": round(at_end["acked"] / window_s, 1),
        "deliveries_per_s": round(at_end["delivered"] / window_s, 1),
        "refused": b.refusals,
        **stats,
        "latency_ms": percentiles(b.latencies),
        "ack_latency_ms": percentiles(b.ack_latencies) if not irc else None,
        "send_lag_ms": percentiles(lags),
        "rss_peak_kib": proc.rss_kib(s.pid, "VmHWM") if s.pid else None,  # the daemon's peak so far
        "senders": n,
        "room_size": recipients + 1,
    }


def s3(s: Settings) -> dict:
    """Idle logged-in connections: daemon memory per connection, and the time to connect them all."""
    _need(s, s.s3_connections, "S3")
    proc.raise_fd_limit(s.s3_connections + 1000)
    proc.wait_quiet(s.pid)
    before = proc.rss_kib(s.pid) if s.pid else None
    b = Bench(s, "S3")
    try:
        meter = Meter(s.pid)
        setup = b.establish(list(range(s.s3_connections)))
        stats = meter.read()
        b.settle(0.5)
        proc.wait_quiet(s.pid, timeout=10)
        b.settle(0.2)
        after = proc.rss_kib(s.pid) if s.pid else None
        ok = setup["ok"]
        alive = b.alive()
        result = {
            "connections": s.s3_connections,
            "ok": ok,
            "failed": setup["failed"],
            "still_open": alive,
            "connect_s": setup["connect_s"],
            "connects_per_s": round(ok / setup["connect_s"], 1) if setup["connect_s"] else None,
            "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_connection": round((after - before) / ok, 2) if before and after and ok else None,
            "daemon_cpu_pct": stats["daemon_cpu_pct"],
            "bench_cpu_pct": stats["bench_cpu_pct"],
            "others_cpu_pct": stats["others_cpu_pct"],
            "client_bound": stats["client_bound"],
        }
        return _finish(b, result)
    finally:
        b.close()
        proc.wait_quiet(s.pid, timeout=30)


def l_logins(s: Settings) -> dict:
    """Password logins per second (argon2 at the daemon's configured cost), `l_concurrency` at a time."""
    if not s.adapter.password_login:
        return {"skipped": f"{s.adapter.name} has no password login here"}
    n = s.l_logins
    users = [i % max(1, s.accounts.users) for i in range(n)]
    saved = s.concurrency
    s.concurrency = s.l_concurrency
    b = Bench(s, "L")
    try:
        meter = Meter(s.pid)
        latencies: list[int] = []

        def logged_in(c: Conn) -> None:
            latencies.append((time.monotonic_ns() - c.started_at) // 1000)
            b.loop.close(c, "logged in")

        setup = b.establish(users, password=True, on_ready=logged_in)
        stats = meter.read()
        ok = setup["ok"]
        result = {
            "logins": n,
            "ok": ok,
            "failed": setup["failed"],
            "seconds": setup["connect_s"],
            "logins_per_s": round(ok / setup["connect_s"], 2) if setup["connect_s"] else None,
            "login_latency_ms": percentiles(latencies),
            "concurrency": s.l_concurrency,
            "daemon_cpu_pct": stats["daemon_cpu_pct"],
            "bench_cpu_pct": stats["bench_cpu_pct"],
            "others_cpu_pct": stats["others_cpu_pct"],
        }
        return _finish(b, result)
    finally:
        s.concurrency = saved
        b.close()


def _finish(b: Bench, result: dict) -> dict:
    errors = b.loop.errors + b.notes
    if errors:
        result["errors"] = errors[:20]
    return result


SCENARIOS: dict[str, Callable[[Settings], dict]] = {"S1": s1, "S2": s2, "S3": s3, "D": d_durable, "L": l_logins}
ORDER = ["S1", "S2", "S3", "D", "L"]


def run_scenario(name: str, s: Settings) -> dict:
    if name == "S2" and s.s2_sweep:
        return s2(s, s.s2_sweep)
    result = SCENARIOS[name](s)
    proc.wait_quiet(s.pid)
    return result
