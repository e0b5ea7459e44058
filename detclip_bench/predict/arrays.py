"""Predictions as flat arrays (image id, xyxy box, score, category id), never as JSON dicts.

What the one prediction loop (:func:`detclip_bench.predict.loop.predict_arrays`) returns, what a run keeps in
``predictions/<member>-<split>.npz`` and the suite prediction cache holds, and what the evaluators take. A COCO
results list is made from it only where a file needs one (:func:`coco_results`).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detclip_bench.errors import DataError
from detclip_bench.io import atomic_path

__all__ = ["PredictionArrays", "coco_results"]


@dataclass
class PredictionArrays:
    image_ids: np.ndarray  # int64 (N,)
    boxes: np.ndarray  # float32 (N, 4) xyxy, original pixels
    scores: np.ndarray  # float32 (N,)
    category_ids: np.ndarray  # int64 (N,) ids of the GT json

    @classmethod
    def concat(cls, parts: list[PredictionArrays]) -> PredictionArrays:
        if not parts:
            return cls(
                np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
            )
        return cls(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in ("image_ids", "boxes", "scores", "category_ids"))
        )

    def save(self, path: Path, meta: dict) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(
                fh,
                image_ids=self.image_ids,
                boxes=self.boxes,
                scores=self.scores,
                category_ids=self.category_ids,
                meta=np.array(json.dumps(meta, sort_keys=True)),
            )

    @classmethod
    def load(cls, path: Path) -> tuple[PredictionArrays, dict]:
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = cls(z["image_ids"], z["boxes"], z["scores"], z["category_ids"])
                meta = json.loads(str(z["meta"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise DataError(str(path), "-", f"unreadable prediction cache ({exc}); delete it to recompute") from exc
        return arrays, meta

    def __len__(self) -> int:
        return len(self.scores)


def coco_results(arrays: PredictionArrays) -> list[dict]:
    """A COCO results list ``{image_id, category_id, bbox: [x, y, w, h], score}`` in the arrays' order."""
    xywh = arrays.boxes.astype(np.float64)
    xywh[:, 2:] -= xywh[:, :2]
    return [
        {"image_id": i, "category_id": c, "bbox": b, "score": s}
        for i, c, b, s in zip(
            arrays.image_ids.tolist(),
            arrays.category_ids.tolist(),
            xywh.tolist(),
            arrays.scores.astype(np.float64).tolist(),
            strict=True,
        )
    ]
