"""DetCLIPv2 as a fine-tunable model family: the :class:`~detclip_bench.suites.finetune_protocol.MemberTrainer`
that ``detclip-bench finetune`` and ``reproduce`` hand to the suite's fine-tuning protocol.

A fine-tuning recipe (appendix Tables 2–3) has one data source; for each member it is pointed at the
member's ``train`` files (format, image folder, loader options) and trained from ``model.init_from``.
The selected weights are kept as a ``save_pretrained`` folder, loadable by ``--model``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from detclip_bench.dist import DistContext
from detclip_bench.suites.finetune_protocol import EvaluateVal, TrainedMember
from detclip_bench.suites.suite import EvalTarget, Suite, member_file_stem
from reference_model.train.build import build_model, open_sources
from reference_model.train.checkpoint import unwrap
from reference_model.train.config import TrainConfig
from reference_model.train.finetune import finetune

__all__ = ["DetCLIPv2MemberTrainer", "member_config"]


def member_config(cfg: TrainConfig, suite: Suite, target: EvalTarget) -> TrainConfig:
    """The recipe with its one data source pointed at ``target`` (format, image folder, loader options)."""
    if len(cfg.data) != 1:
        raise ValueError(f"fine-tuning recipes take one data source, {cfg.name} has {len(cfg.data)}")
    options = (("image_root", str(target.images)), *target.options)
    source = dataclasses.replace(
        cfg.data[0],
        name=member_file_stem(target.member),
        path=str(target.annotations),
        format=target.loader_format,
        options=options,
    )
    return dataclasses.replace(cfg, data=(source,), suite=suite.name)


@dataclasses.dataclass
class DetCLIPv2MemberTrainer:
    """Fine-tunes ``cfg`` (its ``model.init_from`` the starting checkpoint) on one suite member at a time.

    ``estimate_after``: per member, log the expected duration after that many timed steps (0: never); the
    ``finetune`` verb sets it when a full recipe runs on a CPU.
    """

    cfg: TrainConfig
    ctx: DistContext | None = None
    progress: bool = True
    estimate_after: int = 0

    def __call__(
        self, suite: Suite, member: str, train: EvalTarget, out_dir: Path, *, evaluate_val: EvaluateVal | None
    ) -> TrainedMember:
        mcfg = member_config(self.cfg, suite, train)
        model = build_model(mcfg)
        outcome = finetune(
            mcfg,
            model,
            open_sources(mcfg)[0],
            out_dir,
            member=member,
            ctx=self.ctx,
            progress=self.progress,
            evaluate_val=evaluate_val,
            estimate_after=self.estimate_after,
        )
        detector = unwrap(model).eval()
        if self.ctx is None or self.ctx.is_main:
            detector.save_pretrained(out_dir / "model")
        facts = {
            "best_val_ap": outcome.best_val_ap,  # NaN without a val split; the protocol writes it as null
            "best_epoch": outcome.best_epoch,
            "epochs_run": outcome.epochs_run,
            "stopped_early": outcome.stopped_early,
            "lr_decays": outcome.num_decays,
        }
        return TrainedMember(detector=detector, model_dir=out_dir / "model", facts=facts)
