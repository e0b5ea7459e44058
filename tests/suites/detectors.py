"""Detectors for suite tests: the suite's own ground truth, jittered, keyed by the image's pixels."""

from __future__ import annotations

import hashlib

import numpy as np

from detclip_bench.adapters.base import Prediction


class JitteredGtDetector:
    """GT boxes moved by ``noise`` × their size, random scores, and with ``false_box`` one wrong box per image.

    Keyed by pixel hash, so any suite that shows it the same images gets the same detections. ``seed`` names
    the "model" (None: the image alone seeds its noise).
    """

    def __init__(self, targets, *, seed: int | None = None, noise: float = 0.1, false_box: bool = False,
                 name: str | None = None) -> None:  # fmt: skip
        self.name = name or f"noisy-{seed}"
        self.table = {}
        for target in targets:
            ds = target.open()
            index = {c.category_id: k for k, c in enumerate(ds.vocabulary())}
            for i in range(len(ds)):
                s = ds[i]
                rid = int(s.record_id)
                rng = np.random.default_rng(rid if seed is None else [seed, rid % 2**31])
                size = np.concatenate([s.boxes[:, 2:] - s.boxes[:, :2]] * 2, axis=1)
                boxes = (s.boxes + rng.normal(0, noise, s.boxes.shape) * size).astype(np.float32)
                labels = np.array([index[c.category_id] for c in s.box_concepts], np.int64)
                if false_box:
                    boxes = np.concatenate([boxes, np.array([[1, 1, 30, 30]], np.float32)])
                    labels = np.concatenate([labels, rng.integers(0, len(index), 1)])
                scores = rng.uniform(0.1, 1, len(boxes)).astype(np.float32)
                self.table[hashlib.sha256(s.load_image().tobytes()).hexdigest()] = (boxes, scores, labels)

    def identity(self):
        return self.name

    def predict(self, images, prompts, *, max_dets_per_image=100, score_thresh=None):
        return [Prediction(*self.table[hashlib.sha256(im.tobytes()).hexdigest()]) for im in images]
