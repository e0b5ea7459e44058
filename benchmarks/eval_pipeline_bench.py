"""Evaluation-loop benchmark: how fast the prediction loop feeds a model, and what it gains end to end.

    python benchmarks/eval_pipeline_bench.py [--quick] [--amp-model DIR --data-root DIR]

The workload is LVIS-minival-shaped and generated locally: JPEGs at COCO sizes (640 px long side, the usual
aspect ratios) and 1,203 prompts.

1. **The loop alone**: a null detector that prepares each image exactly as ``detclipv2-swin-t`` does (decode,
   EXIF, keep-ratio bicubic resize to ≤ 1333×800, normalise, pad to a multiple of 32) and returns 300 fixed
   detections. Images/s in-process (workers 0, the loop before it was pipelined) and with 1 and 2 DataLoader
   workers: the ceiling the loop imposes on any model.
2. **End to end on the CPU** with ``detclipv2-mini`` (1,203 prompts encoded once) in-process vs pipelined; the
   predictions must be identical.
3. (``--amp-model``) AP of a trained checkpoint on a mini suite in fp32 and under bf16 autocast (on the CPU
   when no GPU is there: a proxy for the GPU's bf16, same number format, other kernels).

Writes benchmarks/results/eval_pipeline_bench.{json,md}.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from bootstrap_bench import write_report  # the sibling script (benchmarks/ is on the path when run)
from PIL import Image

from detclip_bench.adapters.base import Prediction
from detclip_bench.predict.loop import EXIF_TRANSPOSE, predict_arrays
from detclip_bench.schema import ImageRef
from reference_model.detclipv2 import create_model, get_config
from reference_model.detclipv2.decode import ImageTransform, InferenceSettings, PreparedInputs

PROMPTS = [f"concept number {i}" for i in range(1203)]
# (width, height) of COCO images and how often each shape occurs (640 px long side, mostly 4:3)
COCO_SHAPES = [((640, 480), 0.45), ((480, 640), 0.15), ((640, 427), 0.25), ((427, 640), 0.05), ((640, 640), 0.1)]


def write_workload(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` JPEGs at COCO sizes with smooth random content (COCO-like file sizes)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shapes = [s for s, _ in COCO_SHAPES]
    picks = rng.choice(len(shapes), size=count, p=[p for _, p in COCO_SHAPES])
    paths = []
    for i, pick in enumerate(picks):
        w, h = shapes[pick]
        small = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(small).resize((w, h), Image.BILINEAR).save(buf, format="JPEG", quality=90)
        path = folder / f"{i:012d}.jpg"
        path.write_bytes(buf.getvalue())
        paths.append(path)
    return paths


class NullDetector(PreparedInputs):
    """Prepares images as ``detclipv2-swin-t`` does, then answers 300 fixed detections per image: the loop's cost
    without a model's."""

    name = "null"

    def __init__(self, settings: InferenceSettings, detections: int = 300) -> None:
        self.settings = settings
        rng = np.random.default_rng(0)
        xy = rng.uniform(0, 400, (detections, 2))
        self.fixed = Prediction(
            boxes=np.concatenate([xy, xy + 50], 1),
            scores=rng.uniform(0, 1, detections),
            labels=rng.integers(0, len(PROMPTS), detections),
        )

    def identity(self) -> str:
        return "null"

    def input_transform(self) -> ImageTransform:
        return ImageTransform(self.settings)

    def predict_inputs(self, inputs, prompts, *, max_dets_per_image=100, score_thresh=None) -> list[Prediction]:
        return [self.fixed for _ in inputs]


def run_loop(detector, paths: list[Path], workers: int, batch_size: int):
    def load(k: int):
        ref = ImageRef(path=str(paths[k]))
        return k + 1, ref.open(record=f"image {k + 1}", exif_transpose=EXIF_TRANSPOSE), str(paths[k])

    start = time.perf_counter()
    arrays = predict_arrays(
        detector,
        len(paths),
        load,
        PROMPTS,
        np.arange(1, len(PROMPTS) + 1),
        max_dets=300,
        score_thresh=None,
        batch_size=batch_size,
        workers=workers,
        progress=False,
    )
    return arrays, time.perf_counter() - start


def same_arrays(a, b) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("image_ids", "boxes", "scores", "category_ids"))


def measure_loop(paths: list[Path], worker_counts: list[int], batch_size: int, rounds: int) -> list[dict]:
    detector = NullDetector(InferenceSettings.from_config(get_config("detclipv2-swin-t")))
    rows = []
    for workers in worker_counts:
        best = min(run_loop(detector, paths, workers, batch_size)[1] for _ in range(rounds))
        rows.append({"workers": workers, "images": len(paths), "seconds": best, "images_per_s": len(paths) / best})
        print(f"loop alone, workers {workers}: {len(paths) / best:.1f} images/s", flush=True)
    return rows


def measure_end_to_end(paths: list[Path], worker_counts: list[int], batch_size: int) -> list[dict]:
    torch.manual_seed(0)
    model = create_model("detclipv2-mini").eval()
    model.text_encoder.encode_cached(PROMPTS)  # the vocabulary is encoded once per suite member, before the loop
    run_loop(model, paths[: 2 * batch_size], 0, batch_size)  # warm-up
    rows, reference = [], None
    for workers in worker_counts:
        arrays, seconds = run_loop(model, paths, workers, batch_size)
        reference = arrays if reference is None else reference
        rows.append(
            {
                "workers": workers,
                "images": len(paths),
                "seconds": seconds,
                "images_per_s": len(paths) / seconds,
                "identical_to_in_process": same_arrays(arrays, reference),
            }
        )
        print(f"detclipv2-mini end to end, workers {workers}: {len(paths) / seconds:.1f} images/s", flush=True)
    return rows


def _deform_conv_in_fp32(dcn: torch.nn.Module) -> None:
    """On CUDA, torchvision's autocast runs deform_conv2d in fp32 and casts its output back to the input's
    type; its CPU kernel has no bf16 at all, so the CPU proxy does the same by hand."""
    forward = dcn.forward

    def fp32(x, offset, mask=None):
        with torch.autocast("cpu", enabled=False):
            out = forward(x.float(), offset.float(), None if mask is None else mask.float())
        return out.to(x.dtype)

    dcn.forward = fp32


def measure_amp(model_dir: str, suite_name: str, data_root: Path, batch_size: int) -> dict:
    """The suite's AP in fp32 and under bf16 autocast (CUDA when there, else the CPU's)."""
    from detclip_bench.suites import get_suite
    from detclip_bench.suites.runner import evaluate_suite
    from reference_model.detclipv2 import DetCLIPv2

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = DetCLIPv2.from_pretrained(model_dir).to(device).eval()
    if device == "cpu":
        _deform_conv_in_fp32(model.head.dcn)
    suite = get_suite(suite_name)
    out = {"model": model_dir, "suite": suite_name, "device": device}
    for precision in ("fp32", "bf16"):
        autocast = (lambda _d: torch.autocast(device, dtype=torch.bfloat16)) if precision == "bf16" else None
        model._autocast = autocast or (lambda _d: nullcontext())
        result = evaluate_suite(model, suite, data_root, batch_size=batch_size, progress=False, bootstrap=None)
        out[precision] = result.aggregate()
    out["ap_difference"] = {k: out["bf16"][k] - out["fp32"][k] for k in out["fp32"]}
    return out


def render(report: dict) -> str:
    lines = [
        "# Evaluation-loop benchmark",
        "",
        f"{report['machine']}; torch {report['torch']}; batch {report['batch_size']}; "
        f"{report['images']} generated JPEGs at COCO sizes, {len(PROMPTS)} prompts. "
        "Rates are wall-clock on the whole machine.",
        "",
        "## The loop alone (a null detector preparing images as detclipv2-swin-t does: ≤ 1333×800, 300 detections)",
        "",
        "| DataLoader workers | images/s | vs in-process |",
        "|---|---|---|",
    ]
    base = report["loop"][0]["images_per_s"]
    for row in report["loop"]:
        lines.append(f"| {row['workers']} | {row['images_per_s']:.1f} | {row['images_per_s'] / base:.2f}× |")
    lines += [
        "",
        f"Workers 0 is the loop as it was before it was pipelined (reading and preparing in the model's process). "
        f"{report['gpu_rate_note']}",
        "",
        f"## End to end: detclipv2-mini on the CPU ({report['end_to_end'][0]['images']} images)",
        "",
        "| DataLoader workers | images/s | vs in-process | predictions identical |",
        "|---|---|---|---|",
    ]
    base = report["end_to_end"][0]["images_per_s"]
    for row in report["end_to_end"]:
        lines.append(
            f"| {row['workers']} | {row['images_per_s']:.1f} | {row['images_per_s'] / base:.2f}× | "
            f"{'yes' if row['identical_to_in_process'] else 'NO'} |"
        )
    if report.get("amp"):
        amp = report["amp"]
        lines += [
            "",
            f"## bf16 autocast vs fp32 ({amp['suite']}, {amp['model']}, on {amp['device']})",
            "",
            "| metric | fp32 | bf16 | difference (AP points) |",
            "|---|---|---|---|",
        ]
        for key, diff in amp["ap_difference"].items():
            lines.append(f"| {key} | {100 * amp['fp32'][key]:.2f} | {100 * amp['bf16'][key]:.2f} | {100 * diff:+.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500 images, 1 round (a check that it runs)")
    parser.add_argument("--images", type=int, default=5000, help="images of the loop-alone workload")
    parser.add_argument("--end-to-end-images", type=int, default=400, help="images run through detclipv2-mini")
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="loop-alone runs per worker count (best kept)")
    parser.add_argument("--amp-model", help="a trained checkpoint folder for the fp32 vs bf16 AP check")
    parser.add_argument("--amp-suite", default="mini-lvis-val")
    parser.add_argument("--data-root", type=Path, help="the suite's data root (with --amp-model)")
    parser.add_argument("--gpu-images-per-s", type=float, default=None, help="a measured GPU rate to compare to")
    parser.add_argument("--stem", default="eval_pipeline_bench")
    args = parser.parse_args()
    if args.quick:
        args.images, args.end_to_end_images, args.rounds = 500, 80, 1
    with tempfile.TemporaryDirectory() as tmp:
        print(f"writing {args.images} JPEGs ...", flush=True)
        paths = write_workload(Path(tmp) / "images", args.images)
        report = {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "torch": torch.__version__,
            "batch_size": args.batch_size,
            "images": args.images,
            "loop": measure_loop(paths, args.workers, args.batch_size, args.rounds),
            "end_to_end": measure_end_to_end(paths[: args.end_to_end_images], args.workers, args.batch_size),
        }
    best = max(row["images_per_s"] for row in report["loop"])
    if args.gpu_images_per_s:
        report["gpu_rate_note"] = (
            f"A measured GPU rate of {args.gpu_images_per_s:.1f} images/s is "
            f"{'below' if best >= args.gpu_images_per_s else 'ABOVE'} the best loop rate, {best:.1f}."
        )
    else:
        report["gpu_rate_note"] = (
            "For scale: the Swin-T dense forward at 1333×800, batch 4, measured on an H200 with bf16 "
            "(benchmarks/results/model_bench_cuda_h200.md) takes 0.08–0.10 s, about 40–50 images/s; the loop "
            f"must feed at least that, and its best rate here is {best:.1f} images/s."
        )
    if args.amp_model:
        if args.data_root is None:
            parser.error("--amp-model needs --data-root")
        report["amp"] = measure_amp(args.amp_model, args.amp_suite, args.data_root, args.batch_size)
    write_report(args.stem, report, render)


if __name__ == "__main__":
    main()
