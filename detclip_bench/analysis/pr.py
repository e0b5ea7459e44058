"""Precision-recall curves at IoU 0.5 from *our* evaluator's engine, under the run's protocol.

The curve is the mean over categories with GT of the 101-point interpolated precision, i.e.
exactly the cells AP50 averages: the area under the plotted curve (mean of its points) is the
AP50 in results.json, which the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detclip_bench.analysis.run_dir import MemberRun
from detclip_bench.metrics import make_evaluator
from detclip_bench.suites.suite import Suite

__all__ = ["PRCurve", "pr_curve"]

RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass
class PRCurve:
    member: str
    protocol: str
    recall: np.ndarray  # (101,)
    precision: np.ndarray  # (101,) mean over categories with GT
    per_category: dict[int, np.ndarray]  # category id -> (101,) precision

    @property
    def ap50(self) -> float:
        return float(self.precision.mean()) if self.per_category else -1.0


def pr_curve(suite: Suite, member: MemberRun, protocol: str) -> PRCurve:
    ev = make_evaluator(str(member.target.annotations), protocol, **suite.evaluator_budget(protocol))
    p = member.predictions
    ev.update(p.image_ids, p.boxes, p.scores, p.category_ids)
    _, acc = ev.accumulated()
    prec = acc.precision[0, :, :, 0, -1]  # IoU 0.5, all recall points, every category, area all, largest cap
    per_cat = {int(c): prec[:, k] for k, c in enumerate(acc.category_ids.tolist()) if (prec[:, k] > -1).all()}
    mean = np.mean(np.stack(list(per_cat.values())), axis=0) if per_cat else np.zeros(101)
    return PRCurve(member.member, protocol, RECALL_POINTS.copy(), mean, per_cat)
