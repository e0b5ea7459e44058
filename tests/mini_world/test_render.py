from __future__ import annotations

import numpy as np
import pytest

from detclip_bench.mini_world.render import SHAPES, TEXTURES, Difficulty, Domain, Look, render_scene

PLAIN = Domain("plain", background=("#808080",), pattern="grain")
QUIET = Difficulty(clutter=0, colour_jitter=0)


@pytest.mark.parametrize("shape", SHAPES)
def test_box_is_the_tight_box_of_the_drawn_object(shape):
    rng = np.random.default_rng(3)
    img, placed = render_scene(
        rng, 128, 128, [Look(shape, "red", "red", "solid")], QUIET, PLAIN, size_ranges=[(40, 40)]
    )
    assert len(placed) == 1
    x0, y0, x1, y1 = placed[0].box
    px = np.asarray(img, dtype=np.int16)
    is_obj = np.abs(px - np.array([128, 128, 128])).max(axis=2) > 50
    ys, xs = np.nonzero(is_obj)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)


@pytest.mark.parametrize("texture", TEXTURES)
def test_textures_are_visible(texture):
    rng = np.random.default_rng(0)
    img, placed = render_scene(
        rng, 96, 96, [Look("square", "yellow", "black", texture)], QUIET, PLAIN, size_ranges=[(48, 48)]
    )
    x0, y0, x1, y1 = placed[0].box
    patch = np.asarray(img)[y0:y1, x0:x1].astype(float)
    dark = (patch.mean(axis=2) < 90).mean()
    assert (dark == 0) if texture == "solid" else (0.1 < dark < 0.9)


def test_occlusion_budget_is_respected():
    rng = np.random.default_rng(1)
    looks = [Look("square", "red", "red", "solid")] * 12
    _, placed = render_scene(rng, 96, 96, looks, Difficulty(max_occlusion=0.0, clutter=0), PLAIN)
    boxes = [p.box for p in placed]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    assert len(placed) < 12  # some did not fit: callers must use the returned list


def test_thermal_domain_changes_the_palette():
    rng = np.random.default_rng(2)
    img, _ = render_scene(rng, 64, 64, [], QUIET, Domain("t", background=("#808080",), thermal=True))
    r, g, b = np.asarray(img, dtype=float).reshape(-1, 3).mean(axis=0)
    assert r > g and r > b  # grey maps into the iron ramp, not to grey
