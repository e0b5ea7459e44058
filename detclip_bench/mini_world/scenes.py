"""Shared scene helpers for the writers: sampling concepts, rendering, saving, box conversion."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detclip_bench.mini_world.render import Difficulty, Domain, Look, encode_jpeg, render_scene
from detclip_bench.mini_world.vocabulary import ConceptSpec

__all__ = [
    "MAIN_DOMAIN",
    "PartOutput",
    "SceneObject",
    "coco_box",
    "look_of",
    "main_scene",
    "part_rng",
    "scaled",
    "write_jpeg",
]

MAIN_DOMAIN = Domain("tabletop", pattern="grain")

# Independent RNG streams per part, so changing one writer never shifts another part's images.
_PART_IDS = {"o365": 1, "goldg": 2, "cc": 3, "imagenet": 4, "lvis": 5, "odinw": 6}


def part_rng(seed: int, part: str, sub: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, _PART_IDS[part], sub])


def scaled(base: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(base * scale))


def look_of(spec: ConceptSpec) -> Look:
    return Look(spec.shape, spec.colour, spec.secondary, spec.texture)


@dataclass(frozen=True)
class SceneObject:
    concept: ConceptSpec
    box: tuple[int, int, int, int]  # xyxy, end exclusive


def _pick(rng: np.random.Generator, pool: list[ConceptSpec], n: int) -> list[ConceptSpec]:
    w = np.array([c.weight for c in pool], dtype=np.float64)
    idx = rng.choice(len(pool), size=n, p=w / w.sum())
    return [pool[i] for i in idx]


def main_scene(
    rng: np.random.Generator,
    pool: list[ConceptSpec],
    difficulty: Difficulty,
    size: tuple[int, int] | None = None,
    must_include: list[ConceptSpec] | None = None,
):
    """Render one scene of concepts drawn (weighted) from ``pool``; returns (image, objects)."""
    if size is None:
        w, h = (int(v) for v in rng.integers(16, 25, size=2) * 8)  # 128..192 px, multiples of 8
    else:
        w, h = size
    n = int(rng.integers(difficulty.min_objects, difficulty.max_objects + 1))
    chosen = list(must_include or []) + _pick(rng, pool, max(0, n - len(must_include or [])))
    img, placed = render_scene(rng, w, h, [look_of(c) for c in chosen], difficulty, MAIN_DOMAIN)
    return img, [SceneObject(chosen[p.index], p.box) for p in placed]


def write_jpeg(path: Path, img) -> bytes:
    """Plain (non-fsynced) write: thousands of small files; the manifest, written last and
    atomically, is what marks a mini world as complete."""
    data = encode_jpeg(img)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def coco_box(box: tuple[int, int, int, int]) -> tuple[list[float], float]:
    """xyxy (end exclusive) → COCO ``[x, y, w, h]`` and its area."""
    x0, y0, x1, y1 = box
    w, h = float(x1 - x0), float(y1 - y0)
    return [float(x0), float(y0), w, h], w * h


@dataclass
class PartOutput:
    """What a writer produced: manifest parts, counts, and (training parts only) box statistics."""

    parts: list[dict] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    train_images: int = 0
    boxed_images: Counter = field(default_factory=Counter)  # concept name -> training images with a box
    boxed_instances: Counter = field(default_factory=Counter)

    def add_part(self, name: str, fmt: str, path: str, **options) -> None:
        self.parts.append({"name": name, "format": fmt, "path": path, "options": options})

    def count_training_image(self, boxed_names: list[str]) -> None:
        """Record one training image given the concept name of each of its boxes."""
        self.train_images += 1
        self.boxed_instances.update(boxed_names)
        self.boxed_images.update(set(boxed_names))
