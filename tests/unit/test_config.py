"""Configuration: defaults, the TOML file, and the documented example staying in step with the code."""

import dataclasses
import pathlib
import tomllib

import pytest

from chatdaemon import config
from chatdaemon.config import Config, ConfigError

EXAMPLE = pathlib.Path(__file__).parents[2] / "etc" / "chatd.toml"


def _documented() -> dict:
    """etc/chatd.toml with every "# key = default" line uncommented ("## " lines stay comments)."""
    text = EXAMPLE.read_text()
    return tomllib.loads("\n".join(line[2:] if line.startswith("# ") else line for line in text.splitlines()))


def test_the_example_file_documents_every_key_with_its_default():
    documented = _documented()
    defaults = Config()
    for section, (attribute, _) in config._SECTIONS.items():
        expected = {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(getattr(defaults, attribute)).items()
        }
        assert documented[section] == expected, section
    assert documented["data_dir"] == defaults.data_dir
    assert {name: tuple(v) for name, v in documented["listeners"].items()} == {
        name: getattr(defaults, name) for name in config._LISTENERS
    }
    assert set(documented) == {*config._SECTIONS, "listeners", "data_dir"}
    # the documented defaults, loaded as a file, are the defaults
    assert config.from_mapping(documented) == defaults
    # and the example as shipped (comments and all) loads
    assert config.load(str(EXAMPLE)) == config.from_mapping(tomllib.loads(EXAMPLE.read_text()))


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
        ("[storage]\nsynchronous = 'OFF'\n", "storage.synchronous: must be one of NORMAL, FULL"),
        ("[log]\nformat = 'xml'\n", "log.format: must be one of text, json"),
        ("[log]\nlevel = 'loud'\n", "log.level: must be one of debug"),
        ("[admin]\nmanhole = 'yes'\n", "admin.manhole: expected bool"),
        ("[http]\nallowed_origins = 'https://a.example'\n", "http.allowed_origins: expected a list of strings"),
        ("[tls]\ncertificate = '/etc/cert.pem'\n", "tls: certificate and private_key go together"),
        ("[limits]\nmax_connections_per_ip = 0\n", "limits.max_connections_per_ip: must be positive"),
        ("[limits]\nmax_transfer_frame_bytes = 1000\n", "limits.max_transfer_frame_bytes: must be at least"),
        ("[listeners]\nwebsocket = []\n", "listeners.websocket: unknown key"),
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


def test_command_line_overrides_win_over_the_file_and_survive_a_reload(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('data_dir = "/srv/chat"\n[log]\nformat = "text"\n[limits]\nidle_timeout = 30\n')
    source = config.Source(str(path), {"data_dir": "/tmp/x", "log.format": "json", "line": ("tcp:1",)})
    loaded = source.load()
    assert (loaded.data_dir, loaded.log.format, loaded.line) == ("/tmp/x", "json", ("tcp:1",))
    path.write_text("[limits]\nidle_timeout = 40\n")
    assert source.load().limits.idle_timeout == 40.0 and source.load().log.format == "json"


def test_a_bad_override_names_its_key():
    with pytest.raises(ConfigError, match=r"log\.format: must be one of"):
        config.Source(None, {"log.format": "yaml"}).load()
