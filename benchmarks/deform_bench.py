"""The head's DCNv2 on the CPU: torchvision's deform_conv2d vs the gather path, forward + backward.

    python benchmarks/deform_bench.py [--repeats 5]

Shapes are the mini model's three FPN levels at its training batch (8 × 64 channels at 192×160
input: strides 8, 16, 32) and one Swin-T-like level at 1333×800 (batch 2). Both paths get the
same tensors; the table gives ms per call (median of ``--repeats``), the speed-up and the largest
gradient difference relative to torchvision's. Two threads, as the mini recipes train.
Writes benchmarks/results/deform_bench.{json,md}.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from torchvision.ops import deform_conv2d

from detclip_bench.io import atomic_write_json, atomic_write_text
from detclip_bench.provenance import git_hash
from reference_model.detclipv2.deform import modulated_deform_conv3x3

RESULTS = Path(__file__).resolve().parent / "results"
SHAPES = ((8, 64, 20, 24), (8, 64, 10, 12), (8, 64, 5, 6), (2, 256, 100, 168))


def _time(fn, tensors, upstream, repeats):
    times, grads = [], None
    for _ in range(repeats + 1):
        for t in tensors:
            t.grad = None
        start = time.perf_counter()
        (fn(*tensors) * upstream).sum().backward()
        times.append(time.perf_counter() - start)
        grads = [t.grad.clone() for t in tensors]
    return statistics.median(times[1:]) * 1000, grads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    rows = []
    for batch, channels, height, width in SHAPES:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch, channels, height, width, generator=g)
        offset = torch.randn(batch, 18, height, width, generator=g)
        mask = torch.rand(batch, 9, height, width, generator=g)
        weight = torch.randn(channels, channels, 3, 3, generator=g) * 0.05
        upstream = torch.randn(batch, channels, height, width, generator=g)
        tensors = [t.requires_grad_() for t in (x, offset, mask, weight)]
        ref_ms, ref_grads = _time(
            lambda x, o, m, w: deform_conv2d(x, o, w, padding=(1, 1), mask=m), tensors, upstream, args.repeats
        )
        ours_ms, grads = _time(modulated_deform_conv3x3, tensors, upstream, args.repeats)
        diff = max((a - b).abs().max().item() / b.abs().max().item() for a, b in zip(grads, ref_grads, strict=True))
        rows.append(
            {
                "shape": [batch, channels, height, width],
                "torchvision_ms": round(ref_ms, 2),
                "gather_ms": round(ours_ms, 2),
                "speedup": round(ref_ms / ours_ms, 2),
                "max_relative_grad_diff": diff,
            }
        )
        print(rows[-1], flush=True)
    meta = {
        "git": git_hash(),
        "torch": torch.__version__,
        "threads": 2,
        "cpu": platform.processor() or platform.machine(),
    }
    atomic_write_json(RESULTS / "deform_bench.json", {"meta": meta, "results": rows})
    lines = [
        "# DCNv2 3×3 on the CPU, forward + backward (benchmarks/deform_bench.py)",
        "",
        f"git {meta['git']}, torch {meta['torch']}, 2 threads, median of {args.repeats} calls.",
        "",
        "| input (B, C, H, W) | torchvision ms | gather path ms | speed-up | largest gradient difference (relative) |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {tuple(r['shape'])} | {r['torchvision_ms']:.1f} | {r['gather_ms']:.1f} | {r['speedup']:.2f}× | "
        f"{r['max_relative_grad_diff']:.1e} |"
        for r in rows
    ]
    atomic_write_text(RESULTS / "deform_bench.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
