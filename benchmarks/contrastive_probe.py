"""Why does the image-text contrastive loss stay near chance on the mini world? Measurements on checkpoints.

For each checkpoint (e.g. the paired arms of ``reproduce --scale mini``), on the mini world's
CC3M-like pairs in batches of 16 at 128², with the recipe's own collate:

* the word-region score matrix s_T (caption × image): mean of the diagonal (own image) and of the
  rest, their gap, the range of the logits s_T / τ, text→image top-1 accuracy (chance 1/16) and the
  loss against ln 16;
* what a caption's concepts are: how many noun phrases name a mini-world object, how many are the
  whole caption or other words;
* the gradient an image-text step sends into the shared image tower (FPN + head) against a
  detection step's, with the loss weights of the recipe (λ) applied.

    python benchmarks/contrastive_probe.py --world runs/mini/mini_world \\
        --model without=runs/mini/pretrain/o365-goldg-s0/model --model with=runs/mini/pretrain/o365-goldg-cc-s0/model

With ``--runs OUT`` (a finished ``reproduce --scale mini --out OUT``) it reports instead, for every run, the
gauges the claims are judged by, on the held-out pairs (``OUT/mini_world/cc/heldout``): text→image top-1,
the own-image cosine gap, and the training facts of :mod:`recipes.contrastive_gauges`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _batches(world: Path, count: int, batch: int = 16):
    import itertools

    import numpy as np

    from detclip_bench.datasets import open_dataset
    from recipes.claims import MINI_PAIRS
    from reference_model.train.loader import DetCLIPv2Collator

    source = MINI_PAIRS[0]
    dataset = open_dataset(str(world / source.path), format=source.format)
    collate = DetCLIPv2Collator(str(world / "vocabulary.json"))
    samples = list(itertools.islice(iter(dataset), count * batch))
    return [
        collate(samples[i * batch : (i + 1) * batch], source, dataset, np.random.default_rng(i)) for i in range(count)
    ]


def _detection_batch(world: Path):
    import numpy as np

    from detclip_bench.datasets import open_dataset
    from recipes.table1_pretrain import MINI_T
    from reference_model.train.loader import DetCLIPv2Collator

    source = MINI_T.data[0]
    dataset = open_dataset(str(world / source.path), format=source.format)
    collate = DetCLIPv2Collator(str(world / "vocabulary.json"))
    return collate([dataset[i] for i in range(source.batch_size)], source, dataset, np.random.default_rng(0))


def _object_names(world: Path) -> set[str]:
    names = set()
    for c in json.loads((world / "vocabulary.json").read_text())["concepts"]:
        names.update(n.lower() for n in (c["name"], *c.get("synonyms", ())))
    return names


def _scores(model, batch):
    """s_T (captions × images) exactly as the loss computes it (one process), and the proposals kept per image."""
    from recipes.contrastive_gauges import word_region_matrix

    scores, valid = word_region_matrix(model, batch)
    return scores, valid.sum(1).float().mean().item()


def _image_tower_grad_norm(model, batch, weight: float) -> float:
    import torch

    model.zero_grad(set_to_none=True)
    losses = model(batch)
    (losses["loss"]).backward()
    del weight  # the model applies its own loss weights (λ for image-text)
    params = [p for name, p in model.named_parameters() if name.startswith(("fpn.", "head.")) and p.grad is not None]
    norm = torch.sqrt(sum((p.grad.float() ** 2).sum() for p in params)).item() if params else 0.0
    model.zero_grad(set_to_none=True)
    return norm


def probe(model_dir: str, world: Path, batches: list, det_batch) -> dict:
    import torch

    from reference_model.detclipv2 import DetCLIPv2

    torch.manual_seed(0)
    model = DetCLIPv2.from_pretrained(model_dir).eval()
    tau = model.config.contrastive_tau
    diag, off, acc, losses, ranges, kept = [], [], [], [], [], []
    for batch in batches:
        s, n_valid = _scores(model, batch)
        eye = torch.eye(len(s), dtype=torch.bool)
        diag.append(s[eye].mean().item())
        off.append(s[~eye].mean().item())
        acc.append((s.argmax(1) == torch.arange(len(s))).float().mean().item())
        losses.append(torch.nn.functional.cross_entropy(s / tau, torch.arange(len(s))).item())
        ranges.append(((s.max() - s.min()) / tau).item())
        kept.append(n_valid)
    model.train()
    grad_it = statistics.mean(_image_tower_grad_norm(model, b, 1.0) for b in batches[:3])
    grad_det = _image_tower_grad_norm(model, det_batch, 1.0)
    return {
        "model": Path(model_dir).parent.name,
        "tau": tau,  # the run's name, not a path of this machine "lambda": model.config.loss_contrastive,
        "s_diag_mean": statistics.mean(diag),
        "s_offdiag_mean": statistics.mean(off),
        "s_gap": statistics.mean(diag) - statistics.mean(off),
        "logit_range_mean": statistics.mean(ranges),
        "text_to_image_top1": statistics.mean(acc),
        "chance_top1": 1 / len(batches[0]),
        "loss_no_smoothing": statistics.mean(losses),
        "chance_loss": math.log(len(batches[0])),
        "proposals_kept_per_image": statistics.mean(kept),
        "image_tower_grad_norm_image_text_step": grad_it,
        "image_tower_grad_norm_detection_step": grad_det,
        "grad_ratio_image_text_over_detection": grad_it / grad_det if grad_det else float("nan"),
    }


def caption_concepts(batches: list, names: set[str]) -> dict:
    total = whole = objects = 0
    for batch in batches:
        for c, rows in enumerate(batch.caption_concepts):
            for r in rows:
                total += 1
                concept = batch.concepts[r].split(",")[0].lower()
                if r == rows[-1]:
                    whole += 1  # the caption itself is the last concept of every caption
                elif any(concept.endswith(n) for n in names):
                    objects += 1
            del c
    return {
        "concepts": total,
        "whole_caption": whole,
        "name_an_object": objects,
        "other_phrases": total - whole - objects,
    }


def run_gauges(out_dir: Path, results: Path) -> int:
    """The held-out gauges and training facts of every pre-training run of a finished reproduction."""
    from recipes.contrastive_gauges import alignment_gauges, heldout_batches, training_facts
    from reference_model.detclipv2 import DetCLIPv2

    batches = heldout_batches(out_dir / "mini_world")
    rows = {}
    for run in sorted((out_dir / "pretrain").iterdir()):
        if not (run / "model" / "config.json").is_file() or not (run / "metrics.jsonl").is_file():
            continue  # the random-init baseline has no training
        model = DetCLIPv2.from_pretrained(str(run / "model"))
        rows[run.name] = {**alignment_gauges(model, batches), **training_facts(run / "metrics.jsonl")}
    results.parent.mkdir(parents=True, exist_ok=True)
    results.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    keys = ("text_to_image_top1", "cosine_gap", "grad_ratio_first_updates", "detection_loss_change_over_last_epoch")
    from detclip_bench.io import read_json
    from detclip_bench.provenance import git_hash

    world = read_json(out_dir / "mini_world" / "manifest.json")["seed"]
    md = [
        f"# Held-out alignment gauges per run ({len(batches)} batches of 16 held-out pairs; chance top-1 0.0625)",
        "",
        f"`python benchmarks/contrastive_probe.py --runs OUT` on a `reproduce --scale mini --train-seeds 0 1 2 3` "
        f"output (world seed {world}), git {git_hash()}.",
        "",
        "| run | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    md += [
        f"| {name} | " + " | ".join("–" if r.get(k) is None else f"{r[k]:.4g}" for k in keys) + " |"
        for name, r in rows.items()
    ]
    results.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", help="mini world folder (--model mode)")
    parser.add_argument("--model", action="append", metavar="LABEL=DIR")
    parser.add_argument("--runs", help="a finished `reproduce --scale mini` output folder: every run's gauges")
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--out", help="results file stem (default: benchmarks/results/contrastive_probe[_runs])")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    if args.runs:
        return run_gauges(Path(args.runs), Path(args.out or RESULTS / "contrastive_probe_runs"))
    if not (args.world and args.model):
        parser.error("give --runs OUT, or --world and --model")
    args.out = args.out or str(RESULTS / "contrastive_probe")
    world = Path(args.world)
    batches = _batches(world, args.batches)
    det_batch = _detection_batch(world)
    report = {
        "batches": args.batches,
        "pairs_per_batch": len(batches[0]),
        "caption_concepts": caption_concepts(batches, _object_names(world)),
        "models": {
            label: probe(path, world, batches, det_batch) for label, path in (m.split("=", 1) for m in args.model)
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    keys = [
        "s_diag_mean",
        "s_offdiag_mean",
        "s_gap",
        "logit_range_mean",
        "text_to_image_top1",
        "loss_no_smoothing",
        "proposals_kept_per_image",
        "image_tower_grad_norm_image_text_step",
        "image_tower_grad_norm_detection_step",
        "grad_ratio_image_text_over_detection",
    ]
    md = [
        "# Contrastive probe (mini world, batches of 16 pairs at 128²)",
        "",
        f"Caption concepts: {report['caption_concepts']}",
        "",
        "| measure | " + " | ".join(report["models"]) + " |",
        "|---|" + "---|" * len(report["models"]),
    ]
    md += [f"| {k} | " + " | ".join(f"{m[k]:.4g}" for m in report["models"].values()) + " |" for k in keys]
    md += ["", f"chance: top-1 {1 / len(batches[0]):.4f}, loss ln 16 = {math.log(len(batches[0])):.4f}"]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
