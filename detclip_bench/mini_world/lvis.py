"""LVIS-like federated eval set in the LVIS v1 format, covering every concept group.

``lvis/lvis_v1_train.json`` (fine-tuning), ``lvis/lvis_v1_val.json`` (no ``file_name``; ``coco_url`` under val2017 *or* train2017, as real
LVIS val draws from both) and ``lvis/lvis_v1_minival.json`` (MDETR's rule: the val images not in
COCO train, i.e. the val2017 ones). Images live at ``coco/{val2017,train2017}/<12-digit id>.jpg``.

Category ``frequency`` / ``image_count`` / ``instance_count`` come from the *training* files just
written (O365 train + GoldG), see :func:`~detclip_bench.mini_world.vocabulary.frequency_of`.
``not_exhaustive_category_ids`` marks images where one drawn instance was left unannotated;
``neg_category_ids`` lists categories verified absent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

from detclip_bench.io import atomic_write_json
from detclip_bench.mini_world.render import Difficulty
from detclip_bench.mini_world.scenes import PartOutput, coco_box, main_scene, part_rng, scaled, write_jpeg
from detclip_bench.mini_world.vocabulary import CONCEPTS, FrequencyRule, frequency_of

__all__ = ["lvis_name", "write_lvis"]

BASE_VAL_IMAGES = 200
BASE_TRAIN_IMAGES = 240
_NOT_EXHAUSTIVE_RATE = 0.1


def lvis_name(name: str) -> str:
    return name.replace(" ", "_")


def _categories(train: PartOutput, rule: FrequencyRule) -> list[dict]:
    cats = []
    for i, c in enumerate(sorted(CONCEPTS, key=lambda c: lvis_name(c.name)), start=1):
        n_img = train.boxed_images[c.name]
        cats.append(
            {
                "id": i,
                "name": lvis_name(c.name),
                "synset": f"{lvis_name(c.name)}.n.01",
                "synonyms": [lvis_name(c.name)] + [lvis_name(s) for s in c.synonyms],
                "def": c.definition,
                "frequency": frequency_of(n_img, train.train_images, rule),
                "image_count": n_img,
                "instance_count": train.boxed_instances[c.name],
            }
        )
    return cats


def _federated_split(
    out_dir: Path, rng, coco_ids: list[int], splits: list[str], difficulty: Difficulty, cat_id: dict[str, int]
) -> tuple[list[dict], list[dict]]:
    """Render one image per id and annotate it with LVIS's federated fields (pos / neg / not exhaustive)."""
    pool = [replace(c, weight=1.0) for c in CONCEPTS]  # every concept equally often
    images, anns = [], []
    for image_id, split in zip(coco_ids, splits, strict=True):
        img, objects = main_scene(rng, pool, difficulty)
        write_jpeg(out_dir / "coco" / split / f"{image_id:012d}.jpg", img)
        present = Counter(cat_id[o.concept.name] for o in objects)
        not_exhaustive: list[int] = []
        multi = sorted(c for c, m in present.items() if m >= 2)
        skip_index = -1
        if multi and rng.random() < _NOT_EXHAUSTIVE_RATE:
            skipped_cat = multi[int(rng.integers(len(multi)))]
            not_exhaustive = [skipped_cat]
            skip_index = max(i for i, o in enumerate(objects) if cat_id[o.concept.name] == skipped_cat)
        absent = sorted(set(cat_id.values()) - set(present))
        neg = sorted(int(v) for v in rng.choice(absent, size=min(len(absent), int(rng.integers(2, 7))), replace=False))
        images.append(
            {
                "date_captured": "2013-11-14 16:28:13",
                "neg_category_ids": neg,
                "id": image_id,
                "license": int(rng.integers(1, 7)),
                "height": img.height,
                "width": img.width,
                "flickr_url": f"http://farm{int(rng.integers(1, 10))}.staticflickr.com/mini/{image_id}.jpg",
                "coco_url": f"http://images.cocodataset.org/{split}/{image_id:012d}.jpg",
                "not_exhaustive_category_ids": not_exhaustive,
            }
        )
        for i, o in enumerate(objects):
            if i == skip_index:
                continue
            bbox, area = coco_box(o.box)
            x, y, w, h = bbox
            anns.append(
                {
                    "area": area,
                    "id": len(anns) + 1,
                    "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                    "image_id": image_id,
                    "bbox": bbox,
                    "category_id": cat_id[o.concept.name],
                }
            )
    return images, anns


def write_lvis(
    out_dir: Path,
    seed: int,
    scale: float,
    difficulty: Difficulty,
    train: PartOutput,
    rule: FrequencyRule = FrequencyRule(),
) -> PartOutput:
    """``train`` carries the box statistics of the training parts (for r/c/f).

    Writes val, minival and an LVIS-like *train* split (fine-tuning, appendix Table 2/6), whose
    images are all under ``train2017`` with ids disjoint from val's.
    """
    out = PartOutput()
    rng = part_rng(seed, "lvis")
    categories = _categories(train, rule)
    cat_id = {
        c.name: cat["id"] for c, cat in zip(sorted(CONCEPTS, key=lambda c: lvis_name(c.name)), categories, strict=True)
    }
    n = scaled(BASE_VAL_IMAGES, scale, minimum=4)
    coco_ids = sorted(int(v) for v in rng.choice(581_000, size=n, replace=False) + 1)
    splits = ["val2017" if k % 2 == 0 else "train2017" for k in range(n)]
    images, anns = _federated_split(out_dir, rng, coco_ids, splits, difficulty, cat_id)
    info = {"description": "detclip-bench mini world LVIS-like eval", "version": "1.0", "year": 2026}
    licenses = [{"id": i, "name": f"license {i}", "url": ""} for i in range(1, 7)]
    doc = {"info": info, "annotations": anns, "images": images, "licenses": licenses, "categories": categories}
    atomic_write_json(out_dir / "lvis" / "lvis_v1_val.json", doc, indent=None)
    mini_ids = {im["id"] for im in images if "/val2017/" in im["coco_url"]}
    mini = {
        **doc,
        "images": [im for im in images if im["id"] in mini_ids],
        "annotations": [a for a in anns if a["image_id"] in mini_ids],
    }
    atomic_write_json(out_dir / "lvis" / "lvis_v1_minival.json", mini, indent=None)

    train_rng = part_rng(seed, "lvis", sub=1)
    n_train = scaled(BASE_TRAIN_IMAGES, scale, minimum=4)
    taken = set(coco_ids)
    free = [int(v) + 1 for v in train_rng.choice(581_000, size=n_train + len(taken), replace=False)]
    train_ids = sorted(i for i in free if i not in taken)[:n_train]
    train_images, train_anns = _federated_split(
        out_dir, train_rng, train_ids, ["train2017"] * len(train_ids), difficulty, cat_id
    )
    train_doc = {
        **doc,
        "info": {**info, "description": "detclip-bench mini world LVIS-like train"},
        "images": train_images,
        "annotations": train_anns,
    }
    atomic_write_json(out_dir / "lvis" / "lvis_v1_train.json", train_doc, indent=None)

    out.counts.update(
        lvis_val_images=len(images),
        lvis_val_boxes=len(anns),
        lvis_minival_images=len(mini["images"]),
        lvis_minival_boxes=len(mini["annotations"]),
        lvis_train_images=len(train_images),
        lvis_train_boxes=len(train_anns),
    )
    out.add_part("lvis-train", "lvis", "lvis/lvis_v1_train.json", image_root="coco")
    out.add_part("lvis-val", "lvis", "lvis/lvis_v1_val.json", image_root="coco")
    out.add_part("lvis-minival", "lvis", "lvis/lvis_v1_minival.json", image_root="coco")
    return out
