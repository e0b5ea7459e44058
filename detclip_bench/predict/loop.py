"""The one prediction loop: images in batches through any detector, out as :class:`PredictionArrays`.

Suite evaluation (``eval``, the val passes and final scoring of ``finetune``, through
:func:`detclip_bench.suites.predictions.predict_target`) and ``predict`` on image files
(:func:`detclip_bench.predict.run.predict_images`) both run :func:`predict_arrays`; they differ only in where
the images come from (a suite target's samples, a list of files), what happens to a file that cannot be read
(an error, or a skip) and what else is done with each image (``predict`` draws it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tqdm import tqdm

from detclip_bench.adapters.base import Detector, Prediction
from detclip_bench.errors import DataError
from detclip_bench.predict.arrays import PredictionArrays

__all__ = ["EXIF_TRANSPOSE", "keep_budget", "predict_arrays"]

# images are turned upright by their EXIF Orientation before the model sees them (the frame COCO tools label in);
# stamped into the prediction cache (a cache made without it is recomputed) and into every run_info.json
EXIF_TRANSPOSE = True

#: position -> (image id, the image upright in RGB, the record to name in errors); raises DataError when unreadable
LoadImage = Callable[[int], tuple[int, object, str]]
#: (position, image, boxes, scores, labels) of every image predicted, after the budget
OnImage = Callable[[int, object, np.ndarray, np.ndarray, np.ndarray], None]


def keep_budget(
    pred: Prediction, score_thresh: float | None, max_dets: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detector's output under the run's contract: scores above the threshold, the top ``max_dets``, by score."""
    keep = np.ones(len(pred.scores), bool) if score_thresh is None else pred.scores > score_thresh
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(-pred.scores[idx], kind="stable")][:max_dets]
    return pred.boxes[idx], pred.scores[idx], pred.labels[idx]


def predict_arrays(
    detector: Detector,
    count: int,
    load: LoadImage,
    prompts: Sequence[str],
    category_ids: Sequence[int] | np.ndarray,
    *,
    max_dets: int,
    score_thresh: float | None,
    batch_size: int = 4,
    enforce_budget: bool = False,
    on_unreadable: Callable[[int, DataError], None] | None = None,
    on_image: OnImage | None = None,
    progress: bool = True,
    desc: str = "predict",
) -> PredictionArrays:
    """Predict images ``0 .. count-1`` (read by ``load``), ``batch_size`` at a time, in that order.

    Args:
        detector: any :class:`~detclip_bench.adapters.base.Detector`; asked for at most ``max_dets`` detections
            per image scoring above ``score_thresh`` (None: the model's own threshold).
        load: reads image ``k`` (see :data:`LoadImage`).
        prompts: the texts the model sees; its labels index them and map to ``category_ids``.
        enforce_budget: apply the threshold and the cap here too, best scores first (:func:`keep_budget`), for
            detectors that do not; off, the detections are kept as the detector returned them.
        on_unreadable: called with ``(k, error)`` for an image ``load`` cannot read, which is then skipped; without
            it the error propagates.
        on_image: called for every predicted image (``predict`` records its size and draws it).

    A label outside the prompt list, or a batch answered with another number of predictions, is a DataError.
    """
    cat_ids = np.asarray(category_ids, np.int64)
    parts: list[PredictionArrays] = []
    bar = tqdm(total=count, desc=desc, disable=not progress, unit="img")
    for start in range(0, count, batch_size):
        batch = []
        for k in range(start, min(start + batch_size, count)):
            try:
                batch.append((k, *load(k)))
            except DataError as exc:
                if on_unreadable is None:
                    raise
                on_unreadable(k, exc)
        if batch:
            preds = detector.predict(
                [im for _, _, im, _ in batch], list(prompts), max_dets_per_image=max_dets, score_thresh=score_thresh
            )
            if len(preds) != len(batch):
                raise DataError(
                    detector.name, "-", f"the detector returned {len(preds)} predictions for {len(batch)} images"
                )
            for (k, image_id, image, record), pred in zip(batch, preds, strict=True):
                if enforce_budget:
                    boxes, scores, labels = keep_budget(pred, score_thresh, max_dets)
                else:
                    boxes, scores, labels = pred.boxes, pred.scores, pred.labels
                if len(labels) and (labels.min() < 0 or labels.max() >= len(prompts)):
                    raise DataError(detector.name, record, "detector returned a label outside the prompt list")
                parts.append(
                    PredictionArrays(np.full(len(scores), int(image_id), np.int64), boxes, scores, cat_ids[labels])
                )
                if on_image is not None:
                    on_image(k, image, boxes, scores, labels)
        bar.update(min(start + batch_size, count) - start)
    bar.close()
    return PredictionArrays.concat(parts)
