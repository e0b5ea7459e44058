"""GoldG-like grounding set in MDETR's annotation format.

* ``goldg/mdetr_annotations/final_mixed_train_no_coco.json``: GQA-style entries (``data_source``
  "vg"), images ``goldg/gqa/images/<vg_id>.jpg``; one physical image backs 1–2 entries with
  different captions, and a box may carry several spans (the object is referred to twice).
* ``goldg/mdetr_annotations/final_flickr_separateGT_train.json``: one entry per (image, sentence),
  ``sentence_id``/``original_img_id``/``tokens_positive_eval``, images ``goldg/flickr30k_images/``.

Scenes mix detection- and grounding-group concepts; only the *mentioned* ones are boxed, which is
what makes grounding-only concepts "boxed only in grounding data".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detclip_bench.io import atomic_write_json
from detclip_bench.mini_world.phrases import distinct_concepts, flickr_sentence, gqa_caption
from detclip_bench.mini_world.render import Difficulty
from detclip_bench.mini_world.scenes import PartOutput, coco_box, main_scene, part_rng, scaled, write_jpeg
from detclip_bench.mini_world.vocabulary import ConceptSpec, concepts_in

__all__ = ["write_goldg"]

BASE_GQA_IMAGES, BASE_FLICKR_IMAGES = 130, 40
_VG_FIRST_ID, _FLICKR_FIRST_ID = 2_340_000, 1_000_092_795


def _pool() -> list[ConceptSpec]:
    """Grounding-only concepts are drawn twice as often as detection ones here."""
    from dataclasses import replace

    return [
        replace(c, weight=c.weight * (2.0 if c.group == "grounding" else 1.0))
        for c in (*concepts_in("detection"), *concepts_in("grounding"))
    ]


def _mention(rng: np.random.Generator, names: list[str], groups: dict[str, str], force: str | None) -> list[str]:
    """A random non-empty subset, always including a grounding-only concept when one is present
    (``force`` first, if given)."""
    k = int(rng.integers(1, len(names) + 1))
    chosen = [names[i] for i in sorted(rng.choice(len(names), size=k, replace=False))]
    grounding = [n for n in names if groups[n] == "grounding"]
    if force is not None and force not in chosen:
        chosen[0] = force
    elif grounding and not any(groups[n] == "grounding" for n in chosen):
        chosen[0] = grounding[int(rng.integers(len(grounding)))]
    return list(dict.fromkeys(chosen))


def _seeded_scene(rng, pool: list[ConceptSpec], i: int, difficulty: Difficulty):
    """Image ``i < #grounding concepts`` is guaranteed to show grounding concept ``i``, so every
    grounding-only concept is boxed at least once at any scale."""
    grounding = [c for c in pool if c.group == "grounding"]
    force = grounding[i] if i < len(grounding) else None
    img, objects = main_scene(rng, pool, difficulty, must_include=[force] if force else None)
    return img, objects, (force.name if force else None)


def _box_ann(ann_id: int, image_id: int, box, spans) -> dict:
    bbox, area = coco_box(box)
    return {
        "area": area,
        "iscrowd": 0,
        "image_id": image_id,
        "category_id": 1,
        "id": ann_id,
        "bbox": bbox,
        "tokens_positive": [list(s) for s in spans],
    }


def _write_mixed(root: Path, n_images: int, rng, difficulty: Difficulty, out: PartOutput) -> None:
    pool = _pool()
    groups = {c.name: c.group for c in pool}
    images, anns = [], []
    for i in range(n_images):
        vg_id = _VG_FIRST_ID + i
        img, objects, force = _seeded_scene(rng, pool, i, difficulty)
        write_jpeg(root / "gqa" / "images" / f"{vg_id}.jpg", img)
        boxed: set[int] = set()
        for _ in range(int(rng.integers(1, 3))):
            mention = _mention(rng, distinct_concepts(objects), groups, force)
            caption, spans = gqa_caption(rng, objects, mention, min(img.size))
            entry_id = len(images)
            images.append(
                {
                    "file_name": f"{vg_id}.jpg",
                    "height": img.height,
                    "width": img.width,
                    "id": entry_id,
                    "original_id": vg_id,
                    "caption": caption,
                    "dataset_name": "mixed",
                    "tokens_negative": [],
                    "data_source": "vg",
                }
            )
            for k, o in enumerate(objects):
                if o.concept.name in spans:
                    anns.append(_box_ann(len(anns), entry_id, o.box, spans[o.concept.name]))
                    boxed.add(k)
        out.count_training_image([objects[k].concept.name for k in sorted(boxed)])
    doc = {"info": [], "licenses": [], "images": images, "annotations": anns, "categories": []}
    atomic_write_json(root / "mdetr_annotations" / "final_mixed_train_no_coco.json", doc, indent=None)
    out.counts.update(goldg_mixed_images=n_images, goldg_mixed_entries=len(images), goldg_mixed_boxes=len(anns))
    out.add_part(
        "goldg-mixed", "mdetr", "goldg/mdetr_annotations/final_mixed_train_no_coco.json", vg_root="goldg/gqa/images"
    )


def _write_flickr(root: Path, n_images: int, rng, difficulty: Difficulty, out: PartOutput) -> None:
    pool = _pool()
    groups = {c.name: c.group for c in pool}
    images, anns = [], []
    for i in range(n_images):
        flickr_id = _FLICKR_FIRST_ID + 7 * i
        img, objects, force = _seeded_scene(rng, pool, i, difficulty)
        write_jpeg(root / "flickr30k_images" / f"{flickr_id}.jpg", img)
        boxed: set[int] = set()
        for sentence_id in range(int(rng.integers(2, 4))):
            mention = _mention(rng, distinct_concepts(objects), groups, force)
            caption, phrases = flickr_sentence(rng, objects, mention, min(img.size))
            entry_id = len(images)
            images.append(
                {
                    "file_name": f"{flickr_id}.jpg",
                    "height": img.height,
                    "width": img.width,
                    "id": entry_id,
                    "caption": caption,
                    "dataset_name": "flickr",
                    "tokens_negative": [[0, len(caption)]],
                    "sentence_id": sentence_id,
                    "original_img_id": flickr_id,
                    "tokens_positive_eval": [[list(s)] for _, s in phrases],
                }
            )
            span_of = dict(phrases)
            for k, o in enumerate(objects):
                if o.concept.name in span_of:
                    anns.append(_box_ann(len(anns), entry_id, o.box, [span_of[o.concept.name]]))
                    boxed.add(k)
        out.count_training_image([objects[k].concept.name for k in sorted(boxed)])
    doc = {
        "info": [],
        "licenses": [],
        "images": images,
        "annotations": anns,
        "categories": [{"supercategory": "object", "id": 1, "name": "object"}],
    }
    atomic_write_json(root / "mdetr_annotations" / "final_flickr_separateGT_train.json", doc, indent=None)
    out.counts.update(goldg_flickr_images=n_images, goldg_flickr_entries=len(images), goldg_flickr_boxes=len(anns))
    out.add_part(
        "goldg-flickr",
        "mdetr",
        "goldg/mdetr_annotations/final_flickr_separateGT_train.json",
        image_root="goldg/flickr30k_images",
    )


def write_goldg(out_dir: Path, seed: int, scale: float, difficulty: Difficulty) -> PartOutput:
    out = PartOutput()
    root = out_dir / "goldg"
    _write_mixed(root, scaled(BASE_GQA_IMAGES, scale, minimum=2), part_rng(seed, "goldg", 0), difficulty, out)
    _write_flickr(root, scaled(BASE_FLICKR_IMAGES, scale, minimum=2), part_rng(seed, "goldg", 1), difficulty, out)
    return out
