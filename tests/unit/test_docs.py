"""The reference docs name everything the code implements: codes, typed frames, text commands."""

import pathlib
import re

from chatdaemon import errors
from chatdaemon.dialects.text import TextDialect
from chatdaemon.dialects.typed import TypedDialect

DOCS = pathlib.Path(__file__).parents[2] / "docs"


def test_errors_md_lists_exactly_the_codes_of_errors_py():
    rows = re.findall(r"^\| (\d{4}) \| ([A-Z_]+) \|", (DOCS / "errors.md").read_text(), re.MULTILINE)
    documented = {int(code): name for code, name in rows}
    defined = {value: name for name, value in vars(errors).items() if name.isupper() and isinstance(value, int)}
    assert documented == defined
    assert set(errors.MESSAGES) == set(defined)


def test_typed_md_documents_every_frame_the_dialect_handles():
    text = (DOCS / "protocols" / "typed.md").read_text()
    handled = [name[len("_on_"):] for name in dir(TypedDialect) if name.startswith("_on_")]
    assert handled
    missing = [kind for kind in handled if f"`{kind}`" not in text and f"### {kind}" not in text]
    assert not missing


def test_text_md_documents_every_command():
    text = (DOCS / "protocols" / "text.md").read_text()
    commands = [name[len("_cmd_"):] for name in dir(TextDialect) if name.startswith("_cmd_")]
    assert commands
    assert not [c for c in commands if f"/{c}" not in text]
