"""Schema versions: schema/vN.sql files applied in order, each in one transaction.

The version lives in the one-row table `schema_version`. Before upgrading an
existing database the file is copied to `<db>.v<old>.bak` with SQLite's online
backup, so a failed upgrade can be rolled back by hand.
"""

import re
import sqlite3
from importlib import resources

from twisted.logger import Logger

log = Logger()


def migrations() -> dict[int, str]:
    """Every shipped migration, by the version it brings the schema to."""
    found = {}
    for entry in resources.files("chatdaemon.store").joinpath("schema").iterdir():
        match = re.fullmatch(r"v(\d+)\.sql", entry.name)
        if match:
            found[int(match.group(1))] = entry.read_text(encoding="utf-8")
    return found


LATEST = max(migrations())


def current_version(conn: sqlite3.Connection) -> int:
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if not has_table:
        return 0
    return conn.execute("SELECT version FROM schema_version").fetchone()[0]


def upgrade(conn: sqlite3.Connection, path: str) -> int:
    """Bring the database to LATEST; returns the version it had before."""
    before = current_version(conn)
    if before > LATEST:
        raise RuntimeError(f"{path} has schema v{before}, newer than this chatd (v{LATEST})")
    if 0 < before < LATEST:
        backup = f"{path}.v{before}.bak"
        with sqlite3.connect(backup) as target:
            conn.backup(target)
        log.info("backed up schema v{before} to {backup}", before=before, backup=backup)
    for version, script in sorted(migrations().items()):
        if version <= before:
            continue
        bump = (
            "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);"
            if version == 1
            else f"UPDATE schema_version SET version = {version};"
        )
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{script}\n{bump}\nCOMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        log.info("database schema upgraded to v{version}", version=version)
    return before
