"""The SSH admin shell: Twisted Conch with public-key logins.

`ssh -p 2222 admin@127.0.0.1` opens a shell with line editing and history
(conch's HistoricRecvLine); `ssh -p 2222 admin@127.0.0.1 stats` runs one
command and exits with 0, or 1 if it failed. The keys let in are those of an
OpenSSH authorized_keys file, under any user name (the name is the operator's
name in the log). The host key is made in the data directory on first start.
"""

import os
from collections import deque

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch import manhole, recvline
from twisted.conch.avatar import ConchUser
from twisted.conch.checkers import IAuthorizedKeysDB, SSHPublicKeyChecker, readAuthorizedKeyFile
from twisted.conch.insults import insults
from twisted.conch.interfaces import IConchUser, ISession
from twisted.conch.manhole_ssh import ConchFactory, TerminalSessionTransport
from twisted.conch.ssh import keys, session
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred
from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.logger import Logger
from twisted.python import components
from twisted.python.failure import Failure
from zope.interface import implementer

from ..admin import AdminCommands, UsageError
from ..errors import ChatError

HOST_KEY_FILE = "ssh_host_ed25519_key"
log = Logger()
CTRL_C, CTRL_D = b"\x03", b"\x04"


def host_key(data_dir: str) -> keys.Key:
    """The admin shell's host key, made (ed25519, mode 0600) on first start."""
    path = os.path.join(data_dir, HOST_KEY_FILE)
    if not os.path.exists(path):
        pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        os.makedirs(data_dir, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(pem)
    return keys.Key.fromFile(path)


@implementer(IAuthorizedKeysDB)
class AdminKeys:
    """The public keys of an authorized_keys file, for every user name; `load` reads it (again)."""

    log = Logger()

    def __init__(self):
        self.keys: tuple[keys.Key, ...] = ()

    def load(self, path: str) -> int:
        """Read `path`; a missing file means no keys. Raises OSError if it cannot be read."""
        try:
            with open(path, "rb") as f:
                self.keys = tuple(readAuthorizedKeyFile(f))
        except FileNotFoundError:
            self.keys = ()
            self.log.warn("admin shell: no {path}, so nobody can log in", path=path)
        return len(self.keys)

    def getAuthorizedKeys(self, username):
        return self.keys


class AdminShell(recvline.HistoricRecvLine):
    """One operator's interactive session: a command per line, answered below it."""

    ps = (b"chatd> ", b"...> ")

    def __init__(self, commands: AdminCommands, end):
        self.commands = commands
        self._end = end  # ends the session with exit status 0
        self._waiting: deque[str] = deque()  # lines typed while a command runs
        self._running: Deferred[str] | None = None  # the command being run, if any
        self._connected = True

    def connectionMade(self) -> None:
        super().connectionMade()
        self.keyHandlers[CTRL_D] = self._end
        self.keyHandlers[CTRL_C] = self._clear_line

    def initializeScreen(self) -> None:
        self.terminal.reset()
        self._say(f"chatd admin shell, operator {self.commands.operator.user}: type help")
        self.terminal.write(self.ps[self.pn])
        self.setInsertMode()

    def _say(self, text: str) -> None:
        for line in text.splitlines():
            self.terminal.write(line.encode("utf-8", "replace"))
            self.terminal.nextLine()

    def _clear_line(self) -> None:
        self.lineBuffer, self.lineBufferIndex = [], 0
        self.terminal.nextLine()
        self.terminal.write(self.ps[self.pn])

    def lineReceived(self, line: bytes) -> None:
        self._waiting.append(line.decode("utf-8", "replace").strip())
        if self._running is None:
            self._next()

    def _next(self) -> None:
        """Run the lines typed so far, one command at a time, in order."""
        while self._waiting and self._running is None:
            text = self._waiting.popleft()
            if text in ("exit", "quit"):
                self._end()
                return
            if text == "python" and self.commands.manhole:
                self._python()
                return
            if text:
                self._running = self.commands.run(text)
                self._running.addCallbacks(self._say, self._failed)
                self._running.addBoth(self._done)
                return
            self.terminal.write(self.ps[self.pn])

    def _failed(self, failure: Failure) -> None:
        self._say(describe(failure))

    def _done(self, _) -> None:
        self._running = None
        if self._connected:
            self.terminal.write(self.ps[self.pn])
            self._next()

    def connectionLost(self, reason) -> None:
        self._connected = False

    def _python(self) -> None:
        """Hand the terminal to a Python prompt (manhole) for the rest of the session: `service` (its `store`,
        `bus`, `config`, ...) and `core` are in scope."""
        service = self.commands.service
        repl = manhole.ColoredManhole({"service": service, "core": service.core})
        self.terminal.terminalProtocol = repl
        repl.makeConnection(self.terminal)


def describe(failure: Failure) -> str:
    """What an operator is told when a command fails."""
    if failure.check(UsageError):
        return str(failure.value)
    if isinstance(failure.value, ChatError):
        return f"error {failure.value.code}: {failure.value.message}"
    log.failure("admin command failed", failure)
    return f"failed: {failure.getErrorMessage()}"


def _exit(proto, status: int) -> None:
    """End an SSH session with an exit status, as a finished process would."""
    proto.processEnded(Failure(ProcessDone(None) if status == 0 else ProcessTerminated(exitCode=status)))


class AdminUser(ConchUser):
    def __init__(self, name: str, factory: "AdminFactory"):
        super().__init__()
        self.name, self.factory = name, factory
        self.channelLookup[b"session"] = session.SSHSession


@implementer(ISession)
class AdminSession:
    """One SSH session channel: an interactive shell or one command."""

    def __init__(self, avatar: AdminUser):
        self.avatar = avatar
        self.size: tuple[int, int] | None = None  # (columns, rows) once a terminal is asked for
        self.shell: insults.ServerProtocol | None = None

    def _commands(self) -> AdminCommands:
        factory = self.avatar.factory
        return AdminCommands(factory.service, self.avatar.name, factory.service.config.admin_shell.manhole)

    def getPty(self, term, windowSize, modes) -> None:
        self.size = (windowSize[1], windowSize[0])

    def openShell(self, proto) -> None:
        self.shell = insults.ServerProtocol(AdminShell, self._commands(), lambda: _exit(proto, 0))
        TerminalSessionTransport(proto, self.shell, self.avatar, *(self.size or (80, 24)))
        self.avatar.factory.sessions.add(self)

    def execCommand(self, proto, command: bytes) -> None:
        self.avatar.factory.sessions.add(self)
        newline = "\r\n" if self.size else "\n"

        def done(text: str, status: int) -> None:
            proto.write((text.replace("\n", newline) + newline).encode("utf-8", "replace"))
            _exit(proto, status)

        def start() -> None:
            d = self._commands().run(command.decode("utf-8", "replace"))
            d.addCallbacks(done, lambda f: done(describe(f), 1), callbackArgs=(0,))

        # on the next turn: the reply to the exec request must reach the client before any output
        self.avatar.factory.service.reactor.callLater(0, start)

    def windowChanged(self, newWindowSize) -> None:
        self.size = (newWindowSize[1], newWindowSize[0])
        if self.shell is not None:
            terminal = self.shell.terminalProtocol
            assert terminal is not None, "openShell connected the shell"
            terminal.terminalSize(*self.size)

    def eofReceived(self) -> None:
        """The client's input ended; a command needs none, a shell ends with the connection."""

    def closed(self) -> None:
        self.avatar.factory.sessions.discard(self)


components.registerAdapter(AdminSession, AdminUser, ISession)


@implementer(IRealm)
class AdminRealm:
    def __init__(self, factory: "AdminFactory"):
        self._factory = factory

    def requestAvatar(self, avatarId, mind, *interfaces):
        if IConchUser not in interfaces:
            raise NotImplementedError(interfaces)
        name = avatarId.decode("utf-8", "replace")
        log.info("admin shell: {operator} logged in", operator=name)
        return IConchUser, AdminUser(name, self._factory), lambda: None


class AdminFactory(ConchFactory):
    """The SSH server of the admin shell for a ChatService."""

    noisy = False

    def __init__(self, service, admin_keys: AdminKeys):
        super().__init__(Portal(AdminRealm(self), [SSHPublicKeyChecker(admin_keys)]))
        self.service = service
        self.sessions: set[AdminSession] = set()

    def use_host_key(self, key: keys.Key) -> None:
        # ConchFactory's key dicts are class attributes: give this factory its own
        self.publicKeys = {key.sshType(): key.public()}
        # keys.Key objects, as SSHFactory reads them (ConchFactory annotates its dicts as bytes)
        self.privateKeys = {key.sshType(): key}  # type: ignore[dict-item]
