"""docs/operations.md's configuration reference is generated from etc/chatd.toml, so the two cannot drift.

After editing etc/chatd.toml, regenerate it with `.venv/bin/python -m tests.unit.test_operations_doc`.
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).parents[2]
EXAMPLE = ROOT / "etc" / "chatd.toml"
OPERATIONS = ROOT / "docs" / "operations.md"
BEGIN = "<!-- config reference: generated from etc/chatd.toml by tests/unit/test_operations_doc.py -->"
END = "<!-- end of the config reference -->"


def reference(toml: str) -> str:
    """Markdown for every key of the example file: a table per section, with its default and meaning."""
    out, comments, section_started = [], [], False

    def intro(lines: list[str]) -> None:
        prose = [line for line in lines if not line.startswith("  ")]
        examples = [line.strip() for line in lines if line.startswith("  ")]
        if prose:
            out.extend([" ".join(prose), ""])
        if examples:
            out.extend(["```", *examples, "```", ""])

    def table_head() -> None:
        out.extend(["| key | default | meaning |", "|---|---|---|"])

    section = ""
    out.extend(["#### Top level", ""])
    for line in toml.splitlines():
        if not line.strip():
            comments = []
        elif match := re.fullmatch(r"\[(\w+)\]", line):
            section, comments, section_started = match.group(1), [], False
            out.extend(["", f"#### `[{section}]`", ""])
        elif line.startswith("##"):
            comments.append(line[3:])
        elif match := re.fullmatch(r"# (\w+) = (.+)", line):
            if "" in comments:  # a section's introduction, then the key's own explanation
                cut = len(comments) - comments[::-1].index("")
                intro(comments[: cut - 1])
                comments = comments[cut:]
            if not section_started:
                table_head()
                section_started = True
            key, default = match.groups()
            meaning = " ".join(comments).replace("|", "\\|")
            out.append(f"| `{key}` | `{default}` | {meaning} |")
            comments = []
    return "\n".join(out).strip() + "\n"


def generated(document: str) -> str:
    """The document with its reference section rebuilt from etc/chatd.toml."""
    start, end = document.index(BEGIN) + len(BEGIN), document.index(END)
    return document[:start] + "\n\n" + reference(EXAMPLE.read_text()) + "\n" + document[end:]


def test_the_config_reference_in_operations_md_is_generated_from_etc_chatd_toml():
    document = OPERATIONS.read_text()
    assert document == generated(document), "run `.venv/bin/python -m tests.unit.test_operations_doc`"


def test_the_reference_names_every_key():
    text = reference(EXAMPLE.read_text())
    for line in EXAMPLE.read_text().splitlines():
        if match := re.fullmatch(r"# (\w+) = .+", line):
            assert f"| `{match.group(1)}` |" in text


if __name__ == "__main__":
    OPERATIONS.write_text(generated(OPERATIONS.read_text()))
