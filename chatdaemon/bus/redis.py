"""IBus across the nodes of a cluster, through Redis (txredisapi): what crosses nodes, and who is online where.

Redis carries nothing that is not also in PostgreSQL, or passing:

    wake-ups     ["w", room, id]         a message was committed: the others read what is new from the store
    changes      ["c", change]           a change of the live state (core.state), also written to the store
    events       ["e", event, users]     typing, receipts, edits, presence, notices... (bus.codec)
    presence     ["p", user, n]          the user now has n connections on the sending node
    kicks        ["k", user, code, text] close the user's connections on every node
    hello, bye   ["h"], ["bye"]          a node (re)starts, or stops

Everything a node says within one reactor turn goes out as one PUBLISH on the channel PREFIX:bus,
from one connection, so every node hears one node's items in the order it said them.

Presence: each node keeps, in Redis, the hash PREFIX:online:NODE (user -> connections on that node),
and the key PREFIX:node:NODE (its boot id and numbers) that expires after `expiry` seconds unless
renewed every `heartbeat`. Each node keeps a copy of every other node's hash in memory (read in full
when it connects, then kept by "p" items), so `online()` never waits. A node whose key expired is
gone: its users who are not online elsewhere are offline, and each node tells its own clients.

While Redis is out of reach this node serves its own users alone: nothing is published (what
would have been is lost, being passing or in the store). When the link is back, the node writes
its presence again, reads everyone else's, and the core resyncs: state from the store, and every
message after its watermark (IBusListener.resync).
"""

import secrets
import time
import urllib.parse
from typing import Any

import orjson
import txredisapi
from twisted.internet import endpoints
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from ..core.events import Notice
from . import IBus, codec
from .local import LocalBus


def parse_url(url: str) -> tuple[str, int, int]:
    """(host, port, database number) of a redis://host:port/db URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError(f"not a redis://host:port/db URL: {url!r}")
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"the database of {url!r} is not a number")
    return parts.hostname, parts.port or 6379, int(db)


class _Commands(txredisapi.RedisProtocol):
    bus: "RedisBus"

    def connectionMade(self):
        d = super().connectionMade()
        self.whenConnected().addCallback(lambda _: self.factory.bus._commands_up(self))
        return d

    def connectionLost(self, why):
        super().connectionLost(why)
        self.factory.bus._link_lost(self)


class _Subscriber(txredisapi.SubscriberProtocol):
    def connectionMade(self):
        d = super().connectionMade()
        self.whenConnected().addCallback(lambda _: self.factory.bus._subscriber_up(self))
        return d

    def messageReceived(self, pattern, channel, message):
        self.factory.bus._received(message)

    def connectionLost(self, why):
        super().connectionLost(why)
        self.factory.bus._link_lost(self)


def _factory(cls, protocol, bus, db, **kwargs):
    factory = cls(**kwargs)
    factory.protocol = protocol
    factory.bus = bus
    factory.dbid = db
    factory.maxDelay = 2  # seconds between tries to reconnect, at most
    factory.initialDelay = 0.2
    return factory


@implementer(IBus)
class RedisBus(LocalBus):
    log = Logger()

    def __init__(self, url: str, prefix: str, node_id: str, clock, heartbeat: float = 2.0, expiry: float = 10.0):
        super().__init__(node_id)
        self.url, self.prefix = url, prefix
        self.location = f"{url} (keys {prefix}:*)"
        self._host, self._port, self._db = parse_url(url)
        self._clock = clock
        self._heartbeat, self._expiry = heartbeat, expiry
        self.boot = secrets.token_hex(8)
        self._listener = None
        self._channel = f"{prefix}:bus"
        self._cmd: Any = None  # the connected protocols
        self._sub: Any = None
        self._up = False  # both links up, subscribed, presence written and read: publishing
        self._ever_up = False
        self._syncing: list | None = None  # presence items heard while the others' presence is read
        self._out: list = []
        self._flush_call = None
        self._where: dict[str, dict[str, int]] = {}  # user -> {other node: connections}
        self._remote: dict[str, dict[str, int]] = {}  # other node -> {user: connections}
        self._boots: dict[str, str] = {}  # other node -> its boot id
        self._node_stats: dict[str, dict] = {}
        self._loop = LoopingCall(self._beat)
        self._loop.clock = clock
        self._factories: list = []
        self._first: Deferred[None] = Deferred()
        self.published = 0  # PUBLISH commands sent (metrics, tests)

    # -- start and stop

    def start(self, wait: float = 5.0) -> Deferred:
        """Connect (and keep reconnecting); fires once linked, or after `wait` seconds without (serving alone)."""
        endpoint = endpoints.TCP4ClientEndpoint(self._clock, self._host, self._port, timeout=5)
        # convertNumbers off: a user named "123" stays a str
        commands = _factory(txredisapi.RedisFactory, _Commands, self, self._db, uuid=self.url, dbid=self._db,
                            poolsize=1, isLazy=True, replyTimeout=10, convertNumbers=False)  # fmt: skip
        subscriber = _factory(txredisapi.SubscriberFactory, _Subscriber, self, self._db, isLazy=True)
        subscriber.convertNumbers = False
        self._factories = [commands, subscriber]
        for factory in self._factories:
            factory.startConnecting(endpoint)
        self._loop.start(self._heartbeat, now=False)
        timer = self._clock.callLater(wait, self._give_up_waiting)
        self._first.addBoth(lambda r: timer.cancel() if timer.active() else None)
        return self._first

    def _give_up_waiting(self) -> None:
        if not self._first.called:
            self.log.warn("Redis at {url} does not answer: serving this node's users alone meanwhile", url=self.url)
            self._first.callback(None)

    async def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        cmd = self._cmd if self._up else None
        self._up = False
        if cmd is not None:
            self._send_now([["bye"]], cmd)
            await DeferredList(
                [cmd.delete(self._key("online", self.node_id)), cmd.srem(self._key("nodes"), self.node_id),
                 cmd.delete(self._key("node", self.node_id))], consumeErrors=True)  # fmt: skip
        await DeferredList([f.disconnect() for f in self._factories], consumeErrors=True)

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    # -- the links

    def _commands_up(self, protocol) -> None:
        self._cmd = protocol
        self._maybe_up()

    def _subscriber_up(self, protocol) -> None:
        def subscribed(_):
            self._sub = protocol
            self._maybe_up()

        protocol.subscribe(self._channel).addCallbacks(subscribed, self._failed)

    def _link_lost(self, protocol) -> None:
        if protocol is self._cmd:
            self._cmd = None
        elif protocol is self._sub:
            self._sub = None
        else:
            return
        if self._up:
            self.log.warn("lost Redis at {url}: serving this node's users alone until it is back", url=self.url)
        self._up = False

    def _maybe_up(self) -> None:
        if self._cmd is None or self._sub is None or self._up or self._syncing is not None:
            return
        Deferred.fromCoroutine(self._link()).addErrback(self._failed)

    async def _link(self) -> None:
        """Both links are up: write this node's presence, read everyone else's, then publish again."""
        cmd = self._cmd
        self._syncing = []
        try:
            await self._write_node(cmd)
            online = self._key("online", self.node_id)
            await cmd.delete(online)
            counts = {user: len(clients) for user, clients in self._clients.items()}
            if counts:
                await cmd.hmset(online, counts)
            self._send_now([["h"]], cmd)
            await self._read_others(cmd)
        finally:
            heard, self._syncing = self._syncing, None
        for node, item in heard or ():
            self._presence_item(node, item)
        self._up = True
        self.log.info("linked to Redis at {url} as node {node}", url=self.url, node=self.node_id)
        if self._ever_up and self._listener is not None:
            self._listener.resync()  # what was missed meanwhile: changes, wake-ups
        self._ever_up = True
        if not self._first.called:
            self._first.callback(None)

    def _write_node(self, cmd) -> Deferred:
        value = orjson.dumps({"boot": self.boot, "stats": self._stats}).decode()
        return DeferredList(
            [cmd.set(self._key("node", self.node_id), value, pexpire=int(self._expiry * 1000)),
             cmd.sadd(self._key("nodes"), self.node_id)], fireOnOneErrback=True, consumeErrors=True)  # fmt: skip

    async def _read_others(self, cmd) -> None:
        """Which nodes are alive, with their presence: read in full (at a link, or for a node new or restarted)."""
        names = [n for n in await cmd.smembers(self._key("nodes")) if n != self.node_id]
        values = await cmd.mget([self._key("node", n) for n in names]) if names else []
        for name, value in zip(names, values, strict=True):
            if value is None:
                self._drop_node(name)
                await cmd.srem(self._key("nodes"), name)
                continue
            info = orjson.loads(value)
            self._node_stats[name] = info.get("stats", {})
            if self._boots.get(name) != info["boot"]:
                self._drop_node(name)
                self._boots[name] = info["boot"]
                counts = await cmd.hgetall(self._key("online", name))
                self._set_node(name, {user: int(n) for user, n in counts.items()})
        for name in [n for n in self._remote if n not in names]:
            self._drop_node(name)

    def _beat(self) -> None:
        """Every `heartbeat` seconds: renew this node's key; see which nodes are alive."""
        cmd = self._cmd
        if not self._up or cmd is None:
            return
        d = self._write_node(cmd)
        d.addCallback(lambda _: Deferred.fromCoroutine(self._read_others(cmd)))
        d.addErrback(self._failed)

    def _failed(self, failure) -> None:
        self.log.info("Redis: {error}", error=failure.getErrorMessage())

    # -- presence of the other nodes

    def _set_node(self, node: str, counts: dict[str, int]) -> None:
        self._remote[node] = {}
        for user, n in counts.items():
            self._set_count(node, user, n)

    def _set_count(self, node: str, user: str, n: int) -> None:
        mine = self._remote.setdefault(node, {})
        where = self._where.setdefault(user, {})
        if n > 0:
            mine[user] = where[node] = n
        else:
            mine.pop(user, None)
            where.pop(node, None)
        if not where:
            del self._where[user]

    def _drop_node(self, node: str) -> None:
        """`node` is gone (or restarted): its users not online elsewhere are offline."""
        users = self._remote.pop(node, {})
        self._boots.pop(node, None)
        self._node_stats.pop(node, None)
        gone = []
        for user in users:
            where = self._where.get(user, {})
            where.pop(node, None)
            if not where:
                self._where.pop(user, None)
                if user not in self._clients:
                    gone.append(user)
        if users:
            self.log.info("node {node} is gone: {n} users with it", node=node, n=len(users))
        if gone and self._listener is not None:
            self._listener.gone(gone)

    def _presence_item(self, node: str, item: list) -> None:
        if item[0] == "p":
            self._set_count(node, item[1], item[2])
        elif item[0] == "h":  # (re)linked: read it again (a new boot replaces its presence; the same one stays)
            cmd = self._cmd
            if cmd is not None:
                d = Deferred.fromCoroutine(self._read_others(cmd))
                d.addErrback(self._failed)
        elif item[0] == "bye":
            self._drop_node(node)

    # -- IBus: this node, and every node

    def attach(self, user, client) -> bool:
        first = super().attach(user, client)
        self._say(["p", user, len(self._clients[user])])
        self._counted(user)
        return first

    def detach(self, user, client) -> bool:
        last = super().detach(user, client)
        self._say(["p", user, len(self._clients.get(user, ()))])
        self._counted(user)
        return last

    def _counted(self, user: str) -> None:
        cmd = self._cmd if self._up else None
        if cmd is None:
            return  # written in full when the link is back
        n = len(self._clients.get(user, ()))
        key = self._key("online", self.node_id)
        d = cmd.hset(key, user, n) if n else cmd.hdel(key, user)
        d.addErrback(self._failed)

    def online(self, user) -> bool:
        return user in self._clients or user in self._where

    def connections(self, user) -> int:
        return len(self._clients.get(user, ())) + sum(self._where.get(user, {}).values())

    def online_users(self):
        return self._clients.keys() | self._where.keys()

    def publish(self, event, users, exclude=None) -> None:
        users = list(users)
        self.deliver(event, users, exclude)
        elsewhere = [u for u in users if u in self._where]
        if elsewhere:
            self._say(["e", codec.encode(event), elsewhere])

    def kick(self, user, event) -> int:
        n = self.connections(user)
        super().kick(user, event)
        if user in self._where:
            self._say(["k", user, event.code, event.text])
        return n

    def wake(self, room_id, message_id) -> None:
        self._say(["w", room_id, message_id])

    def share(self, change) -> None:
        self._say(["c", list(change)])

    def listen(self, listener) -> None:
        self._listener = listener

    def report(self, stats) -> None:
        self._stats = stats

    def nodes(self) -> dict:
        return {self.node_id: self._stats, **self._node_stats}

    # -- out: one PUBLISH per reactor turn

    def _say(self, item: list) -> None:
        if not self._up:
            return
        self._out.append(item)
        if self._flush_call is None:
            self._flush_call = self._clock.callLater(0, self._flush)

    def _flush(self) -> None:
        self._flush_call = None
        items, self._out = self._out, []
        if items and self._up and self._cmd is not None:
            self._send_now(items, self._cmd)

    def _send_now(self, items: list, cmd) -> None:
        payload = orjson.dumps({"n": self.node_id, "b": self.boot, "t": time.time(), "i": items})
        self.published += 1
        cmd.publish(self._channel, payload.decode()).addErrback(self._failed)

    # -- in

    def _received(self, raw) -> None:
        try:
            message = orjson.loads(raw)
            node = message["n"]
            if node == self.node_id:
                return
            woken = False
            for item in message["i"]:
                kind = item[0]
                if kind in ("p", "h", "bye"):
                    if self._syncing is not None:
                        self._syncing.append((node, item))
                    else:
                        self._presence_item(node, item)
                elif kind == "w":
                    woken = True
                elif kind == "c":
                    if self._listener is not None:
                        self._listener.changed(tuple(item[1]))
                elif kind == "e":
                    self.deliver(codec.decode(item[1]), item[2])
                elif kind == "k":
                    LocalBus.kick(self, item[1], Notice(item[2], item[3]))
            if woken and self._listener is not None:
                self._listener.woken()
        except Exception:
            self.log.failure("a bad message on {channel}", channel=self._channel)
