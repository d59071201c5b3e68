"""The seams hold: every implementation provides its interface, and nothing calls the store outside IStore."""

import ast
import pathlib

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from chatdaemon.admin import Operator
from chatdaemon.bus import IBus
from chatdaemon.bus.local import LocalBus
from chatdaemon.config import IRC, Http, Limits
from chatdaemon.core.interfaces import IClient, IPrincipal
from chatdaemon.session import Flusher, ISessionTransport, Session
from chatdaemon.session.inbox import IInboxOwner
from chatdaemon.session.outbox import IOutboxOwner
from chatdaemon.store import IFileStore, IStore
from chatdaemon.store.sqlite import SQLiteStore
from chatdaemon.transports.connection import Connections
from chatdaemon.transports.irc import IrcFactory, IrcProtocol
from chatdaemon.transports.line import LineFactory
from chatdaemon.transports.rest import ApiClient
from chatdaemon.transports.socketio import ISocketHandler, ISocketIOApplication
from chatdaemon.transports.socketio_chat import ChatSocketIO, Knocking, SocketSession
from chatdaemon.transports.websocket import ChatWebSocketFactory
from tests.services import pg_url  # noqa: F401 (a fixture)

PACKAGE = pathlib.Path(__file__).parents[2] / "chatdaemon"


class FakeCore:
    fanout_upto = 0


def test_the_implementations_provide_their_interfaces(tmp_path):
    assert verifyObject(IStore, SQLiteStore(str(tmp_path), reactor))
    assert verifyObject(IBus, LocalBus())
    assert verifyObject(IPrincipal, ApiClient("alice", "127.0.0.1"))
    assert verifyObject(IPrincipal, Operator("root"))
    connections = Connections(None, Limits(), Clock())
    assert verifyObject(ISessionTransport, LineFactory(connections).buildProtocol(None))
    websocket = ChatWebSocketFactory(connections, Http(), None).buildProtocol(None)
    assert verifyObject(ISessionTransport, websocket)
    session = Session(FakeCore(), websocket, Flusher(Clock()), Limits(), Clock(), "ws", "127.0.0.1:1")
    for interface in (IClient, IInboxOwner, IOutboxOwner):
        assert verifyObject(interface, session)
    irc = IrcFactory(connections, IRC()).buildProtocol(None)
    assert isinstance(irc, IrcProtocol) and verifyObject(ISessionTransport, irc)
    socket = SocketSession(connections, "events", "a-session-key", 1_000_000)
    assert verifyObject(ISocketHandler, socket) and verifyObject(ISessionTransport, socket)
    assert verifyObject(IPrincipal, Knocking("127.0.0.1:1"))
    assert verifyObject(ISocketIOApplication, ChatSocketIO(connections, 1_000_000))


@pytest_twisted.ensureDeferred
async def test_the_postgres_store_provides_its_interfaces_once_open(pg_url, tmp_path):  # noqa: F811
    from chatdaemon.store.postgres import PostgresStore

    store = PostgresStore(pg_url, reactor, pool_size=1)
    await store.open()
    try:
        assert verifyObject(IStore, store)
        assert verifyObject(IFileStore, store.file_store(str(tmp_path / "uploads")))
    finally:
        await store.close()


def _store_calls(tree: ast.AST):
    """(line, name) of every `<...>.store.NAME` and `store.NAME` attribute use."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if isinstance(owner, ast.Attribute) and owner.attr == "store":
            root = owner.value
            if (isinstance(root, ast.Name) and root.id == "config") or getattr(root, "attr", "") == "config":
                continue  # the [store] section of the configuration
            yield node.lineno, node.attr
        elif isinstance(owner, ast.Name) and owner.id == "store":
            yield node.lineno, node.attr


def test_nothing_outside_the_store_calls_what_istore_does_not_list():
    allowed = set(IStore.names(all=True))
    strays = []
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "store") or path.name == "config.py":
            continue  # the engines themselves; the configuration's [store] section
        for line, name in _store_calls(ast.parse(path.read_text(), str(path))):
            if name not in allowed:
                strays.append(f"{path.relative_to(PACKAGE)}:{line}: store.{name}")
    assert not strays, "calls outside IStore:\n" + "\n".join(strays)


def test_transports_and_dialects_never_reach_the_store():
    """They authenticate with core.authenticate and do everything else through core commands."""
    strays = []
    for folder in ("transports", "dialects", "session"):
        for path in (PACKAGE / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Attribute) and node.attr == "store":
                    strays.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not strays, "store used directly in: " + ", ".join(strays)


def test_refusals_of_rights_are_raised_in_authz_only():
    """The codes that say "you may not" are raised in core/authz.py (and named, never raised, elsewhere)."""
    rights = {"NOT_A_MEMBER", "NOT_LEADER", "NOT_AUTHOR", "PRIVATE_ROOM", "OPERATORS_ONLY", "BANNED", "NOT_INVITED"}
    strays = []
    for path in (PACKAGE / "core").rglob("*.py"):
        if path.name == "authz.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "ChatError" and node.args:
                code = node.args[0]
                if isinstance(code, ast.Attribute) and code.attr in rights:
                    strays.append(f"{path.name}:{node.lineno} {code.attr}")
    assert not strays, "rights checked outside authz.py: " + ", ".join(strays)
