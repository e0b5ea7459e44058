"""What `eval`'s default bootstrap adds to an evaluation: seconds of the intervals against the evaluation itself.

    python benchmarks/bootstrap_share.py --model OUT/pretrain/claims-mini-o365-goldg-cc-s0/model \\
        --data-root OUT/mini_world [--suite mini-lvis --suite mini-odinw13] [--replicates 1000]

For each suite: one evaluation as `eval --bootstrap 0` runs it (the model predicts every image, the
evaluator scores), timed; then every member re-scored from the predictions that run wrote, once without and
once with the bootstrap, so the difference is what the intervals cost. Wall and CPU seconds (all threads).
Writes benchmarks/results/<stem>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def _timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def measure(model: str, suite_name: str, data_root: Path, replicates: int, batch_size: int) -> dict:
    from detclip_bench.adapters.models import load_detector
    from detclip_bench.predict.arrays import PredictionArrays
    from detclip_bench.suites import get_suite
    from detclip_bench.suites.runner import Bootstrap, evaluate_suite, predictions_path, score_target

    suite = get_suite(suite_name)
    detector = load_detector(model)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        _, eval_wall, eval_cpu = _timed(
            lambda: evaluate_suite(detector, suite, data_root, out_dir=out, batch_size=batch_size, progress=False)
        )
        plain_wall = plain_cpu = boot_wall = boot_cpu = 0.0
        images = detections = 0
        for target in suite.targets(data_root):
            arrays, _ = PredictionArrays.load(predictions_path(out, target))
            images += len(set(arrays.image_ids.tolist()))
            detections += len(arrays.scores)
            _, w, c = _timed(lambda: score_target(suite, target, arrays))  # noqa: B023 (called at once)
            plain_wall, plain_cpu = plain_wall + w, plain_cpu + c
            _, w, c = _timed(lambda: score_target(suite, target, arrays, bootstrap=Bootstrap(replicates)))  # noqa: B023
            boot_wall, boot_cpu = boot_wall + w, boot_cpu + c
    extra_wall, extra_cpu = boot_wall - plain_wall, boot_cpu - plain_cpu
    return {
        "suite": suite_name,
        "members": len(suite.members),
        "images": images,
        "detections": detections,
        "eval_wall_seconds": eval_wall,
        "eval_cpu_seconds": eval_cpu,
        "bootstrap_wall_seconds": extra_wall,
        "bootstrap_cpu_seconds": extra_cpu,
        "share_wall": extra_wall / eval_wall,
        "share_cpu": extra_cpu / eval_cpu,
    }


def render(report: dict) -> str:
    lines = [
        "# What the default bootstrap adds to `eval`",
        "",
        f"Machine: {report['machine']}; load average {report['load_average']} when it started. "
        f"Model: `{report['model']}`; {report['replicates']:,} replicates; torch threads {report['threads']}. "
        f"{report['note']}",
        "",
        "| suite | members | images | detections | eval s (wall / CPU) | bootstrap s (wall / CPU) | added |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["suites"]:
        lines.append(
            f"| {r['suite']} | {r['members']} | {r['images']:,} | {r['detections']:,} | "
            f"{r['eval_wall_seconds']:.1f} / {r['eval_cpu_seconds']:.1f} | "
            f"{r['bootstrap_wall_seconds']:.2f} / {r['bootstrap_cpu_seconds']:.2f} | "
            f"{100 * r['share_wall']:+.1f} % |"
        )
    lines += [
        "",
        "eval = `evaluate_suite` as `eval --bootstrap 0` runs it (model predictions on every image, then scoring); "
        "bootstrap = re-scoring every member from those predictions with the intervals minus re-scoring without "
        "them; added = bootstrap wall / eval wall.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a --model spec (e.g. a reproduce checkpoint folder)")
    parser.add_argument("--data-root", required=True, type=Path)
    parser.add_argument("--suite", action="append", help="repeatable (default: mini-lvis, mini-lvis-val, mini-odinw13)")
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--stem", default="bootstrap_share", help="results file name (benchmarks/results/STEM.*)")
    parser.add_argument("--label", help="how the report names the model (default: the folder's name; no local paths)")
    parser.add_argument("--note", default="", help="a sentence for the report (e.g. the machine's load)")
    args = parser.parse_args()
    import torch
    from bootstrap_bench import write_report  # the sibling script (benchmarks/ is on the path when run)

    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    suites = args.suite or ["mini-lvis", "mini-lvis-val", "mini-odinw13"]
    rows = [measure(args.model, s, args.data_root, args.replicates, args.batch_size) for s in suites]
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "load_average": load,
        "model": args.label or Path(args.model).name,
        "replicates": args.replicates,
        "threads": torch.get_num_threads(),
        "note": args.note,
        "suites": rows,
    }
    write_report(args.stem, report, render)


if __name__ == "__main__":
    main()
