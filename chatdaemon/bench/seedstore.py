"""Writing the bench accounts straight into a STOPPED daemon's store.

This is the one module of chatd-bench that uses chatd's own internals: the
store the config names (SQLite or PostgreSQL, through service.make_store; IStore: open, load,
create_user, add_session_key, user_for_key, close),
the password hasher (`Passwords`, at the daemon's configured argon2 cost) and
`key_hash` (what the store keeps of a session key). Everything else in
chatdaemon.bench speaks to the daemon over the network only. When the store's
interface changes, `seed_store` below is the place to adapt.

Why not register over the protocol: every registration hashes a password
(argon2, about 150 ms at the default cost), so 10,000 accounts would take half
an hour. Here ONE hash is made, at the daemon's own cost, and shared by every
bench account; each account gets its own session key (see accounts.py). The
daemon's defaults are not weakened: its config is only read.

The daemon must be stopped: a running daemon keeps its user list in memory
and would not see accounts added behind its back.
"""

import dataclasses
import time

from .accounts import Accounts


def seed_store(data_dir: str, config_path: str | None, accounts: Accounts, log=print) -> dict:
    """Create accounts 0..accounts.users-1 (skipping those that exist) with a session key each.

    Runs its own Twisted reactor (call it in a process of its own: a reactor runs once).
    Returns {"created": N, "keys_added": K, "existing": E, "hash_seconds": S, "seconds": T}.
    """
    from twisted.internet import defer, task

    from ..config import Config
    from ..config import load as load_config
    from ..core.accounts import Passwords, key_hash
    from ..service import make_store

    config = load_config(config_path) if config_path else Config()
    result: dict = {}

    async def run(reactor) -> None:
        started = time.monotonic()
        cost = config.passwords
        hashed = await Passwords(cost.time_cost, cost.memory_cost, cost.parallelism).hash(accounts.password)
        result["hash_seconds"] = round(time.monotonic() - started, 3)
        store, _files = make_store(dataclasses.replace(config, data_dir=data_dir), reactor)
        await store.open()
        try:
            snapshot = await store.load()
            now = int(time.time() * 1000)
            writes = []
            created = keys = existing = 0
            for i in range(accounts.users):
                name, hashed_key = accounts.name(i), key_hash(accounts.key(i))
                if name in snapshot.users:
                    existing += 1
                    if await store.user_for_key(hashed_key) is not None:
                        continue
                else:
                    writes.append(store.create_user(name, hashed, now))
                    created += 1
                writes.append(store.add_session_key(hashed_key, name, now))
                keys += 1
            await defer.gatherResults(writes, consumeErrors=True)
            result.update(created=created, keys_added=keys, existing=existing)
        finally:
            await store.close()
        result["seconds"] = round(time.monotonic() - started, 3)

    try:
        task.react(lambda reactor: defer.ensureDeferred(run(reactor)))
    except SystemExit as e:
        if e.code not in (0, None):
            raise RuntimeError(f"seeding {data_dir} failed (see the traceback above)") from None
    return result
