"""The mini-world tests read the session's one small world (``small_world`` in ``tests/conftest.py``) with its manifest."""

from __future__ import annotations

import json

import pytest

from detclip_bench.mini_world import MANIFEST_FILE


@pytest.fixture(scope="session")
def world(small_world):
    """(root, manifest) of the shared world (scale 0.1, seed 0); generated once for every test package."""
    return small_world, json.loads((small_world / MANIFEST_FILE).read_text())
