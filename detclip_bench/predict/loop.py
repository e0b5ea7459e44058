"""The one prediction loop: images in batches through any detector, out as :class:`PredictionArrays`.

The loop is pipelined: DataLoader workers read and decode the images and, for a detector that offers the
optional ``input_transform()`` / ``predict_inputs()`` pair, resize and normalise them too, a few batches ahead,
while the main process runs the model. The detector sees the same inputs in the same order whatever the
number of workers, so predictions do not depend on it. Scoring happens after the loop, on the collected
arrays, so the evaluator is never on the model's critical path.

Suite evaluation (``eval``, the val passes and final scoring of ``finetune``, through
:func:`detclip_bench.suites.predictions.predict_target`) and ``predict`` on image files
(:func:`detclip_bench.predict.run.predict_images`) both run :func:`predict_arrays`; they differ only in where
the images come from (a suite target's samples, a list of files), what happens to a file that cannot be read
(an error, or a skip) and what else is done with each image (``predict`` draws it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from detclip_bench.adapters.base import Detector, Prediction
from detclip_bench.errors import DataError
from detclip_bench.predict.arrays import PredictionArrays

__all__ = ["EXIF_TRANSPOSE", "auto_workers", "keep_budget", "predict_arrays"]

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


#: below this many images the loop reads them in-process: starting worker processes costs more than it saves
MIN_IMAGES_FOR_WORKERS = 32
#: most DataLoader workers ``auto`` starts (decoding a COCO-sized JPEG and resizing it takes a core ~20 ms)
MAX_AUTO_WORKERS = 8


def auto_workers(count: int, device: object = "cpu") -> int:
    """``--workers auto``: for a model on CUDA, one worker fewer than the machine has cores (the main process
    feeds the GPU), at most :data:`MAX_AUTO_WORKERS`. None for a model on the CPU, whose forward already uses
    every core (on 2 cores, workers made detclipv2-mini 6–18 % slower: docs/benchmarks.md), for fewer than
    :data:`MIN_IMAGES_FOR_WORKERS` images, or where processes cannot be forked (the loaders are closures over
    opened datasets; forking shares them without pickling)."""
    if count < MIN_IMAGES_FOR_WORKERS or not sys.platform.startswith("linux") or not str(device).startswith("cuda"):
        return 0
    return max(0, min(MAX_AUTO_WORKERS, (os.cpu_count() or 1) - 1))


@dataclass
class _Loaded:
    """Image ``k`` as a worker hands it over: the detector's input (a prepared tensor or the image itself), the
    image when the caller wants it too, or the error that made it unreadable."""

    k: int
    image_id: int = -1
    payload: object = None
    image: object = None
    record: str = ""
    error: DataError | None = None


class _ImageReader:
    """The loop's map-style dataset (torch's DataLoader takes any object with ``__len__``/``__getitem__``; torch is
    imported only when the loop runs, so the CLI's verbs load without it)."""

    def __init__(self, count: int, load: LoadImage, transform: Callable | None, keep_image: bool) -> None:
        self.count, self.load, self.transform, self.keep_image = count, load, transform, keep_image

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k: int) -> _Loaded:
        try:
            image_id, image, record = self.load(k)
        except DataError as exc:
            return _Loaded(k, error=exc)
        payload = self.transform(image) if self.transform is not None else image
        return _Loaded(k, int(image_id), payload, image if self.keep_image else None, str(record))


def _as_list(batch: list[_Loaded]) -> list[_Loaded]:
    return batch


def _prepared_path(detector: Detector) -> tuple[Callable | None, Callable]:
    """The detector's optional ``input_transform()`` (run in the workers) and ``predict_inputs`` that takes its
    output; else no transform and the plain ``predict`` on images."""
    make = getattr(detector, "input_transform", None)
    run = getattr(detector, "predict_inputs", None)
    if callable(make) and callable(run):
        return make(), run
    return None, detector.predict


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
    workers: int | None = None,
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
        load: reads image ``k`` (see :data:`LoadImage`); runs in the DataLoader workers.
        prompts: the texts the model sees; its labels index them and map to ``category_ids``.
        workers: DataLoader worker processes reading (and, where the detector offers it, preparing) the images
            ahead of the model; 0 reads them in this process; None is :func:`auto_workers` for the detector's
            ``device`` (an optional attribute; none is the CPU).
        enforce_budget: apply the threshold and the cap here too, best scores first (:func:`keep_budget`), for
            detectors that do not; off, the detections are kept as the detector returned them.
        on_unreadable: called with ``(k, error)`` for an image ``load`` cannot read, which is then skipped; without
            it the error propagates.
        on_image: called for every predicted image (``predict`` records its size and draws it).

    A label outside the prompt list, or a batch answered with another number of predictions, is a DataError.
    """
    from torch.utils.data import DataLoader

    cat_ids = np.asarray(category_ids, np.int64)
    transform, run = _prepared_path(detector)
    workers = auto_workers(count, getattr(detector, "device", "cpu")) if workers is None else workers
    loader = DataLoader(
        _ImageReader(count, load, transform, keep_image=on_image is not None),
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_as_list,
        prefetch_factor=4 if workers else None,
        multiprocessing_context="fork" if workers else None,
    )
    parts: list[PredictionArrays] = []
    bar = tqdm(total=count, desc=desc, disable=not progress, unit="img")
    for batch in loader:
        for item in batch:
            if item.error is not None:
                if on_unreadable is None:
                    raise item.error
                on_unreadable(item.k, item.error)
        ready = [item for item in batch if item.error is None]
        if ready:
            preds = run(
                [item.payload for item in ready],
                list(prompts),
                max_dets_per_image=max_dets,
                score_thresh=score_thresh,
            )
            if len(preds) != len(ready):
                raise DataError(
                    detector.name, "-", f"the detector returned {len(preds)} predictions for {len(ready)} images"
                )
            for item, pred in zip(ready, preds, strict=True):
                if enforce_budget:
                    boxes, scores, labels = keep_budget(pred, score_thresh, max_dets)
                else:
                    boxes, scores, labels = pred.boxes, pred.scores, pred.labels
                if len(labels) and (labels.min() < 0 or labels.max() >= len(prompts)):
                    raise DataError(detector.name, item.record, "detector returned a label outside the prompt list")
                parts.append(
                    PredictionArrays(np.full(len(scores), item.image_id, np.int64), boxes, scores, cat_ids[labels])
                )
                if on_image is not None:
                    on_image(item.k, item.image, boxes, scores, labels)
        bar.update(len(batch))
    bar.close()
    return PredictionArrays.concat(parts)
