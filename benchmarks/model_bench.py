"""DetCLIPv2-T forward+backward time and peak memory per data kind at the paper's resolutions.

Detection / grounding at 1333×800 (batch of 4 per GPU in the paper), image-text at 320² and the
Table 4 sweep 224/256/320/384, classification (IN1k variant) at 320². Each case runs in a fresh
subprocess so its peak memory is its own: CUDA → ``torch.cuda.max_memory_allocated``; CPU →
peak RSS growth over the built model (``ru_maxrss``). Weights are random (timings do not depend
on them). Synthetic inputs: M = 150 concepts per image for detection, 100 for grounding, a
caption + 3 noun phrases per image-text pair.

    python benchmarks/model_bench.py --quick          # CPU: batch 1 / 2, 2 measured reps
    python benchmarks/model_bench.py --device cuda    # paper per-GPU batches, bf16 autocast
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def _cases(args) -> list[dict]:
    det_b, it_b = args.batch_det, args.batch_it
    cases = [
        {"kind": "detection", "h": 800, "w": 1333, "batch": det_b, "concepts": 150},
        {"kind": "grounding", "h": 800, "w": 1333, "batch": det_b, "concepts": 100},
    ]
    cases += [{"kind": "image_text", "h": s, "w": s, "batch": it_b, "concepts": 4} for s in (224, 256, 320, 384)]
    cases.append({"kind": "classification", "h": 320, "w": 320, "batch": it_b, "concepts": 1})
    return cases


def _synthetic_batch(case: dict, seed: int = 0):
    import torch

    from detclip_bench.schema import DataKind
    from reference_model.detclipv2 import TrainBatch

    g = torch.Generator().manual_seed(seed)
    b, h, w, m = case["batch"], case["h"], case["w"], case["concepts"]
    kind = DataKind(case["kind"])
    images = torch.randn(b, 3, -(-h // 32) * 32, -(-w // 32) * 32, generator=g)
    sizes = [(h, w)] * b
    if kind in (DataKind.DETECTION, DataKind.GROUNDING):
        concepts = [f"concept {i} of image {j}, a thing with a definition" for j in range(b) for i in range(m)]
        boxes, labels = [], []
        for j in range(b):
            xy = torch.rand(8, 2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
            wh = 16 + torch.rand(8, 2, generator=g) * torch.tensor([w * 0.3, h * 0.3])
            boxes.append(torch.cat([xy, xy + wh], 1))
            labels.append(torch.arange(8) + j * m)
        return TrainBatch(kind=kind, images=images, image_sizes=sizes, concepts=concepts, boxes=boxes, labels=labels)
    if kind is DataKind.IMAGE_TEXT:
        concepts, rows = [], []
        for j in range(b):
            rows.append(list(range(len(concepts), len(concepts) + 4)))
            concepts += [f"phrase {k} of caption {j}" for k in range(3)] + [f"a caption number {j} about things"]
        return TrainBatch(kind=kind, images=images, image_sizes=sizes, concepts=concepts, caption_concepts=rows)
    concepts = [f"class {j}" for j in range(b)]
    return TrainBatch(
        kind=kind, images=images, image_sizes=sizes, concepts=concepts, caption_concepts=[[j] for j in range(b)]
    )


def _sync(device) -> None:
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize()


def _run_case(case: dict, args_dict: dict, queue) -> None:
    import torch

    from reference_model.detclipv2 import create_model

    torch.set_num_threads(args_dict["threads"]) if args_dict["device"] == "cpu" else None
    device = torch.device(args_dict["device"])
    # random weights by name (timings and memory do not depend on the values; no hub cache needed) and
    # CLIP's own BPE vocabulary (49,408 tokens), built offline from the open_clip_torch wheel or a folder
    model = (
        create_model(
            "detclipv2-swin-t",
            grad_checkpointing=args_dict["grad_ckpt"],
            backbone_init="random",
            text_init="random",
            text_tokenizer=args_dict["text_tokenizer"],
        )
        .to(device)
        .train()
    )
    batch = _synthetic_batch(case).to(device)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    fwd_times, bwd_times = [], []
    for rep in range(args_dict["warmup"] + args_dict["reps"]):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        with amp:
            losses = model(batch)
        _sync(device)
        t1 = time.perf_counter()
        losses["loss"].backward()
        _sync(device)
        if rep >= args_dict["warmup"]:
            fwd_times.append(t1 - t0)
            bwd_times.append(time.perf_counter() - t1)
    if device.type == "cuda":
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
        mem_kind = "cuda max_memory_allocated"
    else:
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base_rss) / 1024
        mem_kind = "peak RSS growth over the built model"
    steps = [f + b for f, b in zip(fwd_times, bwd_times, strict=True)]
    queue.put(
        {
            **case,
            "device": str(device),
            "forward_s_median": statistics.median(fwd_times),
            "backward_s_median": statistics.median(bwd_times),
            "step_s_median": statistics.median(steps),
            "step_s_all": steps,
            "images_per_s": case["batch"] / statistics.median(steps),
            "peak_memory_mib": round(peak_mb, 1),
            "memory_metric": mem_kind,
            "loss": losses["loss"].detach().item(),
            "params_m": model.num_parameters() / 1e6,
        }
    )


def _in_subprocess(ctx, case: dict, args_dict: dict, timeout_s: float = 3600.0) -> dict:
    """Run one case in a fresh process; a crash, OOM kill or timeout becomes an ``error`` row, never a hang."""
    import queue as queue_mod

    results = ctx.Queue()
    proc = ctx.Process(target=_run_case, args=(case, args_dict, results))
    proc.start()
    deadline = time.monotonic() + timeout_s
    row = None
    while row is None and time.monotonic() < deadline:
        try:
            row = results.get(timeout=2.0)
        except queue_mod.Empty:
            if not proc.is_alive():  # died without reporting (exit code -9: killed for memory)
                break
    if row is None:
        if proc.is_alive():
            proc.kill()
        proc.join()
        return {**case, "error": f"no result (exit code {proc.exitcode})"}
    proc.join()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="batch 1 det / 2 image-text, 1 warm-up + 2 reps")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available)")
    parser.add_argument("--batch-det", type=int, default=None)
    parser.add_argument("--batch-it", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1 avoids oversubscription)")
    parser.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing (the paper uses it)")
    parser.add_argument(
        "--kinds", default=None, help="comma-separated subset: detection,grounding,image_text,classification"
    )
    parser.add_argument("--out", default=str(RESULTS / "model_bench"))
    parser.add_argument(
        "--text-tokenizer",
        default="open-clip-bpe",
        help="tokenizer of the random CLIP-shaped text tower: open-clip-bpe or a folder of CLIP files",
    )
    args = parser.parse_args(argv)
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    gpu = args.device.startswith("cuda")
    args.batch_det = args.batch_det or (1 if args.quick or not gpu else 4)
    args.batch_it = args.batch_it or (2 if args.quick else (192 if gpu else 8))
    args.reps = args.reps or (2 if args.quick else 5)
    args_dict = {
        "device": args.device,
        "threads": args.threads,
        "grad_ckpt": args.grad_ckpt,
        "text_tokenizer": args.text_tokenizer,
        "reps": args.reps,
        "warmup": 1,
    }
    ctx = mp.get_context("spawn")
    rows = []
    from tqdm import tqdm

    cases = [c for c in _cases(args) if not args.kinds or c["kind"] in args.kinds.split(",")]
    load_before = os.getloadavg()
    for case in tqdm(cases, desc="model_bench"):
        rows.append(_in_subprocess(ctx, case, args_dict))
    meta = {
        "model": "detclipv2-swin-t (random init; Swin-T + FPN P3-P7 256 + ATSS head + CLIP-shaped text 12x512)",
        "quick": args.quick,
        "device": args.device,
        "threads": args.threads,
        "grad_checkpointing": args.grad_ckpt,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "gpu": torch.cuda.get_device_name(0) if gpu else None,
        "reps": args.reps,
        "cpu_count": os.cpu_count(),
        "loadavg_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    out = Path(args.out)
    from detclip_bench.io import atomic_write_json, atomic_write_text

    atomic_write_json(out.with_suffix(".json"), {"meta": meta, "results": rows})
    atomic_write_text(out.with_suffix(".md"), _markdown(meta, rows))
    print(_markdown(meta, rows))
    return 0


def _markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"# model_bench: DetCLIPv2-T forward+backward ({meta['device']}, threads={meta['threads']}, "
        f"quick={meta['quick']}, grad_ckpt={meta['grad_checkpointing']})",
        "",
        f"{meta['model']}; torch {meta['torch']}; memory = {rows[0].get('memory_metric', '-') if rows else '-'}",
        "",
        "| kind | input | batch | concepts/img | forward s | backward s | step s (median) | img/s | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['kind']} | {r['w']}×{r['h']} | {r['batch']} | {r['concepts']} | {r['error']} | | | | |")
            continue
        lines.append(
            f"| {r['kind']} | {r['w']}×{r['h']} | {r['batch']} | {r['concepts']} | {r['forward_s_median']:.2f} | "
            f"{r['backward_s_median']:.2f} | {r['step_s_median']:.2f} | "
            f"{r['images_per_s']:.2f} | {r['peak_memory_mib']:.0f} |"
        )
    lines += ["", *_notes(meta)]
    return "\n".join(lines) + "\n"


def _notes(meta: dict) -> list[str]:
    if meta["gpu"]:
        return [f"GPU: {meta['gpu']}, bf16 autocast; memory is torch.cuda.max_memory_allocated."]
    load = meta.get("loadavg_1m_before_after")
    return [
        f"Machine: {meta['cpu_count']} CPU cores, **shared** with other jobs while this ran (1-minute load "
        f"average {load[0]} before, {load[1]} after), {meta['threads']} thread(s) per case: the timings are "
        "noisy upper bounds, good for relative comparisons within this table only.",
        "No GPU was available here. The same script runs on a GPU with `--device cuda` (paper per-GPU batches: "
        "4 detection/grounding images, 192 image-text pairs; bf16 autocast; CUDA peak memory).",
    ]


if __name__ == "__main__":
    sys.exit(main())
