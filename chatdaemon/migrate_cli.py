"""chatd-migrate: copy a single node's data dir (SQLite and its files) into PostgreSQL, for a cluster.

    chatd-migrate --from sqlite:/var/lib/chatd --to postgresql://chatd@db:5432/chatd

Stop chatd first. The SQLite database is brought to this chatd's schema (with its usual backup),
the PostgreSQL database to the same version; then every table is copied as it is (ids, cursors and
password hashes included), the message id sequence set past the last id, and every file under
data_dir/files read into the database in chunks. It all happens in one PostgreSQL transaction:
the target gets everything or nothing, and a target that already holds data is refused. Before
committing, the rows of each table are counted on both sides and each file's SHA-256 checked
against its record; any difference aborts the copy.
"""

import argparse
import hashlib
import os
import sqlite3
import sys

from .store import migrate
from .store.postgres import FILE_CHUNK, safe_url
from .store.sqlite import DB_FILE

# parents before children (foreign keys)
TABLES = ("users", "session_keys", "rooms", "members", "invites", "messages", "message_changes", "reactions",
          "read_marks", "inbox", "friends", "friend_requests", "blocks", "files", "metadata", "feedback",
          "sent_ids")  # fmt: skip
IDENTITIES = ("inbox", "feedback")


class MigrationError(Exception):
    pass


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def copy(data_dir: str, url: str, out=sys.stdout) -> dict[str, int]:
    """Copy `data_dir` into the PostgreSQL database at `url`; the rows copied per table (and "file bytes")."""
    import psycopg

    path = os.path.join(data_dir, DB_FILE)
    if not os.path.exists(path):
        raise MigrationError(f"no {DB_FILE} in {data_dir}")
    source = sqlite3.connect(path, isolation_level=None)
    migrate.upgrade(source, path)
    with psycopg.connect(url) as target:
        migrate.upgrade_postgres(target, safe_url(url))
        with target.cursor() as cursor:
            held = [t for t in TABLES if cursor.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]
            if held or cursor.execute("SELECT 1 FROM file_chunks LIMIT 1").fetchone():
                raise MigrationError(f"{safe_url(url)} already holds data ({', '.join(held) or 'files'}): not touched")
            copied = {}
            for table in TABLES:
                columns = _columns(source, table)
                names = ", ".join(f'"{c}"' for c in columns)
                n = 0
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as pipe:
                    for row in source.execute(f"SELECT {names} FROM {table}"):
                        pipe.write_row(row)
                        n += 1
                copied[table] = n
                print(f"{table}: {n} rows", file=out)
            for table in IDENTITIES:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce(max(id), 0) + 1, false) FROM {table}"
                )
            cursor.execute("SELECT setval('message_ids', coalesce(max(id), 0) + 1, false) FROM messages")
            copied["file bytes"] = _copy_files(source, cursor, os.path.join(data_dir, "files"), out)
            for table in TABLES:
                (there,) = cursor.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
                if there != copied[table]:
                    raise MigrationError(f"{table}: {copied[table]} rows in SQLite, {there} in PostgreSQL")
        target.commit()
    print(f"copied {data_dir} to {safe_url(url)}: verified", file=out)
    return copied


def _copy_files(source: sqlite3.Connection, cursor, folder: str, out) -> int:
    total = 0
    for file_id, size, sha256 in source.execute("SELECT id, size, sha256 FROM files ORDER BY id"):
        digest, seq, length = hashlib.sha256(), 0, 0
        try:
            handle = open(os.path.join(folder, file_id), "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise MigrationError(f"file {file_id} is recorded but not in {folder}") from None
        with handle:
            while True:
                data = handle.read(FILE_CHUNK)
                if not data and seq:
                    break
                digest.update(data)
                length += len(data)
                cursor.execute("INSERT INTO file_chunks (file_id, seq, data) VALUES (%s, %s, %s)", (file_id, seq, data))
                seq += 1
                if len(data) < FILE_CHUNK:
                    break
        if length != size or digest.hexdigest() != sha256:
            raise MigrationError(f"file {file_id}: {length} bytes on disk, recorded {size}, or its SHA-256 differs")
        total += length
    print(f"files: {total} bytes", file=out)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatd-migrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", required=True, help="sqlite:DATA_DIR (chatd's --data-dir)")
    parser.add_argument("--to", dest="target", required=True, help="postgresql://user@host:port/db")
    args = parser.parse_args(argv)
    if not args.source.startswith("sqlite:") or not args.target.startswith(("postgresql://", "postgres://")):
        parser.error("--from sqlite:DATA_DIR --to postgresql://user@host:port/db")
    try:
        copy(args.source.removeprefix("sqlite:") or ".", args.target)
    except MigrationError as e:
        print(f"chatd-migrate: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # a connection refused, a bad URL...
        print(f"chatd-migrate: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
