"""Generated COCO-like and LVIS-like ground truth and detections, in the real JSON layouts.

Used by the exactness tests and by ``benchmarks/eval_bench.py``: the real LVIS/ODinW files cannot be
downloaded here, so we generate inputs that exercise every rule the oracles implement (long-tailed
r/c/f groups, federated ``neg_category_ids`` / ``not_exhaustive_category_ids``, GT ``area`` differing
from the box area, crowd boxes, score ties, empty images, categories without GT).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Detections", "duplicate_images", "make_coco_like", "make_detections", "make_lvis_like"]

# LVIS v1 proportions of frequent / common / rare categories (405 / 461 / 337).
_FREQ_SHARES = (("f", 405), ("c", 461), ("r", 337))


@dataclass
class Detections:
    """A detection pool as columns; boxes are xyxy in original pixels."""

    image_ids: np.ndarray
    boxes_xyxy: np.ndarray
    scores: np.ndarray
    category_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def to_results(self) -> list[dict]:
        """The standard COCO/LVIS results list (bbox xywh)."""
        xywh = self.boxes_xyxy.astype(np.float64).copy()
        xywh[:, 2:] -= xywh[:, :2]
        return [
            {"image_id": int(i), "category_id": int(c), "bbox": [float(v) for v in b], "score": float(s)}
            for i, c, b, s in zip(
                self.image_ids.tolist(), self.category_ids.tolist(), xywh, self.scores.tolist(), strict=True
            )
        ]

    def select(self, mask: np.ndarray) -> Detections:
        return Detections(self.image_ids[mask], self.boxes_xyxy[mask], self.scores[mask], self.category_ids[mask])


def _random_boxes(rng: np.random.Generator, n: int, width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """xywh boxes inside their image, sizes spanning the small/medium/large ranges."""
    side = np.exp(rng.uniform(np.log(4), np.log(400), size=(n, 2)))
    w = np.minimum(side[:, 0], width - 1)
    h = np.minimum(side[:, 1], height - 1)
    x = rng.uniform(0, width - w)
    y = rng.uniform(0, height - h)
    return np.round(np.stack([x, y, w, h], 1), 2)


def _categories(num_categories: int, lvis: bool) -> list[dict]:
    cats = []
    total = sum(n for _, n in _FREQ_SHARES)
    bounds = np.cumsum([n / total for _, n in _FREQ_SHARES]) * num_categories
    for k in range(num_categories):
        cat = {"id": k + 1, "name": f"class_{k + 1}", "supercategory": "thing"}
        if lvis:
            cat["frequency"] = _FREQ_SHARES[int(np.searchsorted(bounds, k, side="right"))][0]
            cat["synset"] = f"class_{k + 1}.n.01"
        cats.append(cat)
    return cats


def _make_gt(num_images: int, num_categories: int, gt_per_image: float, seed: int, lvis: bool) -> dict:
    rng = np.random.default_rng(seed)
    # Zipf-like long tail: category k drawn with weight 1/(k+1), so the "frequent" ids come first.
    weights = 1.0 / np.arange(1, num_categories + 1)
    weights /= weights.sum()
    images, anns = [], []
    for img_id in range(1, num_images + 1):
        width, height = int(rng.integers(320, 641)), int(rng.integers(320, 641))
        image = {"id": img_id, "width": width, "height": height, "file_name": f"{img_id:012d}.jpg"}
        n = 0 if rng.random() < 0.05 else int(rng.poisson(gt_per_image))
        distinct = rng.choice(num_categories, size=max(1, min(n, 6, num_categories)), replace=False, p=weights) + 1
        cats = rng.choice(distinct, size=n) if n else np.zeros(0, int)
        boxes = _random_boxes(rng, n, np.full(n, width), np.full(n, height))
        # Put a few boxes exactly on the small/medium edges (areas 32² and 96², inclusive in both tools).
        for j in range(n):
            if rng.random() < 0.05:
                side = 32.0 if rng.random() < 0.5 else 96.0
                boxes[j, 2:] = side
                boxes[j, 0] = min(boxes[j, 0], width - side - 1)
                boxes[j, 1] = min(boxes[j, 1], height - side - 1)
        for j in range(n):
            w, h = boxes[j, 2], boxes[j, 3]
            area = float(w * h) if rng.random() < 0.3 else float(np.round(w * h * rng.uniform(0.4, 1.0), 1))
            ann = {
                "id": len(anns) + 1,
                "image_id": img_id,
                "category_id": int(cats[j]),
                "bbox": [float(v) for v in boxes[j]],
                "area": area,
            }
            if not lvis:
                ann["iscrowd"] = int(rng.random() < 0.03)
            anns.append(ann)
        if lvis:
            pos = set(cats.tolist())
            others = np.setdiff1d(np.arange(1, num_categories + 1), list(pos))
            image["neg_category_ids"] = sorted(
                int(c) for c in rng.choice(others, size=min(len(others), 8), replace=False)
            )
            image["not_exhaustive_category_ids"] = sorted(int(c) for c in pos if rng.random() < 0.15)
        images.append(image)
    out = {"images": images, "annotations": anns, "categories": _categories(num_categories, lvis)}
    if not lvis:
        out["info"] = {"description": "synthetic COCO-like set"}
    return out


def make_lvis_like(num_images: int, num_categories: int = 1203, gt_per_image: float = 12.0, seed: int = 0) -> dict:
    """An LVIS v1-layout GT dict (``frequency``, ``neg_category_ids``, ``not_exhaustive_category_ids``)."""
    return _make_gt(num_images, num_categories, gt_per_image, seed, lvis=True)


def make_coco_like(num_images: int, num_categories: int = 10, gt_per_image: float = 6.0, seed: int = 0) -> dict:
    """A COCO-layout GT dict with a few crowd boxes (an ODinW-sized set by default)."""
    return _make_gt(num_images, num_categories, gt_per_image, seed, lvis=False)


def make_detections(gt: dict, dets_per_image: int, seed: int = 0, score_decimals: int | None = 2) -> Detections:
    """Detections near the GT (hits, wrong classes) plus clutter on random categories.

    Scores are rounded to ``score_decimals`` so ties are frequent, as in real fp16 outputs.
    """
    rng = np.random.default_rng(seed)
    cat_ids = np.array([c["id"] for c in gt["categories"]])
    by_image: dict[int, list[dict]] = {}
    for ann in gt["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    cols: list[list[np.ndarray]] = [[], [], [], []]
    for image in gt["images"]:
        if rng.random() < 0.03:
            continue  # an image without any detection
        img_id, width, height = image["id"], image["width"], image["height"]
        gts = by_image.get(img_id, [])
        n_near = min(dets_per_image // 2, 3 * len(gts))
        parts_box, parts_cat = [], []
        if gts and n_near:
            pick = rng.integers(0, len(gts), size=n_near)
            base = np.array([gts[k]["bbox"] for k in pick], dtype=np.float64)
            jitter = rng.normal(0, 0.08, size=base.shape) * np.repeat(base[:, 2:], 2, axis=1)
            box = base + jitter
            box[:, 2:] = np.maximum(box[:, 2:], 1.0)
            cat = np.array([gts[k]["category_id"] for k in pick])
            wrong = rng.random(n_near) < 0.2
            cat[wrong] = rng.choice(cat_ids, size=int(wrong.sum()))
            parts_box.append(box)
            parts_cat.append(cat)
        n_rand = dets_per_image - n_near
        parts_box.append(_random_boxes(rng, n_rand, np.full(n_rand, width), np.full(n_rand, height)))
        parts_cat.append(rng.choice(cat_ids, size=n_rand))
        xywh = np.round(np.concatenate(parts_box), 2)
        n = len(xywh)
        scores = rng.beta(1.2, 4.0, size=n)
        scores[:n_near] = np.clip(scores[:n_near] + 0.4, 0, 1)
        if score_decimals is not None:
            scores = np.round(scores, score_decimals)
        scores = np.maximum(scores, 10.0 ** -(score_decimals or 6))
        xyxy = xywh.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        cols[0].append(np.full(n, img_id, dtype=np.int64))
        cols[1].append(xyxy)
        cols[2].append(scores)
        cols[3].append(np.concatenate(parts_cat).astype(np.int64))
    if not cols[0]:
        return Detections(np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))
    return Detections(*(np.concatenate(c) for c in cols))


def duplicate_images(gt: dict, dets: Detections, weights: np.ndarray) -> tuple[dict, Detections]:
    """The image set a bootstrap replicate stands for, built physically (the reference the bootstrap is
    tested and benchmarked against): image ``i`` (in sorted id order) ``weights[i]`` times, 0 dropping it.

    Copies get fresh ids right after their original (all images renumbered 1, 2, ... in (original, copy)
    order), GT annotations and federated lists are copied, and in the detection stream every detection is
    followed by its copies. That is the layout ``detclip_bench.metrics.bootstrap`` reproduces exactly.
    """
    ids = np.sort(np.array([img["id"] for img in gt["images"]], np.int64))
    weights = np.asarray(weights, np.int64)
    first = np.cumsum(weights) - weights + 1  # new id of copy j of image i: first[i] + j
    by_id = {img["id"]: img for img in gt["images"]}
    anns_by_image: dict[int, list] = {}
    for ann in gt["annotations"]:
        anns_by_image.setdefault(ann["image_id"], []).append(ann)
    images, annotations = [], []
    for p, i in enumerate(ids.tolist()):
        for j in range(int(weights[p])):
            new_id = int(first[p] + j)
            images.append({**by_id[i], "id": new_id})
            for ann in anns_by_image.get(i, ()):
                annotations.append({**ann, "id": len(annotations) + 1, "image_id": new_id})
    pos = np.searchsorted(ids, dets.image_ids)
    times = weights[pos]
    rows = np.repeat(np.arange(len(dets)), times)
    copy = np.arange(len(rows)) - np.repeat(np.cumsum(times) - times, times)
    new_ids = first[pos][rows] + copy
    out = {**gt, "images": images, "annotations": annotations}
    return out, Detections(new_ids, dets.boxes_xyxy[rows], dets.scores[rows], dets.category_ids[rows])
