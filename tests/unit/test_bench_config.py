"""BENCH.toml, the config chatd-bench gives a daemon it spawns: chatd's own loader takes it, `--set` lines included."""

import argparse
import tomllib

import pytest

from chatdaemon.bench import cli, daemon
from chatdaemon.config import Config, from_mapping


def test_bench_toml_raises_only_the_limits_and_takes_settings():
    settings = [cli._setting('storage.synchronous="NORMAL"'), cli._setting("limits.rate_burst=5")]
    config = from_mapping(tomllib.loads(daemon.bench_toml((1, 8, 1), settings)))
    assert config.storage.synchronous == "NORMAL"
    assert config.limits.rate_burst == 5  # --set wins over the bench's own value
    assert config.limits.max_connections_per_ip == daemon.BENCH_LIMITS["max_connections_per_ip"]
    assert config.passwords.time_cost == 1
    assert config.storage.group_commit_max == Config().storage.group_commit_max  # the rest: the daemon's defaults


@pytest.mark.parametrize("bad", ["storage.synchronous=NORMAL", "synchronous=1", "storage.=1", "storage.x"])
def test_a_setting_that_is_not_section_key_toml_value_is_refused(bad):
    with pytest.raises(argparse.ArgumentTypeError):
        cli._setting(bad)
