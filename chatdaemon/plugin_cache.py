"""Twisted's plugin caches, built at install time: `python -m chatdaemon.plugin_cache`.

twistd finds `chatd` by scanning each twisted/plugins directory on sys.path, and keeps what it
learnt in a `dropin.cache` beside the plugins. A cache that is missing, or not newer than every
plugin file of its directory, is written again at the next start; where it cannot be (a read-only
install, systemd's ProtectSystem=strict) twistd logs "Unable to write to plugin cache" at every
start. So the cache is built where the plugins are installed, by whoever installs them: `make venv`
runs this after pip, and a package build runs it after installing into its root.

It writes every directory's cache that is stale, then dates each cache after the newest plugin
file beside it (an install that sets every file's time alike, as reproducible package builds do,
would otherwise leave a cache exactly as old as its plugins, which twistd counts as stale).
Exit status 1, naming the directory, if a cache could not be written.
"""

import os
import sys

from twisted.plugin import IPlugin, getPlugins

import twisted.plugins

CACHE = "dropin.cache"


def _newest_plugin(directory: str) -> float:
    times = [os.stat(os.path.join(directory, name)).st_mtime for name in os.listdir(directory) if name.endswith(".py")]
    return max(times, default=0.0)


def directories() -> list[str]:
    """The twisted/plugins directories on sys.path that hold plugins."""
    found = dict.fromkeys(os.path.realpath(d) for d in twisted.plugins.__path__ if os.path.isdir(d))
    return [d for d in found if _newest_plugin(d)]


def stale(directory: str) -> bool:
    """Whether twistd would write this directory's cache again."""
    cache = os.path.join(directory, CACHE)
    return not os.path.exists(cache) or os.stat(cache).st_mtime <= _newest_plugin(directory)


def build() -> list[str]:
    """Write and date every plugin cache; the directories whose cache could not be made fresh."""
    list(getPlugins(IPlugin))  # writes each missing or stale cache (or logs why it cannot)
    failed = []
    for directory in directories():
        cache = os.path.join(directory, CACHE)
        newest = _newest_plugin(directory)
        try:
            if os.path.exists(cache) and os.stat(cache).st_mtime <= newest:
                os.utime(cache, (newest + 1, newest + 1))
        except OSError:
            pass
        if stale(directory):
            failed.append(directory)
    return failed


def main() -> int:
    failed = build()
    for directory in failed:
        print(
            f"chatd: could not write {os.path.join(directory, CACHE)}: run this as the owner of the install",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
