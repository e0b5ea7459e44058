"""``detclip-bench finetune``: fine-tune a checkpoint on LVIS (Table 2), every ODinW13 member (Table 3), or your
own COCO/Roboflow dataset with the ODinW13 protocol."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from detclip_bench.cli.options import (
    add_batch_size_option,
    add_bootstrap_options,
    add_data_map_option,
    add_data_root_option,
    bootstrap_from_args,
)
from detclip_bench.suites.runner import DEFAULT_BOOTSTRAP

if TYPE_CHECKING:
    from reference_model.train.config import TrainConfig

EPILOG = """examples:
  detclip-bench finetune --model runs/mini/pretrain/model --suite mini-odinw13 --data-root mini_world
  detclip-bench finetune --model runs/mini/pretrain/model --suite mini-odinw13 --members Aquarium pothole
  detclip-bench finetune --model ckpt/ --suite odinw13 --data-root /data --out runs/odinw13-ft
  detclip-bench finetune --model ckpt/ --suite lvis --data-root /data --set schedule.epochs=12
  # your own Roboflow/COCO export (train/ valid/ test/), and what the model keeps zero-shot on LVIS minival
  detclip-bench finetune --model ckpt/ --dataset ~/Downloads/widgets.v3i.coco --held-out lvis-minival --data-root /data

ODinW13: per dataset, early stop on val (mini_val where the suite says so), test AP of the best-val
checkpoint, unweighted mean over the 13. LVIS: 24 epochs cosine on lvis_v1_train, scored on val.

Scale: without --scale, a mini-* suite (or a suite file marked mini) trains the mini recipe; odinw13, lvis,
--dataset and other suite files train the FULL paper recipe (ODinW: up to 250 epochs at 1333x800, batch 32),
which on a CPU takes days: add --scale mini for a first try. On a CPU a full run says so when it starts and
logs its expected duration after its first steps.
"""

SCALE_HELP = (
    "recipe scale (default: the suite's own: mini for mini-odinw13, mini-lvis and mini suite files; full, the "
    "paper's recipe, for odinw13, lvis, --dataset and other suite files)"
)
# timed steps (after the first) before a full run on a CPU logs how long it will take
ESTIMATE_AFTER_STEPS = 5

log = logging.getLogger("detclip_bench.finetune")

# suite given on the command line -> (suite that is scored, recipe that trains)
FINETUNE_SUITES = {
    "odinw13": ("odinw13-finetune", "table3-odinw13-finetune"),
    "lvis": ("lvis-val", "table2-lvis-finetune"),
}


def resolve(name: str) -> tuple[str, str, bool]:
    """``mini-odinw13`` → (``mini-odinw13-finetune``, recipe, mini=True); accepts the scored names too."""
    mini = name.startswith("mini-")
    base = name.removeprefix("mini-").removesuffix("-finetune")
    base = "lvis" if base in ("lvis-val", "lvis-minival") else base
    if base not in FINETUNE_SUITES:
        raise ValueError(f"cannot fine-tune on {name!r}; choose odinw13 or lvis (or mini-odinw13, mini-lvis)")
    suite, recipe = FINETUNE_SUITES[base]
    return ("mini-" + suite if mini else suite), recipe, mini


def add_parser(subparsers) -> None:
    from recipes.cli.train import add_common_args

    p = subparsers.add_parser(
        "finetune",
        help="fine-tune on LVIS, ODinW13 (Tables 2–3) or your own dataset",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="a save_pretrained directory (e.g. <train out>/model) or hub id")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--suite", help="odinw13 | lvis | mini-odinw13 | mini-lvis, or a suite file (.json/.yaml)")
    which.add_argument(
        "--dataset",
        metavar="SPEC",
        help="your own dataset: a Roboflow/COCO export folder "
        "(train/ valid/ test/), or train=A.json,val=B.json,test=C.json; trained with Table 3's recipe",
    )
    p.add_argument("--prompts", help="with --dataset: one prompt per category in id order, comma-separated")
    p.add_argument(
        "--held-out",
        metavar="SUITE",
        help="also score the start and the fine-tuned weights zero-shot "
        "on this suite (e.g. lvis-minival): what fine-tuning keeps of the open vocabulary",
    )
    p.add_argument(
        "--held-out-data-root", metavar="DIR", help="data root of --held-out (default: as `eval` resolves it)"
    )
    add_data_root_option(p)
    add_data_map_option(p)
    add_common_args(p, scale_default=None, scale_help=SCALE_HELP, out_help="default runs/finetune/<suite name>")
    p.add_argument("--members", nargs="*", default=None, help="fine-tune only these members (e.g. Aquarium)")
    add_batch_size_option(p)
    add_bootstrap_options(p, default=DEFAULT_BOOTSTRAP)
    p.set_defaults(func=run)


def full_on_cpu_warning(cfg: TrainConfig) -> str:
    """What a full recipe on a CPU means, in numbers from the recipe itself, and the way out."""
    data = cfg.data[0]
    epochs = f"up to {cfg.schedule.epochs}" if cfg.schedule.kind == "auto_step" else f"{cfg.schedule.epochs}"
    return (
        f"the FULL recipe {cfg.name} is starting on the CPU: {epochs} epochs per member at "
        f"{data.size[0]}x{data.size[1]}, batch {data.batch_size}; that takes days. For a first try use "
        "--scale mini (or a GPU: --device cuda). The expected duration is logged after the first "
        f"{ESTIMATE_AFTER_STEPS + 1} steps."
    )


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    import sys
    from pathlib import Path

    from detclip_bench.suites import dataset_suite, get_suite, resolve_data_root
    from detclip_bench.suites.custom import is_suite_file, parse_prompts
    from recipes import get_recipe
    from reference_model.train.config import apply_overrides, config_to_dict

    try:
        if args.dataset:
            suite = dataset_suite(args.dataset, finetune=True, prompts=parse_prompts(args.prompts))
            recipe, mini = FINETUNE_SUITES["odinw13"][1], False
        elif is_suite_file(args.suite):  # a lab's own suite: every member with Table 3's protocol
            suite = get_suite(args.suite)
            recipe, mini = FINETUNE_SUITES["odinw13"][1], suite.mini
        else:
            suite_name, recipe, mini = resolve(args.suite)
            suite = get_suite(suite_name)
        scale = args.scale or ("mini" if mini else "full")  # as SCALE_HELP says
        cfg = apply_overrides(get_recipe(recipe, scale), args.overrides)
    except (ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, init_from=args.model))
    if args.dump_config:
        print(json.dumps(config_to_dict(cfg), indent=2))
        return 0
    from detclip_bench.adapters.models import load_detector
    from detclip_bench.dist import cleanup, init_distributed
    from detclip_bench.suites.finetune_protocol import HeldOut, finetune_suite
    from reference_model.train.member_trainer import DetCLIPv2MemberTrainer

    root = resolve_data_root(suite, args.data_root, args.data_map)
    out = Path(args.out or f"runs/finetune/{suite.name}")
    ctx = init_distributed(args.device)
    full_on_cpu = scale == "full" and ctx.device.type == "cpu"
    if full_on_cpu and ctx.is_main:
        log.warning(full_on_cpu_warning(cfg))
    held_out = None
    if args.held_out:
        held = get_suite(args.held_out)
        held_out = HeldOut(
            held, resolve_data_root(held, args.held_out_data_root), load_detector(args.model, device=str(ctx.device))
        )
    result = finetune_suite(
        DetCLIPv2MemberTrainer(cfg, ctx=ctx, estimate_after=ESTIMATE_AFTER_STEPS if full_on_cpu else 0),
        suite,
        root,
        out,
        model=args.model,
        members=args.members,
        batch_size=args.batch_size,
        held_out=held_out,
        bootstrap=bootstrap_from_args(args),
    )
    if result is not None:
        print(result.summary_line())
        if result.held_out:
            after = " ".join(f"{m.split('/')[-1]}={100 * ap:.1f}" for m, ap in result.held_out["members"].items())
            print(
                f"zero-shot {result.held_out['suite']} [{result.held_out['protocol']}] AP: start "
                f"{100 * result.held_out['start_ap']:.1f} → fine-tuned {after}"
            )
        print(f"results: {out / 'results.json'} (+ results.md, per-category CSV, predictions/)")
        for member, facts in result.finetune.items():
            if "model" in facts:  # what --model takes to use the fine-tuned weights
                print(f"fine-tuned model ({member}): {facts['model']}")
    cleanup()
    return 0
