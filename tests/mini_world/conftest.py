"""One small mini world per test session (scale 0.1 ≈ 1–2 s on 2 cores), shared read-only."""

from __future__ import annotations

import pytest

from detclip_bench.mini_world import generate

SCALE = 0.1


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("mini_world")
    manifest = generate(root, scale=SCALE, seed=0, progress=False)
    return root, manifest
