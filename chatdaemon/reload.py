"""SIGHUP (or `reload` in the admin shell): apply what can change while serving, say what cannot.

Live: [limits] (the core at once; the line transport for connections opened
from now on), [throttle] (at once), [http] (origins, sizes and timeouts of WebSocket connections
opened from now on), the [tls] files (new connections get the new
certificate) and the admin shell's authorized_keys. Everything else (listeners,
data_dir, storage, passwords, log, admin.manhole, irc) is only read at start: a
change is reported and waits for a restart. No connection is dropped.
"""

import dataclasses

from .config import Config, ConfigError
from .tls import TLSFileError

LIVE_SECTIONS = ("limits", "throttle", "http_options", "tls")
LIVE_KEYS = ("admin_shell.authorized_keys",)


def _flat(config: Config) -> dict:
    flat = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            flat.update({f"{f.name}.{k}": v for k, v in dataclasses.asdict(value).items()})
        else:
            flat[f.name] = value
    return flat


def _live(key: str) -> bool:
    return key.split(".")[0] in LIVE_SECTIONS or key in LIVE_KEYS


_IN_THE_FILE = {"line": "listeners.line", "http": "listeners.http", "admin": "listeners.admin", "irc": "listeners.irc"}


def _shown(key: str) -> str:
    """A key as the config file spells it."""
    return _IN_THE_FILE.get(key) or (
        key.replace("admin_shell.", "admin.", 1).replace("http_options.", "http.", 1).replace("irc_options.", "irc.", 1)
    )


def apply(service) -> list[str]:
    """Reload `service`'s configuration; what was done, one line each."""
    old, report = service.config, []
    try:
        new = service.source.load() if service.source is not None else old
    except ConfigError as e:
        report.append(f"config file not reloaded: {e}")
        new = old
    before = _flat(old)
    changed = [key for key, value in _flat(new).items() if before[key] != value]
    frozen = {f.name for f in dataclasses.fields(Config)} - set(LIVE_SECTIONS)
    effective = dataclasses.replace(new, **{name: getattr(old, name) for name in frozen})
    effective = dataclasses.replace(
        effective, admin_shell=dataclasses.replace(old.admin_shell, authorized_keys=new.admin_shell.authorized_keys)
    )
    if service.tls is not None:
        try:
            service.tls.load(new.tls.certificate, new.tls.private_key)
            report.append(f"TLS certificate read from {new.tls.certificate}")
        except TLSFileError as e:
            report.append(f"TLS certificate not reloaded, the current one stays: {e}")
            effective = dataclasses.replace(effective, tls=old.tls)
    if service.admin_factory is not None:
        path = new.admin_shell.authorized_keys
        try:
            report.append(f"admin keys: {service.admin_keys.load(path)} from {path}")
        except OSError as e:
            report.append(f"admin keys not reloaded, the current ones stay: {e.filename}: {e.strerror}")
            effective = dataclasses.replace(effective, admin_shell=old.admin_shell)
    service.use_limits(effective.limits)
    service.use_throttle(effective.throttle)
    service.ws_factory.configure(effective.http_options)
    service.site.headers_timeout = effective.http_options.headers_timeout
    service.site.body_timeout = effective.http_options.body_timeout
    service.config = effective
    for key in changed:
        if _live(key):
            report.append(f"{_shown(key)} changed")
        else:
            report.append(f"{_shown(key)} changed: takes effect at the next restart")
    return report
