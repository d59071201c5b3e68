"""Configuration: built-in defaults, overlaid by a TOML file, overlaid by the command line.

Every key is documented, with its default, in etc/chatd.toml; a test keeps the
two in step. A bad key or value raises ConfigError naming it.
"""

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any


class ConfigError(ValueError):
    """An unknown key or a bad value, named in the message."""


@dataclass(frozen=True)
class Limits:
    max_line_bytes: int = 65536
    max_message_chars: int = 4096
    outbound_buffer_bytes: int = 1 << 20
    slow_consumer_grace: float = 2.0
    idle_timeout: float = 900.0
    login_timeout: float = 60.0
    max_bad_frames: int = 10
    rate_per_second: float = 20.0
    rate_burst: int = 60
    max_transfer_frame_bytes: int = 2 * 1024 * 1024
    max_large_frames: int = 16
    large_frame_timeout: float = 60.0
    transfer_bytes_per_second: int = 8 * 1024 * 1024
    transfer_burst_bytes: int = 4 * 1024 * 1024
    history_page: int = 100
    offline_page: int = 500
    handshake_timeout: float = 30.0
    max_connections_per_ip: int = 100
    resend_window: float = 86400.0
    resend_cache: int = 10000
    max_in_flight: int = 100


@dataclass(frozen=True)
class Overload:
    """When to stop taking new work (session/governor.py)."""

    max_loop_lag: float = 0.1
    max_pending_writes: int = 50_000
    max_queued_bytes: int = 256 << 20


@dataclass(frozen=True)
class Passwords:
    time_cost: int = 3
    memory_cost: int = 65536
    parallelism: int = 4
    max_concurrent: int = 4


@dataclass(frozen=True)
class Throttle:
    """Failed logins and new accounts (core/throttle.py)."""

    login_failures_per_account: int = 5
    login_failures_per_address: int = 20
    login_delay: float = 1.0
    login_account_max_delay: float = 60.0
    login_address_max_delay: float = 900.0
    login_window: float = 3600.0
    hash_queue_per_address: int = 8
    hash_queue: int = 256
    max_tracked: int = 50_000
    registrations_per_address: int = 5
    registration_window: float = 3600.0
    registrations_per_second: float = 1.0
    registration_burst: int = 20


@dataclass(frozen=True)
class Storage:
    group_commit_max: int = 1024
    synchronous: str = "FULL"
    cursor_interval: float = 30.0
    probe_interval: float = 5.0


@dataclass(frozen=True)
class Store:
    """Where durable state lives: "sqlite:" (under data_dir) or "postgresql://user@host:port/db"."""

    url: str = "sqlite:"
    pool_size: int = 8
    timeout: float = 5.0


@dataclass(frozen=True)
class Bus:
    """What links the nodes: "local" (a node alone) or "redis://host:port/db"."""

    url: str = "local"
    prefix: str = "chatd"
    heartbeat: float = 2.0
    expiry: float = 10.0
    resync_interval: float = 300.0


@dataclass(frozen=True)
class Node:
    id: str = ""  # "": the host name
    workers: int = 1


@dataclass(frozen=True)
class Files:
    max_upload_bytes: int = 50 * 1024 * 1024
    quota_bytes: int = 1024 * 1024 * 1024
    chunk_bytes: int = 32768
    upload_timeout: float = 3600.0
    inline_max_bytes: int = 262144
    max_total_bytes: int = 10 * 1024 * 1024 * 1024


@dataclass(frozen=True)
class Http:
    """The HTTP listener: WebSocket at /ws, the REST API and the web page."""

    allowed_origins: tuple[str, ...] = (
        "http://127.0.0.1:*",
        "http://localhost:*",
        "https://127.0.0.1:*",
        "https://localhost:*",
    )
    same_origin: bool = True
    max_frame_bytes: int = 65536
    max_message_bytes: int = 65536
    open_handshake_timeout: float = 5.0
    auto_ping_interval: float = 25.0
    auto_ping_timeout: float = 10.0
    compression: bool = False
    max_body_bytes: int = 65536
    headers_timeout: float = 10.0
    body_timeout: float = 60.0


@dataclass(frozen=True)
class SocketIO:
    """Socket.IO at /socket.io/ on the HTTP listener (Engine.IO 4, Socket.IO 5)."""

    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_payload: int = 1_000_000
    max_sessions: int = 10_000
    max_sessions_per_address: int = 32
    polls_per_second: float = 20.0
    poll_burst: int = 40
    max_outgoing_bytes: int = 1 << 20
    connect_timeout: float = 45.0
    max_attachments: int = 10


@dataclass(frozen=True)
class IRC:
    """The IRC listeners: how the server names itself, and the message of the day."""

    server_name: str = "chatd"
    network: str = "chatd"
    motd: str = "Welcome to chatd: the rooms here are shared with every other kind of chatd client."


@dataclass(frozen=True)
class TLS:
    certificate: str = ""
    private_key: str = ""


@dataclass(frozen=True)
class Admin:
    authorized_keys: str = "/etc/chatd/admin_keys"
    manhole: bool = False


@dataclass(frozen=True)
class Log:
    format: str = "text"
    level: str = "info"


@dataclass(frozen=True)
class Config:
    data_dir: str = "var"
    line: tuple[str, ...] = ("tcp:7070:interface=127.0.0.1",)
    http: tuple[str, ...] = ("tcp:8080:interface=127.0.0.1",)
    admin: tuple[str, ...] = ("tcp:2222:interface=127.0.0.1",)
    irc: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    passwords: Passwords = field(default_factory=Passwords)
    throttle: Throttle = field(default_factory=Throttle)
    storage: Storage = field(default_factory=Storage)
    files: Files = field(default_factory=Files)
    http_options: Http = field(default_factory=Http)  # Config.http is the list of HTTP listeners
    socketio: SocketIO = field(default_factory=SocketIO)
    overload: Overload = field(default_factory=Overload)
    irc_options: IRC = field(default_factory=IRC)  # Config.irc is the list of IRC listeners
    tls: TLS = field(default_factory=TLS)
    admin_shell: Admin = field(default_factory=Admin)
    log: Log = field(default_factory=Log)
    store: Store = field(default_factory=Store)
    bus: Bus = field(default_factory=Bus)
    node: Node = field(default_factory=Node)

    @property
    def cluster(self) -> bool:
        """On PostgreSQL and Redis: a node that may have others beside it."""
        return self.store.url != "sqlite:" and self.bus.url != "local"


# TOML table -> (Config field, dataclass)
_SECTIONS = {
    "limits": ("limits", Limits),
    "passwords": ("passwords", Passwords),
    "throttle": ("throttle", Throttle),
    "storage": ("storage", Storage),
    "files": ("files", Files),
    "http": ("http_options", Http),
    "socketio": ("socketio", SocketIO),
    "overload": ("overload", Overload),
    "irc": ("irc_options", IRC),
    "tls": ("tls", TLS),
    "admin": ("admin_shell", Admin),
    "log": ("log", Log),
    "store": ("store", Store),
    "bus": ("bus", Bus),
    "node": ("node", Node),
}
_LISTENERS = ("line", "http", "admin", "irc")
_CHOICES = {
    "storage.synchronous": ("NORMAL", "FULL"),
    "log.format": ("text", "json"),
    "log.level": ("debug", "info", "warn", "error", "critical"),
}


def _coerce(key: str, value, default):
    """Check one value against the type of its default."""
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return tuple(value)
    if isinstance(default, bool) or isinstance(value, bool):
        if type(value) is not type(default):
            raise ConfigError(f"{key}: expected {type(default).__name__}, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int):
        value = float(value)
    if not isinstance(value, type(default)):
        raise ConfigError(f"{key}: expected {type(default).__name__}, got {value!r}")
    if isinstance(value, (int, float)) and value <= 0:
        raise ConfigError(f"{key}: must be positive, got {value!r}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(f"{key}: must be one of {', '.join(_CHOICES[key])}, got {value!r}")
    return value


def _section(name: str, cls, table) -> object:
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}]: expected a table")
    defaults = cls()
    values: dict[str, Any] = {}
    for key, value in table.items():
        if not hasattr(defaults, key):
            raise ConfigError(f"{name}.{key}: unknown key")
        values[key] = _coerce(f"{name}.{key}", value, getattr(defaults, key))
    result = dataclasses.replace(defaults, **values)
    if name == "tls" and bool(result.certificate) != bool(result.private_key):
        raise ConfigError("tls: certificate and private_key go together")
    check_urls(name, result)
    if name == "limits" and result.max_transfer_frame_bytes < result.max_line_bytes:
        raise ConfigError("limits.max_transfer_frame_bytes: must be at least max_line_bytes")
    if name == "irc":
        for key in ("server_name", "network"):
            if not re.fullmatch(r"[A-Za-z0-9._-]{1,63}", getattr(result, key)):
                raise ConfigError(f"irc.{key}: 1-63 of A-Z a-z 0-9 . _ -, got {getattr(result, key)!r}")
    return result


def check_urls(name: str, section) -> None:
    """[store] url and [bus] url name an engine chatd has."""
    if name == "store" and not (section.url == "sqlite:" or section.url.startswith(("postgresql://", "postgres://"))):
        raise ConfigError(f'store.url: "sqlite:" or "postgresql://user@host:port/db", got {section.url!r}')
    if name == "bus" and not (section.url == "local" or section.url.startswith("redis://")):
        raise ConfigError(f'bus.url: "local" or "redis://host:port/db", got {section.url!r}')
    if name == "bus" and not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", section.prefix):
        raise ConfigError(f"bus.prefix: 1-64 of A-Z a-z 0-9 _ . -, got {section.prefix!r}")
    if name == "node" and not re.fullmatch(r"[A-Za-z0-9_.\-]{0,64}", section.id):
        raise ConfigError(f"node.id: up to 64 of A-Z a-z 0-9 _ . -, got {section.id!r}")


def from_mapping(data: dict) -> Config:
    """Build a Config from a parsed TOML document."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in _SECTIONS:
            attribute, cls = _SECTIONS[key]
            values[attribute] = _section(key, cls, value)
        elif key == "listeners":
            if not isinstance(value, dict):
                raise ConfigError("[listeners]: expected a table")
            for name, endpoints in value.items():
                if name not in _LISTENERS:
                    raise ConfigError(f"listeners.{name}: unknown key")
                if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
                    raise ConfigError(f"listeners.{name}: expected a list of endpoint strings")
                values[name] = tuple(endpoints)
        elif key == "data_dir":
            if not isinstance(value, str) or not value:
                raise ConfigError("data_dir: expected a non-empty string")
            values[key] = value
        else:
            raise ConfigError(f"{key}: unknown key")
    return Config(**values)


def load(path: str) -> Config:
    """Read a TOML file into a Config."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    return from_mapping(data)


def replace(config: Config, **changes) -> Config:
    """A copy of `config` with top-level keys changed (command-line overrides).

    A key "section.key" (e.g. "log.format") changes one key of a section.
    """
    top = {k: v for k, v in changes.items() if "." not in k}
    for dotted, value in changes.items():
        if "." in dotted:
            section, key = dotted.split(".")
            attribute, _ = _SECTIONS[section]
            inner = top.get(attribute, getattr(config, attribute))
            top[attribute] = dataclasses.replace(inner, **{key: _coerce(dotted, value, getattr(inner, key))})
            check_urls(section, top[attribute])
    return dataclasses.replace(config, **top)


@dataclass(frozen=True)
class Source:
    """Where the configuration comes from: a file (or none) and the command-line overrides.

    `load()` reads it again, which is what a reload does.
    """

    path: str | None = None
    overrides: dict = field(default_factory=dict)

    def load(self) -> Config:
        base = load(self.path) if self.path else Config()
        return replace(base, **self.overrides)
