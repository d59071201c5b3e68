"""The benchmark's accounts: names, one shared password, and a session key per account.

`chatd-bench seed` writes the accounts into a stopped daemon's store (see
seedstore.py) and this file beside it, DATA_DIR/bench-accounts.json:

    {"prefix": "bench", "users": 10000, "password": "...", "secret": "..."}

Account i is named PREFIX + str(i). Its session key is derived from the secret
(HMAC-SHA256 of the name, URL-safe base64 without padding: 43 characters, the
shape of chatd's own keys), so a run can log every account in by key without
a file of 10,000 keys. The password is the same for every bench account; only
the L scenario uses it.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass

ACCOUNTS_FILE = "bench-accounts.json"


@dataclass(frozen=True)
class Accounts:
    prefix: str
    users: int
    password: str
    secret: str

    def name(self, i: int) -> str:
        return f"{self.prefix}{i}"

    def key(self, i: int) -> str:
        digest = hmac.new(self.secret.encode(), self.name(i).encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def save(self, path: str) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(asdict(self), f)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)


def new_accounts(prefix: str, users: int) -> Accounts:
    return Accounts(prefix, users, secrets.token_urlsafe(16), secrets.token_urlsafe(32))


def load(path: str) -> Accounts:
    with open(path) as f:
        data = json.load(f)
    return Accounts(str(data["prefix"]), int(data["users"]), str(data["password"]), str(data["secret"]))


def accounts_path(data_dir: str) -> str:
    return os.path.join(data_dir, ACCOUNTS_FILE)
