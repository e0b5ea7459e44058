"""Run a detector over one suite target, with a prediction cache so re-scoring never re-runs a model.

Predictions are kept as flat arrays (image id, xyxy box, score, category id) — never as JSON dicts —
and cached per (model identity, suite, member, split). Under torchrun each rank predicts a strided
shard of the images and rank 0 receives everything in rank order.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from detclip_bench import dist
from detclip_bench.adapters.base import Detector, model_provenance
from detclip_bench.datasets import open_dataset
from detclip_bench.errors import DataError
from detclip_bench.io import atomic_path
from detclip_bench.schema import Concept
from detclip_bench.suites.suite import EvalTarget, Suite, member_file_stem

__all__ = ["EXIF_TRANSPOSE", "PredictionArrays", "open_target", "predict_target", "prompts_for"]

log = logging.getLogger("detclip_bench.suites")

# images are turned upright by their EXIF Orientation before the model sees them (the frame COCO tools label in);
# stamped into the prediction cache (a cache made without it is recomputed) and into every run_info.json
EXIF_TRANSPOSE = True


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
        import json

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
        import json

        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = cls(z["image_ids"], z["boxes"], z["scores"], z["category_ids"])
                meta = json.loads(str(z["meta"]))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise DataError(str(path), "-", f"unreadable prediction cache ({exc}); delete it to recompute") from exc
        return arrays, meta

    def __len__(self) -> int:
        return len(self.scores)


def open_target(target: EvalTarget):
    """Open a suite target with the project's loader for its format (GT images + vocabulary)."""
    return open_dataset(
        target.annotations, format=target.loader_format, image_root=target.images, **dict(target.options)
    )


def prompts_for(suite: Suite, vocabulary: tuple[Concept, ...]) -> list[str]:
    """The exact texts the model sees: 'name, definition' for LVIS, the suite's names verbatim for ODinW."""
    if suite.prompt_style == "name-definition":
        return [c.prompt() for c in vocabulary]
    return [c.name for c in vocabulary]


def cache_path(cache_dir: Path, identity: str, suite: Suite, target: EvalTarget) -> Path:
    name = f"{member_file_stem(target.member)}-{target.split}.npz"
    return cache_dir / identity[:16] / f"{suite.name}-v{suite.version}" / name


def predict_target(
    detector: Detector,
    suite: Suite,
    target: EvalTarget,
    *,
    cache_dir: Path | None,
    batch_size: int = 4,
    progress: bool = True,
) -> tuple[PredictionArrays, list[str]]:
    """Predictions for every image of ``target`` (from cache when present) and the prompts used."""
    dataset = open_target(target)
    vocabulary = tuple(dataset.vocabulary())
    prompts = prompts_for(suite, vocabulary)
    prompt_hash = hashlib.sha256("\n".join(prompts).encode()).hexdigest()[:12]
    path = cache_path(cache_dir, detector.identity(), suite, target) if cache_dir is not None else None
    # what besides the weights decides the predictions (adapter settings, library versions, the inference
    # code's revision): a cache made under other settings is recomputed, never reused
    provenance = json.loads(json.dumps(model_provenance(detector), sort_keys=True, default=str))
    if path is not None and path.is_file():
        arrays, meta = PredictionArrays.load(path)
        if (
            meta.get("prompt_hash") == prompt_hash
            and meta.get("max_dets_per_image") == suite.max_dets_per_image
            and meta.get("score_threshold") == suite.score_threshold
            and meta.get("provenance") == provenance
            and meta.get("exif_transpose") is EXIF_TRANSPOSE
        ):
            log.info("%s [%s]: %d cached predictions from %s", target.member, target.split, len(arrays), path)
            return arrays, prompts
        log.info("%s: cache %s was made with other prompts or budget; recomputing", target.member, path)

    cat_ids = np.array([c.category_id for c in vocabulary], dtype=np.int64)
    rank, world = dist.get_rank(), dist.get_world_size()
    indices = list(range(rank, len(dataset), world))
    parts: list[PredictionArrays] = []
    bar = tqdm(
        total=len(indices), desc=f"{target.member} [{target.split}]", disable=not progress or rank != 0, unit="img"
    )
    for start in range(0, len(indices), batch_size):
        samples = [dataset[i] for i in indices[start : start + batch_size]]
        images = [s.load_image(exif_transpose=EXIF_TRANSPOSE) for s in samples]
        preds = detector.predict(
            images, prompts, max_dets_per_image=suite.max_dets_per_image, score_thresh=suite.score_threshold
        )
        for sample, pred in zip(samples, preds, strict=True):
            if len(pred.labels) and (pred.labels.min() < 0 or pred.labels.max() >= len(prompts)):
                raise DataError(detector.name, sample.record_id, "detector returned a label outside the prompt list")
            parts.append(
                PredictionArrays(
                    np.full(len(pred.scores), int(sample.record_id), np.int64),
                    pred.boxes,
                    pred.scores,
                    cat_ids[pred.labels],
                )
            )
        bar.update(len(samples))
    bar.close()
    arrays = PredictionArrays.concat(parts)
    if world > 1:
        arrays = PredictionArrays.concat(dist.all_gather_object(arrays))
    if path is not None and dist.is_main_process():
        arrays.save(
            path,
            {
                "prompt_hash": prompt_hash,
                "max_dets_per_image": suite.max_dets_per_image,
                "score_threshold": suite.score_threshold,
                "provenance": provenance,
                "exif_transpose": EXIF_TRANSPOSE,
                "model": detector.name,
                "identity": detector.identity(),
            },
        )
    return arrays, prompts
