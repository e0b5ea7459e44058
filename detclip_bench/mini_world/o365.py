"""O365-like detection set in the Objects365 v2 layout (mmdet style).

``o365/annotations/zhiyuan_objv2_{train,val}.json`` (COCO-like, v2 ``file_name`` with the source
folder, ``isfake``/``isreflected`` flags, raw category names with real-style quirks) and images at
``o365/{train,val}/patchN/<basename>``. Only detection-group concepts are drawn or boxed here.
"""

from __future__ import annotations

from pathlib import Path

from detclip_bench.io import atomic_write_json
from detclip_bench.mini_world.render import Difficulty
from detclip_bench.mini_world.scenes import PartOutput, coco_box, main_scene, part_rng, scaled, write_jpeg
from detclip_bench.mini_world.vocabulary import concepts_in

__all__ = ["write_o365"]

BASE_TRAIN, BASE_VAL = 600, 60
_V1_PATCHES = 3  # patches 0..2 hold v1-named files, later ones v2 (as in the real release)


def _file_name(image_id: int, patch: int) -> str:
    v = 1 if patch < _V1_PATCHES else 2
    return f"images/v{v}/patch{patch}/objects365_v{v}_{image_id:08d}.jpg"


def _write_split(root: Path, split: str, n: int, first_id: int, seed: int, difficulty: Difficulty, out: PartOutput):
    pool = list(concepts_in("detection"))
    cat_id = {c.name: i + 1 for i, c in enumerate(pool)}
    rng = part_rng(seed, "o365", 0 if split == "train" else 1)
    per_patch = max(1, -(-n // 6))
    images, anns = [], []
    for i in range(n):
        image_id, patch = first_id + i, i // per_patch
        # the first images each show one given concept, so every category is boxed at any scale
        img, objects = main_scene(rng, pool, difficulty, must_include=[pool[i]] if i < len(pool) else None)
        file_name = _file_name(image_id, patch)
        write_jpeg(root / split / f"patch{patch}" / Path(file_name).name, img)
        images.append(
            {"height": img.height, "id": image_id, "license": 5, "width": img.width, "file_name": file_name, "url": ""}
        )
        for o in objects:
            bbox, area = coco_box(o.box)
            anns.append(
                {
                    "id": len(anns) + 1,
                    "iscrowd": 0,
                    "isfake": 0,
                    "area": area,
                    "isreflected": int(rng.random() < 0.02),
                    "bbox": bbox,
                    "image_id": image_id,
                    "category_id": cat_id[o.concept.name],
                }
            )
        if split == "train":
            out.count_training_image([o.concept.name for o in objects])
    categories = [{"name": c.o365_key, "id": cat_id[c.name]} for c in pool]
    licenses = [{"url": "http://creativecommons.org/licenses/by/4.0/", "id": 5, "name": "CC BY 4.0"}]
    doc = {"images": images, "annotations": anns, "categories": categories, "licenses": licenses}
    rel = f"annotations/zhiyuan_objv2_{split}.json"
    atomic_write_json(root / rel, doc, indent=None)
    out.counts[f"o365_{split}_images"] = len(images)
    out.counts[f"o365_{split}_boxes"] = len(anns)
    out.add_part(f"o365-{split}", "o365", f"o365/{rel}", image_root=f"o365/{split}")


def write_o365(out_dir: Path, seed: int, scale: float, difficulty: Difficulty) -> PartOutput:
    out = PartOutput()
    root = out_dir / "o365"
    n_train = scaled(BASE_TRAIN, scale, minimum=4)
    _write_split(root, "train", n_train, 1, seed, difficulty, out)
    _write_split(root, "val", scaled(BASE_VAL, scale, minimum=2), 1 + n_train, seed, difficulty, out)
    return out
