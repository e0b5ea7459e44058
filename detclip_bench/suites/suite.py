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

from detclip_bench.datasets import open_dataset
from detclip_bench.datasets.layouts import resolve_dataset_roots
from detclip_bench.errors import DataError, UnknownNameError
from detclip_bench.metrics.protocols import COMPUTED_PROTOCOLS, ComputedProtocol

__all__ = ["SETTINGS", "EvalTarget", "Setting", "Suite", "SuiteMember", "member_file_stem", "resolve_data_root"]

Metric = ComputedProtocol  # a suite reports only protocols the toolkit computes
PromptStyle = Literal["name-definition", "verbatim"]
# what is done to the weights before scoring, spelled as results.json and the leaderboards spell it
Setting = Literal["zero-shot", "fine-tuned"]
SETTINGS: tuple[Setting, ...] = ("zero-shot", "fine-tuned")

DATA_ENV = "DETCLIP_BENCH_DATA"
MINI_ENV = "DETCLIP_BENCH_MINI"


def member_file_stem(member: str) -> str:
    """A member name as a file/folder name (``odinw13/Aquarium`` → ``odinw13_Aquarium``): CSVs, caches, runs."""
    return member.replace("/", "_").replace(" ", "_")


@dataclass(frozen=True)
class EvalTarget:
    """One (dataset, split) a suite scores: an annotation file and the folder its images live in.

    Made by :meth:`SuiteMember.target` / :meth:`Suite.targets`, with paths resolved under a data
    root (the first candidate pair whose file and folder both exist, else the first candidate, so a
    missing file is reported by :meth:`Suite.check_files` or by the loader). The annotation file is
    both what the model predicts on (:meth:`open`) and the GT the evaluators score against.

    Args:
        member: the member name (``"lvis-minival"``, ``"odinw13/Aquarium"``); names result rows,
            CSVs and caches (via :func:`member_file_stem`).
        split: the split these files hold (``"val"``, ``"test"``, ``"train"``).
        annotations: the annotation json (COCO/LVIS style).
        images: the folder the json's image file names resolve under.
        loader_format: the :data:`~detclip_bench.datasets.DATASET_FORMATS` name that opens it.
        options: extra loader keyword options as (name, value) pairs, e.g. ODinW's ``class_names``.
    """

    member: str
    split: str
    annotations: Path
    images: Path
    loader_format: str
    options: tuple[tuple[str, object], ...] = ()

    def open(self):
        """The target's dataset (GT images + vocabulary), opened with the project's loader for its format."""
        return open_dataset(self.annotations, format=self.loader_format, image_root=self.images, **dict(self.options))


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
            raise UnknownNameError("split", f"{split!r} for {self.name}", sorted(self.files))
        candidates = self.files[split]
        ann, img = next(((a, i) for a, i in candidates if (root / a).is_file() and (root / i).is_dir()), candidates[0])
        return EvalTarget(self.name, split, root / ann, root / img, self.loader_format, self.options)


@dataclass(frozen=True)
class Suite:
    """A versioned benchmark definition: which files and split, which prompts, which metrics, how to average.

    A suite is frozen data (registered by name in :data:`detclip_bench.suites.SUITES`); its
    :meth:`manifest` is stamped into every ``results.json``, so a number always says how it was
    produced. Evaluating one (``detclip-bench eval``, :func:`~detclip_bench.suites.runner.evaluate_suite`)
    opens each member's :class:`EvalTarget`, asks the model for at most ``max_dets_per_image``
    detections per image above ``score_threshold`` (xyxy boxes in original image pixels, labels
    indexing the prompt list), scores them under every protocol in ``metrics``, and aggregates the
    members' numbers by ``aggregate``. The first protocol in ``metrics`` is the suite's primary one.

    Args:
        name: the registry name (``"lvis-minival"``, ``"odinw13"``, ``"mini-lvis"``, ...).
        version: stamped into every result and into the prediction-cache path (so predictions
            cached under another version are not reused).
        description: one human-readable line for listings and reports.
        members: the datasets scored (at least one), each a :class:`SuiteMember`.
        metrics: the computed protocols reported (``"lvis-fixed"``, ``"lvis-standard"``, ``"coco"``).
        prompt_style: the text the model sees per category: ``"name-definition"`` (``"name,
            definition"``, LVIS) or ``"verbatim"`` (the dataset's names as they are, ODinW).
        max_dets_per_image: the model's output budget per image, also the per-image cap of the
            ``coco`` and ``lvis-standard`` evaluators (Fixed AP has none; see :meth:`evaluator_budget`).
        setting: ``"zero-shot"`` (the model is scored as given) or ``"fine-tuned"`` (a per-member
            fine-tuning protocol: :func:`~detclip_bench.suites.finetune_protocol.finetune_suite` trains on each
            member's train split and selects the weights on its val split before scoring ``eval_split``;
            fine-tuning a zero-shot suite trains without that selection). A result is stamped with the
            setting it was scored in (``results.json``'s ``"setting"``, the leaderboards' spelling).
        aggregate: ``"single"`` (exactly one member; its numbers are the suite's) or ``"mean"``
            (unweighted mean over members, recomputed from the rows).
        mini: a suite over the generated mini world (its data root defaults to ``$DETCLIP_BENCH_MINI``
            or ``./mini_world``; see :func:`resolve_data_root`).
        download: how to get the data, printed when files are missing.
        topk_per_category: Fixed AP's K per category (default 10,000).
        score_threshold: the score threshold asked of every model (None: the model's own).
        extra: free-form string notes.

    Example::

        >>> from detclip_bench.suites import SUITES
        >>> suite = SUITES.get("lvis-minival")
        >>> root = resolve_data_root(suite, None)
        >>> suite.check_files(root)  # one DataError listing every missing file
        >>> [t.annotations for t in suite.targets(root)]
    """

    name: str
    version: str
    description: str
    members: tuple[SuiteMember, ...]
    metrics: tuple[Metric, ...]
    prompt_style: PromptStyle
    max_dets_per_image: int
    setting: Setting = "zero-shot"
    aggregate: Literal["single", "mean"] = "single"
    mini: bool = False
    download: str = ""
    topk_per_category: int = 10000
    # the score threshold asked of every model (None: the model's own); LVIS lowers it so Fixed AP's
    # per-class pool of 10,000 detections is not starved of low-scoring rare-class boxes
    score_threshold: float | None = None
    extra: dict[str, str] = field(default_factory=dict)
    suite_file: str | None = None  # the JSON/YAML file a lab's own suite was read from (docs/suites.md)
    # a --dataset suite: how to build it again ({"spec", "finetune", "prompts"}; docs/suites.md)
    dataset: dict | None = None

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError(f"suite {self.name} has no members")
        if self.aggregate == "single" and len(self.members) != 1:
            raise ValueError(f"suite {self.name}: 'single' aggregation needs exactly one member")
        if self.setting not in SETTINGS:
            raise ValueError(f"suite {self.name}: setting {self.setting!r} is not one of {list(SETTINGS)}")
        unknown = [m for m in self.metrics if m not in COMPUTED_PROTOCOLS]
        if unknown:
            raise ValueError(
                f"suite {self.name}: {unknown} not among the computed protocols {list(COMPUTED_PROTOCOLS)}"
            )

    def evaluator_budget(self, protocol: str) -> dict[str, int]:
        """``make_evaluator``'s budget for ``protocol`` under this suite: Fixed AP's K per category (it has no
        per-image cap), the suite's per-image cap for the others."""
        if protocol == "lvis-fixed":
            return {"topk_per_category": self.topk_per_category}
        return {"max_dets_per_image": self.max_dets_per_image}

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
                str(root),
                self.name,
                "suite data missing under the data root:\n"
                + "\n".join(sorted(set(missing)))
                + f"\nHow to get it: {hint}",
            )

    def manifest(self) -> dict:
        """What goes into every result file, so a number always says how it was produced."""
        return {
            "suite": self.name,
            **({"suite_file": self.suite_file} if self.suite_file else {}),
            **({"dataset": self.dataset} if self.dataset else {}),
            "version": self.version,
            "setting": self.setting,
            "metrics": list(self.metrics),
            "prompt_style": self.prompt_style,
            "max_dets_per_image": self.max_dets_per_image,
            "topk_per_category": self.topk_per_category,
            "score_threshold": self.score_threshold,
            "aggregate_rule": self.aggregate,  # "single" | "mean"; results.json's "aggregate" holds the numbers
            "members": [
                {"name": m.name, "split": m.eval_split, "files": [list(c) for c in m.files[m.eval_split]]}
                for m in self.members
            ],
        }


def resolve_data_root(suite: Suite, data_root: str | os.PathLike | None, data_map=None):
    """--data-root wins, then $DETCLIP_BENCH_MINI (mini suites) or $DETCLIP_BENCH_DATA, then ./data or ./mini_world.

    With ``data_map`` (``--data-map name=folder,...``) each named dataset is read from its own folder, whatever
    its layout (:func:`detclip_bench.datasets.layouts.resolve_dataset_roots`); the root is then a ``DataRoots``.
    """
    if data_root:
        root = Path(data_root).expanduser()
    else:
        env = MINI_ENV if suite.mini else DATA_ENV
        root = (
            Path(os.environ[env]).expanduser() if os.environ.get(env) else Path("mini_world" if suite.mini else "data")
        )
    return resolve_dataset_roots(root, data_map) if data_map else root
