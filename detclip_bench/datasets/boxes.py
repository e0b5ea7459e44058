"""One box-sanity rule for every loader: xyxy, clipped to the image, with reasons for rejects.

w or h ≤ 0 → rejected; wholly outside the image → rejected; poking out by more than
``CLIP_TOLERANCE`` px → clipped and reported (real O365/COCO have such boxes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CLIP_TOLERANCE", "BoxCheck", "check_boxes"]

CLIP_TOLERANCE = 1.0


@dataclass
class BoxCheck:
    boxes: np.ndarray  # (N, 4) float32 xyxy, clipped to the image
    degenerate: np.ndarray  # (N,) bool, w or h <= 0
    outside: np.ndarray  # (N,) bool, no overlap with the image
    clipped: np.ndarray  # (N,) bool, kept but clipped by more than the tolerance

    @property
    def ok(self) -> np.ndarray:
        return ~(self.degenerate | self.outside)

    def problems(self) -> list[tuple[int, str]]:
        """(box index, reason) for every rejected or clipped box."""
        out = [(int(j), "box with w or h <= 0") for j in np.flatnonzero(self.degenerate)]
        out += [(int(j), "box outside the image") for j in np.flatnonzero(self.outside)]
        out += [(int(j), "box partly outside the image (clipped)") for j in np.flatnonzero(self.clipped)]
        return out


def check_boxes(xyxy, width, height) -> BoxCheck:
    """``width``/``height`` are scalars or per-box arrays."""
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    w = np.broadcast_to(np.asarray(width, np.float32), (len(xyxy),))
    h = np.broadcast_to(np.asarray(height, np.float32), (len(xyxy),))
    clipped = np.stack(
        [np.clip(xyxy[:, 0], 0, w), np.clip(xyxy[:, 1], 0, h), np.clip(xyxy[:, 2], 0, w), np.clip(xyxy[:, 3], 0, h)],
        axis=1,
    ).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        degenerate = ~((xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1]))
        outside = ~degenerate & ((clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1]))
        poked = ~degenerate & ~outside & (np.abs(clipped - xyxy).max(axis=1, initial=0) > CLIP_TOLERANCE)
    return BoxCheck(clipped, degenerate, outside, poked)
