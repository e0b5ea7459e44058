"""COCO bbox AP (the ODinW metric), exactly pycocotools' ``COCOeval``.

pycocotools truncates per (image, category) at ``maxDets`` = [1, 10, 100]; that stays. GLIP/
mmdetection additionally keep the 100 best detections per image across categories in
post-processing: that is ``max_dets_per_image`` here (default 100, ``None`` for pure pycocotools
on whatever you feed it). Ties at the per-image cut go to the detection that arrived first.
"""

from __future__ import annotations

import os

from detclip_bench.metrics.engine import coco_summary, per_category_ap
from detclip_bench.metrics.gt import GroundTruth
from detclip_bench.metrics.results import EvalResult
from detclip_bench.metrics.streaming import StreamingEvaluator
from detclip_bench.metrics.topk import GroupTopK

__all__ = ["COCO_MAX_DETS", "CocoEvaluator"]

COCO_MAX_DETS = [1, 10, 100]


class CocoEvaluator(StreamingEvaluator):
    """COCO bbox AP with pycocotools' ``COCOeval`` semantics (the ODinW metric).

    Detections stream in through :meth:`~StreamingEvaluator.update`, one image or a batch at a
    time: boxes ``(N, 4)`` xyxy in original image pixels, scores ``(N,)``, category ids ``(N,)``
    as in the GT json. At most ``max_dets_per_image`` per image are kept while they arrive (the
    highest scores; a tie at the cut keeps the detection that arrived first); the engine then
    applies pycocotools' own per-(image, category) caps ``maxDets`` = 1, 10, 100.

    :meth:`compute` returns an :class:`~detclip_bench.metrics.results.EvalResult` with protocol
    ``"coco"`` and ``COCOeval.summarize``'s twelve numbers as fractions in [0, 1] (-1 where
    undefined): ``AP``, ``AP50``, ``AP75``, ``APs``/``APm``/``APl``, ``AR1``/``AR10``/``AR100``,
    ``ARs``/``ARm``/``ARl``, plus one per-category row (AP, GT count, detections kept).

    Args:
        gt: the COCO GT: a json path, an already-parsed dict, or a loaded
            :class:`~detclip_bench.metrics.gt.GroundTruth` (which must have been loaded as COCO,
            not LVIS). ``iscrowd`` boxes are handled as pycocotools does.
        max_dets_per_image: the per-image cap across categories that GLIP/mmdetection apply in
            post-processing (default 100; must be >= 1); ``None`` keeps everything (pure
            pycocotools on whatever is fed).

    Example::

        >>> ev = CocoEvaluator("annotations/instances_val2017.json")
        >>> ev.update(image_ids, boxes, scores, category_ids)  # (N,), (N, 4) xyxy pixels, (N,), (N,)
        >>> result = ev.compute()
        >>> result.metrics["AP"], result.metrics["AP50"]
    """

    def __init__(self, gt: dict | str | os.PathLike | GroundTruth, *, max_dets_per_image: int | None = 100) -> None:
        if max_dets_per_image is not None and max_dets_per_image < 1:
            raise ValueError(f"max_dets_per_image must be >= 1 or None, got {max_dets_per_image}")
        super().__init__(gt, lvis=False, pool=GroupTopK(max_dets_per_image, "image"))
        self.max_dets_per_image = max_dets_per_image

    engine_max_dets = COCO_MAX_DETS  # pycocotools' per-(image, category) caps stay the engine's

    def compute(self) -> EvalResult:
        rows, acc = self.accumulated()
        return self._result(
            "coco",
            coco_summary(acc, COCO_MAX_DETS),
            per_category_ap(acc),
            rows,
            topk=None,
            max_dets_per_image=self.max_dets_per_image,
            extra_warnings=[],
        )
