"""Prediction's one home: what a model is asked for, the loop that asks it, and what ``predict`` writes.

From the bottom up:

* :mod:`~detclip_bench.predict.vocabulary`: prompts from a comma list, a vocabulary file or a suite (imports no
  suite code, so :mod:`detclip_bench.suites` can import it);
* :mod:`~detclip_bench.predict.arrays`: :class:`PredictionArrays`, the flat arrays every prediction is kept in
  (COCO results dicts are made from them only where a file needs them);
* :mod:`~detclip_bench.predict.loop`: :func:`predict_arrays`, the one batched loop (suite evaluation, the
  fine-tuning val passes and ``predict`` all run it);
* :mod:`~detclip_bench.predict.images`: which files a run reads, its output folder, COCO image ids;
* :mod:`~detclip_bench.predict.draw`: the drawn pictures;
* :mod:`~detclip_bench.predict.run`: :func:`predict_images`, the ``detclip-bench predict`` run folder.
"""

from detclip_bench.predict.arrays import PredictionArrays, coco_results
from detclip_bench.predict.draw import draw_detections
from detclip_bench.predict.images import collect_images, image_ids_from, outside_folder, predict_out_dir
from detclip_bench.predict.loop import EXIF_TRANSPOSE, predict_arrays
from detclip_bench.predict.run import DEFAULT_VIS_THRESHOLD, PredictionRun, model_score_threshold, predict_images
from detclip_bench.predict.vocabulary import (
    Vocabulary,
    parse_prompts,
    prompts_for,
    read_vocab,
    suite_union_vocabulary,
    suite_vocabulary,
)

__all__ = [
    "DEFAULT_VIS_THRESHOLD",
    "EXIF_TRANSPOSE",
    "PredictionArrays",
    "PredictionRun",
    "Vocabulary",
    "coco_results",
    "collect_images",
    "draw_detections",
    "image_ids_from",
    "model_score_threshold",
    "outside_folder",
    "parse_prompts",
    "predict_arrays",
    "predict_images",
    "predict_out_dir",
    "prompts_for",
    "read_vocab",
    "suite_union_vocabulary",
    "suite_vocabulary",
]
