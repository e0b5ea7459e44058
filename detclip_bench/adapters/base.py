"""The one interface every evaluable model implements: images + prompts in, detections out.

Suites call only this, so a DetCLIPv2 checkpoint and a transformers zero-shot detector sit on the
same table under the same protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Detector", "Prediction", "model_provenance"]


@dataclass(slots=True)
class Prediction:
    """Detections for one image: xyxy boxes in ORIGINAL image pixels; labels index the prompt list."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if not (len(self.boxes) == len(self.scores) == len(self.labels)):
            raise ValueError(
                f"prediction arrays disagree: {len(self.boxes)} boxes, {len(self.scores)} scores, {len(self.labels)} labels"
            )


@runtime_checkable
class Detector(Protocol):
    """A model that can be evaluated on any suite.

    Optional, not part of the protocol: a ``provenance()`` method returning a JSON-able dict (e.g.
    which parts started from random weights); suites copy it into results.json as ``model_provenance``.
    And the pair ``input_transform()`` (a picklable ``image -> input`` callable: resize, normalise, pad) and
    ``predict_inputs(inputs, prompts, ...)``: the prediction loop then prepares images in its DataLoader
    workers, ahead of the model (:mod:`detclip_bench.predict.loop`).
    """

    name: str

    def identity(self) -> str:
        """A stable hash of weights + config, used to key prediction caches."""
        ...

    def predict(
        self,
        images: Sequence,  # PIL.Image.Image (RGB) in original size
        prompts: Sequence[str],
        *,
        max_dets_per_image: int = 100,
        score_thresh: float | None = None,  # drop detections scoring at or below it (None: the model's own)
    ) -> list[Prediction]: ...


def model_provenance(detector: Detector) -> dict:
    """A detector's optional ``provenance()`` dict (e.g. which towers started from random weights), else {}.

    Optional and duck-typed so the core never needs to know a model's package.
    """
    hook = getattr(detector, "provenance", None)
    return dict(hook()) if callable(hook) else {}
