"""Fine-tuning suites: train on each member's train split, select on val, report the suite's metric.

This is where a training recipe (appendix Tables 2–3) meets a suite's data layout and metric:
the member's ``train`` files become the recipe's single data source, model selection and early
stop read the suite's primary AP on ``val`` (``mini_val`` where the suite says so), and the
reported number is the suite's ``eval_split`` of the best-val weights. Every member's final
weights are kept as a ``save_pretrained`` folder, loadable by ``detclip-bench eval --model``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

from detclip_bench.suites.predict import predict_target
from detclip_bench.suites.runner import score_target
from detclip_bench.suites.suite import EvalTarget, Suite, member_file_stem

__all__ = ["finetune_suite", "member_config", "primary_ap"]

log = logging.getLogger("detclip_bench.suites")


def member_config(cfg, suite: Suite, target: EvalTarget):
    """The recipe with its one data source pointed at ``target`` (format, image folder, loader options)."""
    if len(cfg.data) != 1:
        raise ValueError(f"fine-tuning recipes take one data source, {cfg.name} has {len(cfg.data)}")
    options = (("image_root", str(target.images)), *target.options)
    source = dataclasses.replace(cfg.data[0], name=member_file_stem(target.member), path=str(target.annotations),
                                 format=target.loader_format, options=options)
    return dataclasses.replace(cfg, data=(source,), suite=suite.name)


def primary_ap(model, suite: Suite, target: EvalTarget, batch_size: int = 8) -> float:
    """The suite's first metric's AP on ``target`` (no prediction cache: the weights keep changing)."""
    arrays, _ = predict_target(model, suite, target, cache_dir=None, batch_size=batch_size, progress=False)
    primary = suite.metrics[0]
    return float(score_target(suite, target, arrays, protocols=(primary,))[primary].metrics["AP"])


def finetune_suite(cfg, suite: Suite, root: Path, out_dir: Path, *, members: list[str] | None = None,
                   ctx=None, batch_size: int = 8, progress: bool = True) -> dict[str, Any]:
    """Fine-tune ``cfg.model.init_from`` on every member (or ``members``); returns the suite report."""
    from reference_model.train.build import build_model, open_sources
    from reference_model.train.checkpoint import unwrap
    from reference_model.train.finetune import finetune, write_suite_report

    chosen = [m for m in suite.members if not members or m.name in members or m.name.split("/")[-1] in members]
    if not chosen:
        raise ValueError(f"no member of {suite.name} matches {members}; members: "
                         f"{', '.join(m.name for m in suite.members)}")
    splits = ("train", "val", None) if suite.setting == "finetune" else ("train", None)
    dataclasses.replace(suite, members=tuple(chosen)).check_files(root, splits)
    results = []
    for member in chosen:
        train_t, test_t = member.target(root, "train"), member.target(root)
        val_t = member.target(root, "val") if "val" in member.files and suite.setting == "finetune" else None
        mcfg = member_config(cfg, suite, train_t)
        model = build_model(mcfg)
        out = out_dir / member_file_stem(member.name)
        log.info("fine-tuning %s on %s", member.name, train_t.annotations)
        result = finetune(
            mcfg, model, open_sources(mcfg)[0], out, member=member.name, ctx=ctx, progress=progress,
            evaluate_val=(lambda m, t=val_t: primary_ap(m, suite, t, batch_size)) if val_t else None,
            evaluate_test=lambda m, t=test_t: primary_ap(m, suite, t, batch_size),
        )
        if ctx is None or ctx.is_main:
            unwrap(model).save_pretrained(out / "model")
        results.append(result)
    models = {r.member: str(out_dir / member_file_stem(r.member) / "model") for r in results}
    return write_suite_report(results, out_dir, suite.name, extra={"models": models})
