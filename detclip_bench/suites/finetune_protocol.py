"""Fine-tuning suites: the suite owns the protocol, the model family owns the training.

The protocol (appendix Tables 2–3): every chosen member trains on its ``train`` split; where the suite
fine-tunes per dataset (ODinW13) the member's ``val`` split (``mini_val`` where the suite says so)
selects the weights, through ``evaluate_val(detector) -> AP`` on the suite's primary metric; the
reported number is the suite's eval split scored with the selected weights under every protocol the
suite reports, averaged as the suite says. The result is written exactly like a zero-shot
evaluation (:func:`detclip_bench.suites.runner.write_results`, with ``setting: "fine-tuned"`` and each
member's fine-tuning facts), so leaderboards and ``analyze`` read it the same way.

A model family plugs in by passing a :class:`MemberTrainer`; the DetCLIPv2 one lives with its
trainer (``reference_model.train.member_trainer``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from detclip_bench import dist
from detclip_bench.adapters.base import Detector
from detclip_bench.suites.predictions import predict_target
from detclip_bench.suites.runner import (
    Bootstrap,
    SuiteResult,
    evaluate_suite,
    evaluate_target,
    model_provenance,
    open_for_scoring,
    score_target,
    write_results,
)
from detclip_bench.suites.suite import EvalTarget, Suite, member_file_stem

__all__ = ["HeldOut", "MemberTrainer", "TrainedMember", "finetune_suite", "primary_ap"]

log = logging.getLogger("detclip_bench.suites")

EvaluateVal = Callable[[Detector], float]


@dataclass
class TrainedMember:
    """What a :class:`MemberTrainer` hands back for one member.

    ``detector``: the weights to report (the best-val ones where a val split selects, else the last),
    ready for inference on every rank. ``model_dir``: where they were saved, loadable by ``--model``.
    ``facts``: how they were chosen (best val AP, best epoch, epochs run, early stop, LR decays), JSON-ready.
    """

    detector: Detector
    model_dir: Path | None = None
    facts: dict = field(default_factory=dict)


def _json_facts(facts: dict) -> dict:
    """A non-finite number (a best val AP where no val split selected) becomes null: results.json stays JSON."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in facts.items()}


class MemberTrainer(Protocol):
    """Fine-tune one suite member: train on ``train``, select with ``evaluate_val`` when given, save under ``out_dir``."""

    def __call__(
        self, suite: Suite, member: str, train: EvalTarget, out_dir: Path, *, evaluate_val: EvaluateVal | None
    ) -> TrainedMember: ...


def primary_ap(detector: Detector, suite: Suite, target: EvalTarget, batch_size: int = 8) -> float:
    """The suite's first metric's AP on ``target`` (no prediction cache: the weights keep changing)."""
    primary = suite.metrics[0]
    dataset = open_for_scoring(suite, target, (primary,))
    arrays, _ = predict_target(
        detector, suite, target, cache_dir=None, batch_size=batch_size, progress=False, dataset=dataset
    )
    return float(score_target(suite, target, arrays, protocols=(primary,))[primary].metrics["AP"])


@dataclass(frozen=True)
class HeldOut:
    """A zero-shot suite scored before and after fine-tuning: the open-vocabulary ability fine-tuning keeps.

    ``start`` is the detector fine-tuning starts from; ``root`` the held-out suite's data root.
    """

    suite: Suite
    root: Path
    start: Detector


def _suite_ap(detector: Detector, held: HeldOut, batch_size: int) -> float | None:
    result = evaluate_suite(detector, held.suite, held.root, batch_size=batch_size, progress=False)
    return None if result is None else float(result.aggregate()["AP"])


def finetune_suite(
    train_member: MemberTrainer,
    suite: Suite,
    root: Path,
    out_dir: Path,
    *,
    model: str,
    members: list[str] | None = None,
    batch_size: int = 8,
    progress: bool = True,
    held_out: HeldOut | None = None,
    bootstrap: Bootstrap | None = None,
) -> SuiteResult | None:
    """Fine-tune ``model`` (the spec of the starting weights, for the record) on every member (or ``members``).

    Writes the suite's results into ``out_dir`` and each member's run into ``out_dir/<member>/``; returns
    the result on rank 0 (None elsewhere). With ``held_out``, also scores the start and every fine-tuned
    model zero-shot on that suite (``held_out`` in results.json).
    """
    chosen = [m for m in suite.members if not members or m.name in members or m.name.split("/")[-1] in members]
    if not chosen:
        raise ValueError(
            f"no member of {suite.name} matches {members}; members: {', '.join(m.name for m in suite.members)}"
        )
    selects_on_val = suite.setting == "fine-tuned"  # a zero-shot suite fine-tuned: no selection on val
    splits = ("train", "val", None) if selects_on_val else ("train", None)
    scored = dataclasses.replace(suite, members=tuple(chosen), setting="fine-tuned")
    scored.check_files(root, splits)
    result = SuiteResult(scored, model, "", bootstrap=bootstrap)
    if held_out is not None:
        held_out.suite.check_files(held_out.root)
        result.held_out = {
            "suite": held_out.suite.name,
            "version": held_out.suite.version,
            "protocol": held_out.suite.metrics[0],
            "start_ap": _suite_ap(held_out.start, held_out, batch_size),
            "members": {},
        }
    identities = []
    for member in chosen:
        train_t, test_t = member.target(root, "train"), member.target(root)
        val_t = member.target(root, "val") if selects_on_val and "val" in member.files else None
        log.info("fine-tuning %s on %s", member.name, train_t.annotations)
        trained = train_member(
            scored,
            member.name,
            train_t,
            out_dir / member_file_stem(member.name),
            evaluate_val=(lambda d, t=val_t: primary_ap(d, scored, t, batch_size)) if val_t else None,
        )
        identities.append(trained.detector.identity())
        outcome = evaluate_target(
            trained.detector,
            scored,
            test_t,
            out_dir=out_dir,
            cache_dir=None,
            batch_size=batch_size,
            progress=progress,
            bootstrap=bootstrap,
        )
        if outcome is not None:
            result.record(member.name, outcome, test_t.split)
            result.finetune[member.name] = {
                **({"model": str(trained.model_dir)} if trained.model_dir is not None else {}),
                "identity": identities[-1],
                **_json_facts(trained.facts),
            }
            result.provenance = result.provenance or model_provenance(trained.detector)
        if held_out is not None:
            ap = _suite_ap(trained.detector, held_out, batch_size)
            if ap is not None:
                result.held_out["members"][member.name] = ap
    if not dist.is_main_process():
        return None
    # one identity for the set of fine-tuned weights (a single member: its own)
    result.identity = (
        identities[0] if len(identities) == 1 else hashlib.sha256("\n".join(identities).encode()).hexdigest()
    )
    write_results(result, out_dir)
    return result
