"""Suites are versioned data: which files, which split, which prompts, which metric, how to average.

Pinning all of this in one frozen object (and stamping its version into every result) is what
makes an ODinW or LVIS number comparable across papers: variant folders, val vs test split,
prompt wording and the averaging rule are exactly where published numbers drift.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from detclip_bench.errors import DataError

__all__ = ["EvalTarget", "Suite", "SuiteMember", "member_file_stem", "resolve_data_root"]

Metric = Literal["lvis-fixed", "lvis-standard", "coco"]
PromptStyle = Literal["name-definition", "verbatim"]

DATA_ENV = "DETCLIP_BENCH_DATA"
MINI_ENV = "DETCLIP_BENCH_MINI"


def member_file_stem(member: str) -> str:
    """A member name as a file/folder name (``odinw13/Aquarium`` → ``odinw13_Aquarium``): CSVs, caches, runs."""
    return member.replace("/", "_").replace(" ", "_")


@dataclass(frozen=True)
class EvalTarget:
    """One (dataset, split) a suite scores: an annotation file and the folder its images live in."""

    member: str
    split: str
    annotations: Path
    images: Path
    loader_format: str
    options: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class SuiteMember:
    """A dataset of a suite, with the split used for scoring (and, for fine-tuning, train/val)."""

    name: str
    loader_format: str  # a name in detclip_bench.datasets' format registry
    eval_split: str
    # split -> candidate (annotation file, image dir) pairs relative to the data root, in order of
    # preference (real releases disagree on layout, e.g. pistols flat in GLIP, split folders in mmdet)
    files: dict[str, tuple[tuple[str, str], ...]]
    options: tuple[tuple[str, object], ...] = ()  # extra loader options, e.g. ODinW's verbatim class names

    def target(self, root: Path, split: str | None = None) -> EvalTarget:
        split = split or self.eval_split
        if split not in self.files:
            raise KeyError(f"unknown split {split!r} for {self.name}; known: {', '.join(sorted(self.files))}")
        candidates = self.files[split]
        ann, img = next(((a, i) for a, i in candidates if (root / a).is_file() and (root / i).is_dir()), candidates[0])
        return EvalTarget(self.name, split, root / ann, root / img, self.loader_format, self.options)


@dataclass(frozen=True)
class Suite:
    name: str
    version: str
    description: str
    members: tuple[SuiteMember, ...]
    metrics: tuple[Metric, ...]
    prompt_style: PromptStyle
    max_dets_per_image: int
    setting: Literal["zero-shot", "finetune"] = "zero-shot"
    aggregate: Literal["single", "mean"] = "single"
    mini: bool = False
    download: str = ""
    topk_per_category: int = 10000
    # the score threshold asked of every model (None: the model's own); LVIS lowers it so Fixed AP's
    # per-class pool of 10,000 detections is not starved of low-scoring rare-class boxes
    score_threshold: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError(f"suite {self.name} has no members")
        if self.aggregate == "single" and len(self.members) != 1:
            raise ValueError(f"suite {self.name}: 'single' aggregation needs exactly one member")

    def targets(self, root: Path, split: str | None = None) -> list[EvalTarget]:
        return [m.target(root, split) for m in self.members]

    def check_files(self, root: Path, splits: tuple[str | None, ...] = (None,)) -> None:
        """Raise one error listing every missing file, and where to get it."""
        missing: list[str] = []
        for split in splits:
            for t in self.targets(root, split):
                if not t.annotations.is_file():
                    missing.append(f"  {t.member} [{t.split}] annotations: {t.annotations}")
                if not t.images.is_dir():
                    missing.append(f"  {t.member} [{t.split}] images: {t.images}")
        if missing:
            hint = self.download or "see README 'Data layout'"
            raise DataError(
                str(root), self.name,
                "suite data missing under the data root:\n" + "\n".join(sorted(set(missing))) + f"\nHow to get it: {hint}",
            )

    def manifest(self) -> dict:
        """What goes into every result file, so a number always says how it was produced."""
        return {
            "suite": self.name,
            "version": self.version,
            "setting": self.setting,
            "metrics": list(self.metrics),
            "prompt_style": self.prompt_style,
            "max_dets_per_image": self.max_dets_per_image,
            "topk_per_category": self.topk_per_category,
            "score_threshold": self.score_threshold,
            "aggregate_rule": self.aggregate,  # "single" | "mean"; results.json's "aggregate" holds the numbers
            "members": [{"name": m.name, "split": m.eval_split, "files": [list(c) for c in m.files[m.eval_split]]}
                        for m in self.members],
        }


def resolve_data_root(suite: Suite, data_root: str | os.PathLike | None) -> Path:
    """--data-root wins, then $DETCLIP_BENCH_MINI (mini suites) or $DETCLIP_BENCH_DATA, then ./data or ./mini_world."""
    if data_root:
        return Path(data_root).expanduser()
    env = MINI_ENV if suite.mini else DATA_ENV
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    return Path("mini_world" if suite.mini else "data")
