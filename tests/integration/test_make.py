"""The Makefile's set-up steps, run by `make` itself with stand-ins for the system's tools."""

import os
import shutil
import subprocess

import pytest

from tests.conftest import need

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("uid, said", [("0", "installing chromium openssh-client nodejs npm irssi tmux for the tests"),
                                       ("1000", "missing chromium openssh-client nodejs npm irssi tmux, and no apt-get as root")])  # fmt: skip
def test_system_deps_names_what_it_installs_word_by_word(tmp_path, uid, said):
    make = shutil.which("make")
    need("" if make else "make is not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apt-get.calls"
    for name, body in (("id", f"echo {uid}"), ("apt-get", f'echo "$@" >> {calls}')):
        tool = bin_dir / name
        tool.write_text(f"#!/bin/sh\n{body}\n")
        tool.chmod(0o755)
    if uid != "0":
        (bin_dir / "apt-get").unlink()
    result = subprocess.run(
        [make, "-s", "-C", ROOT, "system-deps", f"CHROMIUM={tmp_path}/no-chromium"],
        capture_output=True, text=True, timeout=60, env={"PATH": str(bin_dir), "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"make: {said}"), result.stdout
    if uid == "0":
        assert calls.read_text().splitlines() == [
            "update -q",
            "install -y -q chromium openssh-client nodejs npm irssi tmux",
        ]
