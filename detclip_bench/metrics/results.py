"""Typed evaluation results: one object that says which protocol produced every number.

Papers mix LVIS Fixed AP and standard AP up; every rendering here (JSON, markdown, one-line
summary, per-category DataFrame) carries the protocol name and its detection budget.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field

import numpy as np

from detclip_bench.metrics.protocols import COMPUTED_PROTOCOLS, PROTOCOLS

__all__ = ["CategoryRow", "EvalResult"]


@dataclass
class CategoryRow:
    id: int
    name: str
    frequency: str | None  # LVIS r/c/f group; None for COCO
    ap: float  # NaN when the category has no usable GT (excluded from every mean)
    num_gt: int
    num_dets: int  # detections of this category that entered evaluation (after the caps)


@dataclass
class EvalResult:
    protocol: str  # one of COMPUTED_PROTOCOLS
    metrics: dict[str, float]  # the reference tools' keys, fractions in [0, 1] (-1 = undefined, as the oracles)
    topk_per_category: int | None = None  # Fixed AP's K
    max_dets_per_image: int | None = None  # per-image cap applied before evaluation (None = none)
    num_images: int = 0
    num_categories: int = 0
    num_gt: int = 0
    num_detections_received: int = 0
    num_detections_evaluated: int = 0
    categories: list[CategoryRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    engine: str = "hotcoco"
    # image-level bootstrap per key (``detclip_bench.metrics.bootstrap.bootstrap_ap``); None when not run
    intervals: dict[str, dict] | None = None
    # the bootstrap's replicate values per key, kept in memory for suite averages and never written
    replicates: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.protocol not in COMPUTED_PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; expected one of {list(COMPUTED_PROTOCOLS)}")

    @property
    def protocol_description(self) -> str:
        return PROTOCOLS[self.protocol]

    def budget(self) -> str:
        parts = []
        if self.topk_per_category is not None:
            parts.append(f"K={self.topk_per_category}/category")
        parts.append(f"max {self.max_dets_per_image}/image" if self.max_dets_per_image else "no per-image cap")
        return ", ".join(parts)

    def summary_line(self) -> str:
        shown = [k for k in ("AP", "AP50", "AP75", "APr", "APc", "APf") if k in self.metrics]
        values = " ".join(f"{k}={100 * self.metrics[k]:.2f}{self._interval_text(k, ' ')}" for k in shown)
        return f"[{self.protocol}] {values} ({self.budget()}; {self.num_images} images, {self.num_detections_evaluated} dets)"

    def _interval_text(self, key: str, prefix: str = "") -> str:
        """`` [lo, hi]`` in percent for a key with a bootstrap interval, else empty."""
        entry = (self.intervals or {}).get(key)
        if not entry or entry.get("interval") is None:
            return ""
        lo, hi = entry["interval"]
        return f"{prefix}[{100 * lo:.2f}, {100 * hi:.2f}]"

    def to_dict(self, per_category: bool = False) -> dict:
        out = asdict(dataclasses.replace(self, replicates=None))
        out.pop("replicates")
        if self.intervals is None:
            out.pop("intervals")
        out["protocol_description"] = self.protocol_description
        if not per_category:
            out.pop("categories")
        else:
            for row in out["categories"]:
                row["ap"] = None if math.isnan(row["ap"]) else row["ap"]
        return out

    def to_json(self, per_category: bool = True, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(per_category), indent=indent)

    def to_dataframe(self):
        """One row per category: AP, #GT, #dets, frequency group (pandas)."""
        import pandas as pd

        cols = ["id", "name", "frequency", "ap", "num_gt", "num_dets"]
        return pd.DataFrame([asdict(r) for r in self.categories], columns=cols).set_index("id")

    def to_markdown(self) -> str:
        lines = [f"**{self.protocol}** — {self.protocol_description}; {self.budget()}", ""]
        if self.intervals is None:
            lines += ["| metric | value (%) |", "|---|---:|"]
            lines += [f"| {k} | {100 * v:.2f} |" if v >= 0 else f"| {k} | n/a |" for k, v in self.metrics.items()]
        else:
            conf = next((e["confidence"] for e in self.intervals.values() if "confidence" in e), 0.95)
            lines += [f"| metric | value (%) | {100 * conf:g}% interval (%) |", "|---|---:|---:|"]
            lines += [
                f"| {k} | {100 * v:.2f} | {self._interval_text(k) or 'n/a'} |" if v >= 0 else f"| {k} | n/a | n/a |"
                for k, v in self.metrics.items()
            ]
        lines += [
            "",
            f"{self.num_images} images, {self.num_categories} categories, {self.num_gt} GT boxes, "
            f"{self.num_detections_received} detections received, {self.num_detections_evaluated} evaluated.",
        ]
        if self.intervals:
            some = next(iter(self.intervals.values()))
            lines.append(
                f"Intervals: percentile bootstrap over images ({some.get('n_replicates', '?')} replicates, "
                f"seed {some.get('seed', '?')}): the spread from drawing another image set like this one, not "
                "another dataset or training run (docs/eval.md §7)."
            )
        lines += [f"> warning: {w}" for w in self.warnings]
        return "\n".join(lines) + "\n"
