"""Exact, fast COCO AP, LVIS standard AP and LVIS Fixed AP, streaming and mergeable across ranks.

The engine is hotcoco (chosen by measurement, see ``benchmarks/eval_bench.py``); pycocotools and
lvis-api remain the oracles the tests compare against.
"""

from detclip_bench.metrics.bootstrap import BootstrapState, bootstrap_ap, paired_bootstrap
from detclip_bench.metrics.coco_ap import CocoEvaluator
from detclip_bench.metrics.factory import make_evaluator
from detclip_bench.metrics.lvis_ap import LvisEvaluator
from detclip_bench.metrics.protocols import COMPUTED_PROTOCOLS, PROTOCOLS, canonical_protocol
from detclip_bench.metrics.results import CategoryRow, EvalResult
from detclip_bench.metrics.score import read_results, score_files

__all__ = [
    "COMPUTED_PROTOCOLS",
    "PROTOCOLS",
    "BootstrapState",
    "CategoryRow",
    "CocoEvaluator",
    "EvalResult",
    "LvisEvaluator",
    "bootstrap_ap",
    "canonical_protocol",
    "make_evaluator",
    "paired_bootstrap",
    "read_results",
    "score_files",
]
