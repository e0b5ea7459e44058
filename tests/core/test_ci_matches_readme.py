"""One documented way to run what CI runs (issue 27, point 14): ``.ci/run`` runs README's test command verbatim,
and that command's installer puts in place what the skipping tests name, or says what it could not."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.reality.artefacts import PINS

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / ".ci" / "install-test-artefacts"


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"Install and pass the tests.*?```bash\n(.+?)\n```", text, re.S)
    assert block, "README's 'Install and pass the tests' command block is gone"
    return block.group(1).strip()


def test_ci_runs_the_readme_test_command_verbatim():
    command = _readme_test_command()
    assert command.startswith("bash .ci/install-test-artefacts && ") and command.endswith("python3 -m pytest")
    assert command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_the_installer_pins_what_the_reality_tests_expect():
    assert " ".join(PINS.values()) in INSTALLER.read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("require", ["0", "1"])
def test_the_installer_names_what_it_cannot_install(tmp_path, require):
    """No apt-get and no chromium on PATH, pip stubbed: the gaps are named; fatal only where CI asks."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "id", "mktemp", "rm", "sudo"):
        if real := shutil.which(tool):
            (bin_dir / tool).symlink_to(real)
    log = tmp_path / "pip.log"
    (bin_dir / "python3").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (bin_dir / "python3").chmod(0o755)
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "DETCLIP_BENCH_REQUIRE_ARTEFACTS": require,
    }
    done = subprocess.run(
        [shutil.which("bash"), str(INSTALLER)], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == int(require), done.stderr
    assert "chromium (apt-get install chromium)" in done.stderr and "darknet's sample images" in done.stderr
    assert log.read_text().split() == ["-m", "pip", "install", "-q", "--no-deps", *PINS.values()]
