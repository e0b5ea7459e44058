"""Frozen-vocabulary export of DetCLIPv2: file size and CPU latency, PyTorch ``predict`` vs the exported graph.

Builds ``detclipv2-mini`` (real EfficientNet-Lite0 and MiniLM towers, random detection head, seed 0), freezes
the union of the mini-odinw13 prompts into it, exports ONNX (TorchScript-based exporter, opset 19, dynamic
shapes) and TorchScript (``--all`` adds the dynamo ONNX exporter and ``torch.export``, both at a fixed
192×192 input), then times end-to-end ``predict`` (preprocess + graph + postprocess, the same Python code
around every graph) on the same mini-world ODinW val images:

* latency per image: one image per call, median over ``--reps`` passes over the images after ``--warmup``
  warm-up passes;
* batched: the images in chunks of ``predict_batch_size`` (16), median seconds per image.

It also reports the largest |Δscore| / |Δbox| of each export against PyTorch on those images. Threads: torch
and ONNX Runtime both get ``--threads`` (default 1). Swin-T needs a real machine: ``--variant detclipv2-swin-t``
(random weights: timings do not depend on them; the mini-world images are upscaled to its test_size, short side
800); not measured on the 2-core box.

    python benchmarks/export_bench.py                 # mini, writes benchmarks/results/export_bench.{md,json}
    python benchmarks/export_bench.py --all --reps 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def _time_per_image(detector, images, prompts, *, batch: int, warmup: int, reps: int) -> float:
    """Median over reps of (seconds for one pass over ``images`` in calls of ``batch`` images) / len(images)."""

    def one_pass():
        for start in range(0, len(images), batch):
            detector.predict(images[start : start + batch], prompts)

    for _ in range(warmup):
        one_pass()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        one_pass()
        times.append((time.perf_counter() - t0) / len(images))
    return statistics.median(times)


def _max_delta(ref, got, tie: float = 1e-4) -> tuple[float, float, bool, int]:
    """Largest |Δscore| and |Δbox| of each PyTorch detection to its counterpart, whether counts and label sets
    agree, and how many detections sit at another rank: a detection's counterpart is the one with its label and
    a score within ``tie`` whose box is closest (near-equal scores may swap places in the ranking)."""
    import numpy as np

    ds = db = 0.0
    same, moved = True, 0
    for a, b in zip(ref, got, strict=True):
        if len(a.scores) != len(b.scores) or sorted(a.labels.tolist()) != sorted(b.labels.tolist()):
            same = False
            continue
        for i in range(len(a.scores)):
            cand = np.nonzero((b.labels == a.labels[i]) & (np.abs(b.scores - a.scores[i]) <= tie))[0]
            if not len(cand):
                same = False
                continue
            box = np.abs(b.boxes[cand] - a.boxes[i]).max(axis=1)
            j = cand[int(box.argmin())]
            moved += int(j != i)
            ds = max(ds, float(abs(b.scores[j] - a.scores[i])))
            db = max(db, float(box.min()))
    return ds, db, same, moved


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="detclipv2-mini")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--all", action="store_true", help="also the dynamo ONNX exporter and torch.export (fixed size)"
    )
    parser.add_argument("--out", default=str(RESULTS / "export_bench"), help="results stem (.md and .json)")
    args = parser.parse_args(argv)

    import onnxruntime
    import torch
    from PIL import Image

    from detclip_bench.mini_world import generate
    from detclip_bench.predict.vocabulary import prompts_for
    from detclip_bench.suites import SUITES
    from reference_model.detclipv2 import create_model
    from reference_model.detclipv2.export import ExportError, OnnxDetector, export_model

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="export_bench_"))
    world = tmp / "world"
    generate(world, scale=0.1, seed=0, progress=False)
    suite = SUITES.get("mini-odinw13")
    prompts: list[str] = []
    for target in suite.targets(world):
        for p in prompts_for(suite, tuple(target.open().vocabulary())):
            if p not in prompts:
                prompts.append(p)
    files = sorted(world.glob("odinw/**/valid/*.jpg"))
    images = [Image.open(f).convert("RGB") for f in files]

    overrides = {} if args.variant == "detclipv2-mini" else {"backbone_init": "random", "text_init": "random"}
    torch.manual_seed(0)
    model = create_model(args.variant, **overrides).eval()
    model.save_pretrained(tmp / "ckpt")
    ckpt_mb = _folder_mb(tmp / "ckpt")
    fixed = (192, 192)  # W, H: every mini test image (long side ≤ 192) fits
    cases = [("onnx", "torchscript", None), ("torchscript", "torchscript", None)]
    if args.all:
        cases += [("onnx", "dynamo", fixed), ("torch-export", "torchscript", fixed)]

    ref = model.predict(images, prompts)
    rows = [
        {
            "runtime": "PyTorch predict (eager)",
            "file": "checkpoint folder (incl. text tower)",
            "mb": ckpt_mb,
            "export_s": None,
            "latency_ms": 1e3 * _time_per_image(model, images, prompts, batch=1, warmup=args.warmup, reps=args.reps),
            "batched_ms": 1e3
            * _time_per_image(
                model, images, prompts, batch=model.config.predict_batch_size, warmup=args.warmup, reps=args.reps
            ),
            "d_score": 0.0,
            "d_box": 0.0,
            "same": True,
            "moved": 0,
            "input": "dynamic",
        }
    ]
    for fmt, exporter, size in cases:
        out = tmp / f"{fmt}-{exporter}"
        t0 = time.perf_counter()
        try:
            sidecar = export_model(model, prompts, out, format=fmt, exporter=exporter, image_size=size)
        except ExportError as exc:  # e.g. a traced graph that does not generalise across input sizes
            rows.append({"runtime": f"{fmt} ({exporter})", "error": str(exc)})
            continue
        export_s = time.perf_counter() - t0
        detector = OnnxDetector(out, threads=args.threads)
        ds, db, same, moved = _max_delta(ref, detector.predict(images, prompts))
        name = {
            "onnx": f"ONNX Runtime ({'TorchScript-based' if exporter == 'torchscript' else 'dynamo'} exporter, "
            f"opset {sidecar['opset']})",
            "torchscript": "TorchScript (torch.jit.trace)",
            "torch-export": "torch.export (.pt2)",
        }[fmt]
        rows.append(
            {
                "runtime": name,
                "file": sidecar["file"],
                "mb": sidecar["file_bytes"] / 1e6,
                "export_s": export_s,
                "latency_ms": 1e3
                * _time_per_image(detector, images, prompts, batch=1, warmup=args.warmup, reps=args.reps),
                "batched_ms": 1e3
                * _time_per_image(
                    detector, images, prompts, batch=detector.settings.batch_size, warmup=args.warmup, reps=args.reps
                ),
                "d_score": ds,
                "d_box": db,
                "same": same,
                "moved": moved,
                "input": "dynamic" if size is None else f"fixed {size[0]}x{size[1]} (pads every image to it)",
            }
        )
    load_after = os.getloadavg()

    info = {
        "variant": args.variant,
        "threads": args.threads,
        "warmup": args.warmup,
        "reps": args.reps,
        "images": len(images),
        "image_sizes": sorted({im.size for im in images}),
        "prompts": len(prompts),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "load_before": load_before,
        "load_after": load_after,
        "processor": platform.processor() or platform.machine(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps({"info": info, "rows": rows}, indent=2) + "\n")
    lines = [
        f"# export_bench: {args.variant} frozen-vocabulary export, CPU, threads={args.threads}",
        "",
        f"{len(images)} mini-world ODinW val images ({len(info['image_sizes'])} sizes, 96–192 px, resized to "
        f"test_size {tuple(model.config.test_size)}), {len(prompts)} prompts (the union of mini-odinw13's "
        f"vocabularies); torch {torch.__version__}, onnxruntime {onnxruntime.__version__}. Latency = end-to-end "
        f"predict (preprocess + graph + the same postprocessing code), one image per call, median of "
        f"{args.reps} passes after {args.warmup} warm-up passes; batched = chunks of "
        f"{model.config.predict_batch_size}, per image. Δ = largest |difference| against PyTorch predict "
        f"over {sum(len(p.scores) for p in ref)} detections of those images, each matched to the export's "
        "detection with its label, a score within 1e-4 and the closest box ('same': every detection matched; "
        "'moved': matched at another rank, near-equal scores swapping places).",
        "",
        "| runtime | file | MB | export s | ms / image (1 per call) | ms / image (batched) | max abs Δscore "
        "| max abs Δbox (px) | same dets | moved | input |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['runtime']} | export failed: {r['error'][:300]} |" + " |" * 9)
            continue
        export_s = "–" if r["export_s"] is None else f"{r['export_s']:.1f}"
        lines.append(
            f"| {r['runtime']} | {r['file']} | {r['mb']:.1f} | {export_s} | {r['latency_ms']:.1f} | "
            f"{r['batched_ms']:.1f} | {r['d_score']:.1e} | {r['d_box']:.1e} | {r['same']} | {r['moved']} | "
            f"{r['input']} |"
        )
    lines += [
        "",
        f"Machine: {os.cpu_count()} CPU cores, **shared** with a training job while this ran (1-minute load "
        f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after): the timings are noisy upper bounds, "
        "good for comparisons within this table only.",
        "The checkpoint MB include the MiniLM text tower (not needed after export: the prompts' embeddings are "
        "a (M, D) buffer in the graph)."
        if args.variant == "detclipv2-mini"
        else "",
        "Swin-T numbers (detclipv2-swin-t, test_size 1333×800) need a real machine: `python benchmarks/export_bench.py "
        "--variant detclipv2-swin-t` (not measured here).",
    ]
    Path(args.out + ".md").write_text("\n".join(line for line in lines if line is not None) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
