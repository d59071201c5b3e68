"""The admin shell's commands: a line in, text out (transports/admin.py carries them over SSH).

Commands that change state are core commands run as an Operator, so they keep
the clients' rules and persistence; the others read the live state.
"""

import fnmatch
import secrets
import time
from collections.abc import Awaitable, Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from . import errors
from .core import commands as c
from .core.interfaces import IPrincipal
from .core.model import DIRECT
from .errors import ChatError

MAX_LISTED = 100


class UsageError(Exception):
    """Wrong arguments; the message says how to call the command."""


@implementer(IPrincipal)
class Operator:
    """The core's principal for an operator: may run the operators' commands; never attached to the bus."""

    operator = True
    open = False
    key_hash = None
    peer = "admin shell"

    def __init__(self, name: str):
        self.user = f"@{name}"  # '@' is in no user name, so an operator is never mistaken for a user


def _duration(seconds: float) -> str:
    minutes, s = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d" if days else "") + f"{hours}h{minutes:02d}m{s:02d}s"


def _counts(counts: dict) -> str:
    return ", ".join(f"{key} {n}" for key, n in sorted(counts.items())) or "none"


def _password(words: list[str]) -> tuple[str, str]:
    """The password given, or a new random one; and what to tell the operator."""
    if words:
        return " ".join(words), ""
    password = secrets.token_urlsafe(12)
    return password, f" (password: {password})"


class AdminCommands:
    """The commands of one operator's session."""

    log = Logger()

    def __init__(self, service, operator: str, manhole: bool = False):
        self.service = service
        self.core = service.core
        self.operator = Operator(operator)
        self.manhole = manhole
        # name -> (what runs it, None for one the transport runs; usage; help)
        self._table: dict[str, tuple[Callable[[list[str]], Awaitable[str]] | None, str, str]] = {
            "help": (self._help, "", "this list"),
            "stats": (self._stats, "", "connections, users, rooms, messages/s, queues, uptime"),
            "users": (self._users, "[PATTERN]", "users (a glob such as 'a*'), online or not, banned or not"),
            "who": (self._who, "ROOM", "the members of a room"),
            "rooms": (self._rooms, "", "public rooms and groups, with their members"),
            "kick": (self._kick, "USER [REASON]", "close the user's connections, telling them the reason"),
            "ban": (self._ban, "USER [REASON]", "refuse the user's logins from now on, and kick them"),
            "unban": (self._unban, "USER", "let a banned user log in again"),
            "broadcast": (self._broadcast, "TEXT", "a notice to every logged-in connection"),
            "room": (self._room, "delete ID", "delete a room with its messages"),
            "user": (
                self._user,
                "create|passwd|delete NAME [PASSWORD]",
                "add an account, set its password (revokes its session keys), or delete it;"
                " without PASSWORD a random one is made and shown",
            ),
            "feedback": (self._feedback, "[N]", "the last N (20) feedback messages users sent (typed FEEDBACK)"),
            "reload": (self._reload, "", "re-read the config file, TLS files and admin keys (as SIGHUP)"),
            "shutdown": (self._shutdown, "", "stop chatd gracefully (as SIGTERM)"),
        }
        if manhole:
            self._table["python"] = (
                None,
                "",
                "a Python prompt inside chatd (needs a terminal: ssh -t); Ctrl-D ends it",
            )

    def run(self, line: str) -> Deferred:
        """Fire with the text answering `line`; fail with UsageError or ChatError."""
        return Deferred.fromCoroutine(self._run(line))

    async def _run(self, line: str) -> str:
        name, _, rest = line.strip().partition(" ")
        entry = self._table.get(name)
        if entry is None or entry[0] is None:
            raise UsageError(f"unknown command {name!r}: try help" if entry is None else f"{name}: needs a terminal")
        self.log.info("admin {operator}: {command}", operator=self.operator.user, command=self._redacted(line))
        return await entry[0](rest.split())

    @staticmethod
    def _redacted(line: str) -> str:
        words = line.split()
        if words[:2] in (["user", "create"], ["user", "passwd"]) and len(words) > 3:
            return " ".join([*words[:3], "***"])
        return line.strip()

    def _execute(self, command) -> Deferred:
        return self.core.execute(self.operator, command)

    def _usage(self, name: str) -> UsageError:
        return UsageError(f"usage: {name} {self._table[name][1]}")

    async def _help(self, words) -> str:
        width = max(len(f"{name} {usage}") for name, (_, usage, _) in self._table.items())
        lines = [f"{f'{name} {usage}':<{width}}  {doc}" for name, (_, usage, doc) in self._table.items()]
        return "\n".join([*lines, "exit (or Ctrl-D) ends the session; one command also runs as `ssh ... COMMAND`"])

    async def _stats(self, words) -> str:
        snap = self.service.snapshot()
        banned = self.core.state.banned
        connections = {f"{transport} {dialect}": n for (transport, dialect), n in snap["connections"].items()}
        backlog = snap["offline_backlog"]
        nodes = self.core.bus.nodes()
        cluster = [
            f"  {name}{' (this one)' if name == snap['node'] else ''}: {info.get('connections', '?')} connections, "
            f"{info.get('users_here', '?')} users, {info.get('messages_per_second', '?')} messages/s"
            for name, info in sorted(nodes.items())
        ]
        return "\n".join(
            [
                f"node         {snap['node']}, one of {len(nodes)}" + (":" if len(nodes) > 1 else ""),
                *(cluster if len(nodes) > 1 else []),
                f"uptime       {_duration(time.time() - snap['started_at'])}",
                f"connections  {sum(connections.values())} on this node: {_counts(connections)}",
                f"users        {len(self.core.state.users)} registered, {snap['users_online']} online, {len(banned)} banned",
                f"rooms        {sum(snap['rooms'].values())}: {_counts(snap['rooms'])}",
                f"messages     {snap['chat_messages']} since start, {self.service.sampler.messages_per_second():.1f}/s"
                " over the last minute",
                f"storage      {'CANNOT WRITE: ' + snap['storage'] if snap['storage'] else 'writable'}",
                f"overload     {'HOLDING: taking no new work' if snap['overload']['holding'] else 'no'}"
                f" (event loop lag {snap['overload']['loop_lag'] * 1000:.0f} ms; {snap['overload']['episodes']} episodes,"
                f" {snap['overload']['held_seconds']:.1f} s in all)",
                f"queues       {snap['pending_writes']} writes waiting to commit, {snap['queued_bytes']} bytes waiting"
                f" for clients; offline: {backlog['messages']} messages, {backlog['notices']} notices (counted each minute)",
            ]
        )

    async def _users(self, words) -> str:
        pattern = words[0] if words else "*"
        users, banned = self.core.state.users, self.core.state.banned
        names = sorted(u for u in users if fnmatch.fnmatchcase(u, pattern))
        lines = []
        for name in names[:MAX_LISTED]:
            clients = self.core.bus.connections(name)  # on every node
            state = f"online ({clients} connection{'s' if clients > 1 else ''})" if clients else "offline"
            status = f"{users[name]!r}" if clients else ""  # a status is shown while its user is online
            lines.append(f"{name:<32} {state:<26} {status}{'  BANNED' if name in banned else ''}".rstrip())
        if len(names) > MAX_LISTED:
            lines.append(f"... and {len(names) - MAX_LISTED} more: narrow the pattern")
        return "\n".join(lines) or f"no user matches {pattern!r}"

    async def _who(self, words) -> str:
        if len(words) != 1:
            raise self._usage("who")
        room = self.core.state.rooms.get(words[0].removeprefix("#"))
        if room is None:
            raise ChatError(errors.NO_SUCH_ROOM, f"no such room: {words[0]}")
        online = self.core.bus.online
        head = f"{room.id} ({room.kind}, {len(room.members)} members, leader {room.leader or '-'})"
        return "\n".join([head] + [f"  {u} {'online' if online(u) else 'offline'}" for u in sorted(room.members)])

    async def _rooms(self, words) -> str:
        online = self.core.bus.online
        rooms = sorted(self.core.state.rooms.values(), key=lambda r: r.id)
        lines = [
            f"{r.id:<40} {r.kind:<7} {len(r.members)} members, {sum(map(online, r.members))} online"
            for r in rooms
            if r.kind != DIRECT
        ]
        direct = sum(r.kind == DIRECT for r in rooms)
        return "\n".join([*lines[:MAX_LISTED], f"and {direct} direct conversations"])

    async def _kick(self, words) -> str:
        if not words:
            raise self._usage("kick")
        closed = await self._execute(c.Kick(words[0], " ".join(words[1:])))
        return f"kicked {words[0]}: {closed} connections closed"

    async def _ban(self, words) -> str:
        if not words:
            raise self._usage("ban")
        closed = await self._execute(c.Ban(words[0], " ".join(words[1:])))
        return f"banned {words[0]}: {closed} connections closed"

    async def _unban(self, words) -> str:
        if len(words) != 1:
            raise self._usage("unban")
        return f"unbanned {await self._execute(c.Unban(words[0]))}"

    async def _broadcast(self, words) -> str:
        if not words:
            raise self._usage("broadcast")
        return f"sent to {await self._execute(c.Broadcast(' '.join(words)))} users"

    async def _room(self, words) -> str:
        if len(words) != 2 or words[0] != "delete":
            raise self._usage("room")
        room = await self._execute(c.DeleteRoom(words[1].removeprefix("#")))
        return f"deleted {room.id} ({room.kind}, {len(room.members)} members)"

    async def _user(self, words) -> str:
        if len(words) < 2 or words[0] not in ("create", "passwd", "delete"):
            raise self._usage("user")
        action, name, rest = words[0], words[1], words[2:]
        if action == "delete":
            if rest:
                raise self._usage("user")
            return f"deleted {await self._execute(c.DeleteUser(name))}"
        password, shown = _password(rest)
        if action == "create":
            return f"created {await self._execute(c.Register(name, password))}{shown}"
        return f"password of {await self._execute(c.SetPassword(name, password))} set{shown}; its session keys revoked"

    async def _feedback(self, words) -> str:
        if len(words) > 1 or (words and not words[0].isdigit()):
            raise self._usage("feedback")
        entries = await self._execute(c.ReadFeedback(int(words[0]) if words else 20))
        lines = [
            f"#{f.id} {time.strftime('%Y-%m-%d %H:%M', time.gmtime(f.ts / 1000))} {f.user}"
            f"{'' if f.rating is None else f' ({f.rating}/5)'}: {f.text}"
            for f in entries
        ]
        return "\n".join(lines) or "no feedback yet"

    async def _reload(self, words) -> str:
        return "\n".join(self.service.reload())

    async def _shutdown(self, words) -> str:
        self.service.reactor.callLater(0.2, self.service.shutdown, f"admin {self.operator.user}")
        return "shutting down: connected clients are told, pending writes are committed"
