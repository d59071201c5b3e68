"""docs/security.md names the tests that prove its claims: each one it names exists."""

import pathlib
import re

ROOT = pathlib.Path(__file__).parents[2]


def test_every_test_security_md_names_exists():
    text = (ROOT / "docs" / "security.md").read_text()
    named = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", text)
    assert len(named) > 20
    for path, name in named:
        source = (ROOT / path).read_text()
        assert not name or f"def {name}(" in source, f"{path}::{name}"


def test_every_key_security_md_names_is_a_key_of_the_example_config():
    text = (ROOT / "docs" / "security.md").read_text()
    example = (ROOT / "etc" / "chatd.toml").read_text()
    sections = dict(re.findall(r"^\[(\w+)\]\n((?:.*\n)*?)(?=^\[|\Z)", example, re.MULTILINE))
    for section, key in re.findall(r"`(limits|throttle|passwords|storage|files|http|socketio|overload)\.(\w+)`", text):
        assert f"# {key} = " in sections[section], f"{section}.{key}"
