"""Fixtures shared across test packages."""

from __future__ import annotations

import pytest

from detclip_bench.mini_world import generate


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A small mini world (scale 0.1, seed 0), generated once per session for every test package (the
    mini-world tests see it through their ``world`` fixture); tests must not modify it."""
    root = tmp_path_factory.mktemp("small_world")
    generate(root, scale=0.1, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def fo_state(tmp_path_factory):
    """The project-local FiftyOne state for the whole session, shared by every package's tests (FiftyOne's
    config is process-wide and set before fiftyone is imported)."""
    from detclip_bench.analysis.fo_env import configure_fiftyone

    return configure_fiftyone(tmp_path_factory.mktemp("fiftyone"))
