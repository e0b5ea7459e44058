"""Memory and time of a grounding step against the number of global-batch concept columns M_B.

Grounding gathers the concepts of the *global* batch (Eq. 1): 128 images × 100 concepts ≈ 12,800
columns on every rank at the paper's batch. Two measurements, each case in a fresh process (peak RSS
growth on CPU, ``torch.cuda.max_memory_allocated`` on CUDA):

* ``loss``: the focal alignment loss alone, forward + backward, for region embeddings of real 1333×800
  anchor count (K = 22,400 anchors per image over P3-P7, D = 256), plain (every (B, K, M_B) score at
  once, the code before) against chunked (``focal_alignment_loss``, the code now).
* ``step``: one full DetCLIPv2-T grounding step (random weights) at a given input, with the text tower
  run the old way (every rank encodes all M_B prompts) or the new way (each rank encodes its 1/W share,
  the rest arrive gathered: simulated here by ``--ranks`` W with the other shares as constant rows).

    python benchmarks/grounding_memory_bench.py --quick           # CPU, ~2 minutes
    python benchmarks/grounding_memory_bench.py --device cuda     # 1333×800, batch 4, M_B 400/3,200/12,800
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import queue as queue_mod
import resource
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
K_1333x800 = 100 * 167 + 50 * 84 + 25 * 42 + 13 * 21 + 7 * 11  # anchors of one padded 1344×800 image, P3-P7


def _peak(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _loss_case(case: dict, device) -> dict:
    import torch
    from torchvision.ops import sigmoid_focal_loss

    from reference_model.detclipv2.alignment import FocalTargets, RegionTextLogits, focal_alignment_loss

    b, k, m, d = case["batch"], case["anchors"], case["columns"], 256
    g = torch.Generator().manual_seed(0)
    layer = RegionTextLogits().to(device)
    emb = torch.randn(b, k, d, generator=g).to(device).requires_grad_()
    texts = torch.randn(m, d, generator=g).to(device).requires_grad_()
    npos = 60 * b
    pos = (torch.arange(npos) % b, torch.randint(0, k, (npos,), generator=g), torch.randint(0, m, (npos,), generator=g))
    targets = FocalTargets(*(t.to(device) for t in pos))
    base = _peak(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
    t0 = time.perf_counter()
    if case["method"] == "plain":
        logits = layer(emb, texts)
        dense = torch.zeros_like(logits)
        dense[targets.pos_img, targets.pos_anchor, targets.pos_col] = 1.0
        loss = sigmoid_focal_loss(logits, dense, reduction="sum")
    else:
        loss = focal_alignment_loss(emb, texts, layer, targets)
    loss.backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"step_s": time.perf_counter() - t0, "peak_mib": _peak(device) - base, "loss": loss.item()}


def _step_case(case: dict, device, args: dict) -> dict:
    import torch
    from model_bench import _synthetic_batch  # benchmarks/ is this script's folder

    from reference_model.detclipv2 import create_model
    from reference_model.detclipv2 import model as model_mod

    model = create_model(
        "detclipv2-swin-t",
        grad_checkpointing=args["grad_ckpt"],
        backbone_init="random",
        text_init="random",
        text_tokenizer=args["text_tokenizer"],
    ).to(device)
    model.train()
    per_image = case["columns"] // case["batch"]
    batch = _synthetic_batch(
        {"kind": "grounding", "h": case["h"], "w": case["w"], "batch": case["batch"], "concepts": per_image}
    ).to(device)
    ranks = case["ranks"]

    def encode_share(encode, strings):  # this rank's 1/W share through the tower; the rest gathered (constant)
        share = max(1, len(strings) // ranks)
        mine = encode(strings[:share])
        others = torch.randn(len(strings) - share, mine.shape[1], device=mine.device, dtype=mine.dtype)
        return torch.cat([mine, others])

    if case["text"] == "share":
        model_mod.encode_once = encode_share
    if case["method"] == "plain":
        original = model.head.compute_loss

        def dense(outputs, logits, *a, texts, max_elements, **kw):
            return original(outputs, model.head.logits(outputs.embeddings, texts), *a, **kw)

        model.head.compute_loss = dense
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )
    base = _peak(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = 0.0  # weights included: what has to fit on the card
    times = []
    for _ in range(args["reps"]):
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        with amp:
            loss = model(batch)["loss"]
        loss.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return {"step_s": min(times), "peak_mib": _peak(device) - base, "loss": loss.item()}


def _run(case: dict, args: dict, out) -> None:
    import torch

    torch.set_num_threads(args["threads"])
    device = torch.device(args["device"])
    try:
        row = _loss_case(case, device) if case["part"] == "loss" else _step_case(case, device, args)
    except torch.OutOfMemoryError as exc:
        row = {"error": f"out of memory ({str(exc)[:60]})"}
    out.put({**case, **row})


def _in_subprocess(ctx, case: dict, args: dict, timeout_s: float = 1800.0) -> dict:
    results = ctx.Queue()
    proc = ctx.Process(target=_run, args=(case, args, results))
    proc.start()
    deadline, row = time.monotonic() + timeout_s, None
    while row is None and time.monotonic() < deadline:
        try:
            row = results.get(timeout=2.0)
        except queue_mod.Empty:
            if not proc.is_alive():
                break
    if proc.is_alive() and row is None:
        proc.kill()
    proc.join()
    return row or {**case, "error": f"no result (exit code {proc.exitcode})"}


def _cases(args) -> list[dict]:
    cuda = args.device.startswith("cuda")
    batch = 4 if cuda else 1
    loss_columns = (400, 3200, 12800) if cuda else (400, 1600, 3200)
    cases = [
        {"part": "loss", "method": method, "batch": batch, "anchors": K_1333x800, "columns": m}
        for m in loss_columns
        for method in ("plain", "chunked")
    ]
    h, w = (800, 1333) if cuda else (384, 640)
    step_columns = (400, 3200, 12800) if cuda else (400, 3200)
    for m in step_columns:
        for method, text in (("plain", "all"), ("chunked", "share")):
            if not cuda and method == "plain" and m != step_columns[0]:
                continue  # CPU: encoding 3,200 prompts with gradient alone takes minutes
            cases.append(
                {
                    "part": "step",
                    "method": method,
                    "text": text,
                    "ranks": 32,
                    "batch": batch,
                    "h": h,
                    "w": w,
                    "columns": m,
                }
            )
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CPU shapes (the default off CUDA)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--grad-ckpt", action="store_true")
    parser.add_argument("--text-tokenizer", default="open-clip-bpe")
    parser.add_argument("--out", default=str(RESULTS / "grounding_memory_bench"))
    args = parser.parse_args(argv)
    import torch

    run_args = {
        "device": args.device,
        "threads": args.threads,
        "reps": args.reps,
        "grad_ckpt": args.grad_ckpt,
        "text_tokenizer": args.text_tokenizer,
    }
    ctx = mp.get_context("spawn")
    load = os.getloadavg()[0]
    rows = [_in_subprocess(ctx, c, run_args) for c in _cases(args)]
    meta = {
        "device": args.device,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "threads": args.threads,
        "grad_checkpointing": args.grad_ckpt,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "loadavg_1m_before_after": [round(load, 2), round(os.getloadavg()[0], 2)],
    }
    from detclip_bench.io import atomic_write_json, atomic_write_text

    out = Path(args.out)
    atomic_write_json(out.with_suffix(".json"), {"meta": meta, "results": rows})
    atomic_write_text(out.with_suffix(".md"), _markdown(meta, rows))
    print(_markdown(meta, rows))
    return 0


def _markdown(meta: dict, rows: list[dict]) -> str:
    mem = "cuda max_memory_allocated" if meta["gpu"] else "peak RSS growth of the case's process"
    lines = [
        f"# grounding_memory_bench ({meta['gpu'] or meta['device']}, threads={meta['threads']}, "
        f"grad_ckpt={meta['grad_checkpointing']}, torch {meta['torch']})",
        "",
        f"Memory = {mem}. `loss`: focal alignment loss alone, forward + backward, K = {K_1333x800} anchors per "
        "image (1333×800), D = 256. `step`: one DetCLIPv2-T grounding step (random weights); text `all` = every "
        "rank encodes all M_B prompts (before), `share` = this rank encodes M_B/32 (after, 32 ranks simulated).",
        "",
        "| part | loss path | text | batch | input | M_B columns | step s | peak MiB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shape = f"{r['w']}×{r['h']}" if "h" in r else f"K={r['anchors']}"
        got = (r["error"], "") if "error" in r else (f"{r['step_s']:.2f}", f"{r['peak_mib']:.0f}")
        lines.append(
            f"| {r['part']} | {r['method']} | {r.get('text', '-')} | {r['batch']} | {shape} | {r['columns']} | "
            f"{got[0]} | {got[1]} |"
        )
    if not meta["gpu"]:
        load = meta["loadavg_1m_before_after"]
        lines += [
            "",
            f"CPU, {meta['cpu_count']} cores shared with other jobs (1-minute load {load[0]} before, {load[1]} "
            "after): timings are noisy; memory is the informative column.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
