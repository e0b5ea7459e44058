"""IN1k-like class folders for the caption-only concepts.

``imagenet/train/<wnid>/<wnid>_<n>.JPEG`` plus ``imagenet/LOC_synset_mapping.txt`` (Kaggle style:
``"<wnid> name, synonym"`` lines in sorted-wnid order = class index). The wnids are fake but
well-formed (``n9`` + 7 digits, outside WordNet's real noun range).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from detclip_bench.io import atomic_write_text
from detclip_bench.mini_world.render import Difficulty, Domain, render_scene
from detclip_bench.mini_world.scenes import PartOutput, look_of, part_rng, scaled, write_jpeg
from detclip_bench.mini_world.vocabulary import CONCEPTS, concepts_in

__all__ = ["BASE_IMAGES_PER_CLASS", "wnid_of", "write_imagenet"]

BASE_IMAGES_PER_CLASS = 15
_DOMAIN = Domain("photo", background=("#e8e4dc", "#c9d3dd", "#d6dccb", "#efe0d2"), pattern="planks")


def wnid_of(index: int) -> str:
    return f"n9{1_000_003 + 7_919 * index:07d}"


def write_imagenet(out_dir: Path, seed: int, scale: float, difficulty: Difficulty) -> PartOutput:
    """One large instance of the class per image; sometimes a small non-overlapping distractor."""
    out = PartOutput()
    root = out_dir / "imagenet"
    classes = list(concepts_in("caption"))
    distractors = [c for c in CONCEPTS if c.group != "caption"]
    rng = part_rng(seed, "imagenet")
    per_class = scaled(BASE_IMAGES_PER_CLASS, scale, minimum=2)
    wnids = {c.name: wnid_of(i) for i, c in enumerate(classes)}
    big = replace(difficulty, max_occlusion=0.0)
    for c in classes:
        for n in range(1, per_class + 1):
            looks = [look_of(c)]
            if rng.random() < 0.3:
                looks.append(look_of(distractors[int(rng.integers(len(distractors)))]))
            sizes = [(48, 88), (16, 24)][: len(looks)]
            img, _ = render_scene(rng, 128, 128, looks, big, _DOMAIN, size_ranges=sizes)
            write_jpeg(root / "train" / wnids[c.name] / f"{wnids[c.name]}_{n}.JPEG", img)
    lines = [
        f"{wnids[c.name]} {', '.join([c.name, *c.synonyms])}\n" for c in sorted(classes, key=lambda c: wnids[c.name])
    ]
    atomic_write_text(root / "LOC_synset_mapping.txt", "".join(lines))
    out.counts.update(imagenet_classes=len(classes), imagenet_images=len(classes) * per_class)
    out.add_part(
        "imagenet-train", "imagenet-folder", "imagenet", split="train", synset_mapping="imagenet/LOC_synset_mapping.txt"
    )
    return out
