"""Configuration: defaults, the TOML file, and the documented example staying in step with the code."""

import dataclasses
import pathlib
import tomllib

import pytest

from chatdaemon import config
from chatdaemon.config import Config, ConfigError

EXAMPLE = pathlib.Path(__file__).parents[2] / "etc" / "chatd.toml"


def test_the_example_file_documents_every_key_with_its_default():
    text = EXAMPLE.read_text()
    uncommented = "\n".join(line[2:] if line.startswith("# ") else line for line in text.splitlines())
    documented = tomllib.loads(uncommented)
    defaults = Config()
    for section in ("limits", "passwords", "storage", "files", "http"):
        table = getattr(defaults, config._FIELDS.get(section, section))
        expected = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(table).items()}
        assert documented[section] == expected, section
    assert documented["data_dir"] == defaults.data_dir
    assert tuple(documented["listeners"]["line"]) == defaults.line
    assert tuple(documented["listeners"]["http"]) == defaults.http
    # and the example as shipped (comments and all) loads
    assert config.load(str(EXAMPLE)) == config.from_mapping(tomllib.loads(text))


def test_values_override_defaults(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('data_dir = "/srv/chat"\n[listeners]\nline = ["tcp:9000"]\n[limits]\nidle_timeout = 30\n')
    loaded = config.load(str(path))
    assert loaded.data_dir == "/srv/chat" and loaded.line == ("tcp:9000",)
    assert loaded.limits.idle_timeout == 30.0 and loaded.limits.max_line_bytes == Config().limits.max_line_bytes


@pytest.mark.parametrize(
    "text, message",
    [
        ("[limits]\nmax_line_bytes = 0\n", "limits.max_line_bytes: must be positive"),
        ("[limits]\nmax_line_bytes = 'big'\n", "limits.max_line_bytes: expected int"),
        ("[limits]\nnope = 1\n", "limits.nope: unknown key"),
        ("colour = 'blue'\n", "colour: unknown key"),
        ("[listeners]\nline = 'tcp:1'\n", "listeners.line: expected a list"),
        ("[storage]\nsynchronous = 'OFF'\n", "storage.synchronous: must be NORMAL or FULL"),
        ("[limits\n", "c.toml"),
    ],
)
def test_bad_files_name_the_key_and_the_reason(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        config.load(str(path))


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="No such file"):
        config.load(str(tmp_path / "absent.toml"))
