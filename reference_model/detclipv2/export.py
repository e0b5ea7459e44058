"""Freeze a vocabulary into DetCLIPv2 and export the image-only graph; run the export as a :class:`Detector`.

The prompts are encoded once by the text tower; :class:`FrozenVocabularyDetector` keeps only the image
side (backbone, FPN, head) and the (M, D) text embeddings as a buffer, so the exported graph maps a
preprocessed image batch to dense per-anchor scores and needs no tokenizer or text tower.

**Graph input** ``images``: float32 ``(B, 3, H, W)``, RGB, exactly what
:func:`~reference_model.detclipv2.decode.preprocess_images` makes (as ``DetCLIPv2.predict`` does) from
images read upright (their EXIF Orientation applied with ``PIL.ImageOps.exif_transpose``, as ``predict`` and
suite evaluation read files; the sidecar's ``input.exif_transpose``): each image resized keeping its aspect by the largest factor with long side ≤ ``test_size[0]`` and short side ≤
``test_size[1]`` (PIL bicubic, sizes rounded), divided by 255, normalised with ``pixel_mean`` / ``pixel_std``,
zero-padded bottom/right to the batch's largest H and W rounded up to a multiple of ``size_divisor`` (32).
The graph does no padding of its own: H and W must already be multiples of ``size_divisor``.

**Graph outputs**, K = Σ over FPN levels of h·w (levels P3, P4, … in order, each row-major; level ``l`` has
``ceil(H / stride_l) × ceil(W / stride_l)`` anchors), M = the frozen vocabulary's size:

* ``class_prob`` ``(B, K, M)``: sigmoid(exp(s)·cos(f_P, f_T) + b);
* ``centerness`` ``(B, K)``: sigmoid of the centerness logit;
* ``deltas`` ``(B, K, 4)``: box deltas (dx, dy, dw, dh) against the anchors, before decoding.

Everything after the graph (anchors, threshold and per-level top-k on the class probability, × centerness,
class-wise NMS, rescale to original pixels) runs outside it, in the same
:func:`~reference_model.detclipv2.decode.postprocess_detections` that ``predict`` uses; the sidecar
``export.json`` holds the vocabulary and every pre/post-processing number.

Formats and what works (torch 2.14, torchvision 0.29, onnxruntime 1.32; measured on detclipv2-mini):

* ``onnx`` with the TorchScript-based exporter (``exporter="torchscript"``, the default): dynamic batch, H
  and W. torchvision registers no ONNX symbolic for ``deform_conv2d``; this module maps it to ONNX's
  ``DeformConv`` (opset ≥ 19), which onnxruntime's CPU provider runs (its DeformConv kernel is recent:
  onnxruntime ≥ 1.25). The legacy exporter traces, so a backbone whose padding arithmetic depends on the
  input size (Swin's window padding) would keep the traced size: :func:`export_model` checks a second
  input size against PyTorch and refuses a graph that does not generalise (then use ``image_size``).
* ``onnx`` with the dynamo exporter (``exporter="dynamo"``): ``torchvision::deform_conv2d`` → ``DeformConv``
  (onnxscript's translation), dynamic batch; H and W must be fixed (``image_size``): with symbolic H/W,
  shape reasoning through the backbone's strided convs did not finish in 15 minutes.
* ``torchscript``: ``torch.jit.trace``, dynamic shapes (same caveat and check as the legacy ONNX exporter).
* ``torch-export``: ``torch.export`` (``.pt2``), dynamic batch, fixed H and W (``image_size``), as dynamo.

A model trained with ``deformable=False`` has no DeformConv and exports at any opset the exporter supports.
"""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from detclip_bench.adapters.base import Prediction
from detclip_bench.errors import DataError
from reference_model.detclipv2.decode import (
    ImageTransform,
    InferenceSettings,
    PreparedImage,
    PreparedInputs,
    anchors_for,
    level_sizes,
    run_dense_prepared,
    score_outputs,
)

__all__ = [
    "DEFAULT_OPSET",
    "EXPORTERS",
    "FORMATS",
    "SIDECAR",
    "ExportError",
    "FrozenVocabularyDetector",
    "OnnxDetector",
    "export_model",
    "load_onnx_detector",
]

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt", "torch-export": "model.pt2"}
EXPORTERS = ("torchscript", "dynamo")  # for format="onnx"
SIDECAR = "export.json"
SIDECAR_VERSION = 1
INPUT_NAME = "images"
OUTPUT_NAMES = ("class_prob", "centerness", "deltas")
DEFORM_CONV_OPSET = 19  # ONNX's DeformConv first appears in opset 19
DEFAULT_OPSET = 19
MAX_BATCH = 1024  # the upper bound of the dynamic batch dimension (torch.export needs one)
CHECK_RTOL, CHECK_ATOL = 1e-3, 1e-4


class ExportError(RuntimeError):
    """The export cannot be made, or the exported graph does not reproduce the PyTorch model."""


class FrozenVocabularyDetector(nn.Module):
    """The image side of a :class:`DetCLIPv2` with the text embeddings of ``prompts`` frozen in.

    ``forward(images)`` takes the padded, normalised batch described in the module docstring and returns
    ``(class_prob (B, K, M), centerness (B, K), deltas (B, K, 4))``; the text tower is not part of it
    (its embeddings are the buffer ``text_embeddings`` (M, D)). It shares its backbone, FPN and head with
    ``model`` (no copy) and puts ``model`` in eval mode.
    """

    def __init__(self, model: nn.Module, prompts: Sequence[str]) -> None:
        super().__init__()
        prompts = [str(p) for p in prompts]
        if not prompts:
            raise ValueError("FrozenVocabularyDetector needs at least one prompt")
        dup = sorted({p for p in prompts if prompts.count(p) > 1})
        if dup:
            raise ValueError(f"prompts must be unique; given twice: {dup[:5]}")
        model.eval()
        self.backbone, self.fpn, self.head = model.backbone, model.fpn, model.head
        with torch.no_grad():
            texts = model.text_encoder.encode_cached(prompts).detach().float().clone()
        self.register_buffer("text_embeddings", texts)
        self.prompts = tuple(prompts)
        self.config = model.config
        self.settings = InferenceSettings.from_config(model.config)
        self.eval()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outputs = self.head(self.fpn(self.backbone(images)))
        return score_outputs(self.head, outputs, self.text_embeddings)


# ---- export ---------------------------------------------------------------------------------------------


def _register_deform_conv_symbolic(opset: int) -> None:
    """``torchvision::deform_conv2d`` → ONNX ``DeformConv`` for the TorchScript-based exporter (torchvision
    registers none). The offset layout is the same in both ((y, x) pairs per kernel tap, tap-major)."""
    from torch.onnx import register_custom_op_symbolic
    from torch.onnx.symbolic_helper import parse_args

    @parse_args("v", "v", "v", "v", "v", "i", "i", "i", "i", "i", "i", "i", "i", "b")
    def deform_conv2d(
        g,
        inp,
        weight,
        offset,
        mask,
        bias,
        stride_h,
        stride_w,
        pad_h,
        pad_w,
        dil_h,
        dil_w,
        groups,
        offset_groups,
        use_mask,
    ):
        kernel = weight.type().sizes()[-2:]
        inputs = [inp, weight, offset, bias] + ([mask] if use_mask else [])
        return g.op(
            "DeformConv",
            *inputs,
            dilations_i=[dil_h, dil_w],
            group_i=groups,
            kernel_shape_i=kernel,
            offset_group_i=offset_groups,
            pads_i=[pad_h, pad_w, pad_h, pad_w],
            strides_i=[stride_h, stride_w],
        )

    register_custom_op_symbolic("torchvision::deform_conv2d", deform_conv2d, opset)


def _example_size(settings: InferenceSettings) -> tuple[int, int]:
    """(H, W) of a landscape image at ``test_size``, padded: the input traced when H and W stay dynamic."""
    d = settings.size_divisor
    long_side, short_side = settings.test_size
    return -(-short_side // d) * d, -(-long_side // d) * d


def _dynamic_hw(fmt: str, exporter: str, fixed: bool) -> bool:
    return not fixed and (fmt == "torchscript" or (fmt == "onnx" and exporter == "torchscript"))


def _export_graph(
    wrapper: FrozenVocabularyDetector,
    example: torch.Tensor,
    path: Path,
    fmt: str,
    exporter: str,
    opset: int,
    dynamic_hw: bool,
) -> None:
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace.* is deprecated.*", category=FutureWarning)
        if fmt == "onnx" and exporter == "torchscript":
            _register_deform_conv_symbolic(DEFORM_CONV_OPSET)
            axes = {0: "batch", 2: "height", 3: "width"} if dynamic_hw else {0: "batch"}
            out_axes = {0: "batch", 1: "anchors"}
            torch.onnx.export(
                wrapper,
                (example,),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                do_constant_folding=True,
                dynamic_axes={INPUT_NAME: axes, **{name: out_axes for name in OUTPUT_NAMES}},
            )
        elif fmt == "onnx":
            program = torch.onnx.export(
                wrapper,
                (example,),
                dynamo=True,
                opset_version=opset,
                verbose=False,
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes={INPUT_NAME: {0: batch}},
                external_data=False,
            )
            program.save(str(path), external_data=False)
        elif fmt == "torchscript":
            traced = torch.jit.trace(wrapper, (example,), check_trace=False)
            traced.save(str(path))
        else:
            program = torch.export.export(wrapper, (example,), dynamic_shapes={INPUT_NAME: {0: batch}}, strict=False)
            torch.export.save(program, str(path))


def _onnx_session(path: Path, device: str = "cpu", threads: int | None = None):
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ExportError("running an ONNX export needs onnxruntime: pip install 'detclip-bench[export]'") from exc
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ExportError(
                f"device {device!r}: this onnxruntime has no CUDAExecutionProvider "
                "(pip install onnxruntime-gpu), use device='cpu'"
            )
        providers = ["CUDAExecutionProvider", *providers]
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        text = str(exc)
        if "DeformConv" in text:
            raise ExportError(
                f"onnxruntime {ort.__version__} cannot run the graph's DeformConv (ONNX opset 19; onnxruntime's "
                "kernel arrived in 1.25): upgrade onnxruntime, export a model trained with deformable=False, or "
                f"use --format torchscript / torch-export. onnxruntime said: {text[:300]}"
            ) from exc
        raise ExportError(f"onnxruntime cannot load {path}: {text[:500]}") from exc


def _runner(fmt: str, path: Path, device: str = "cpu", threads: int | None = None):
    """A callable ``batch (B, 3, H, W) CPU float32 → (class_prob, centerness, deltas)`` tensors over the artefact."""
    if fmt == "onnx":
        session = _onnx_session(path, device, threads)

        def run(batch: torch.Tensor):
            outs = session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch.detach().cpu().numpy()})
            return tuple(torch.from_numpy(o) for o in outs)

        return run
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated.*", category=FutureWarning)
            module = torch.jit.load(str(path), map_location=device).eval()
    elif fmt == "torch-export":
        module = torch.export.load(str(path)).module()
        if str(device) != "cpu":
            module = module.to(device)
    else:
        raise ExportError(f"unknown export format {fmt!r}; known: {sorted(FORMATS)}")

    def run_torch(batch: torch.Tensor):
        with torch.inference_mode():
            return tuple(module(batch.to(device)))

    return run_torch


def _check(wrapper, run, inputs: list[torch.Tensor]) -> list[dict]:
    """Run the exported artefact and the PyTorch wrapper on ``inputs``; the largest |Δ| per output."""
    report = []
    for x in inputs:
        with torch.no_grad():
            ref = wrapper(x)
        got = run(x)
        diffs = {}
        for name, a, b in zip(OUTPUT_NAMES, got, ref, strict=True):
            a = a.float().cpu()
            if a.shape != b.shape:
                raise ExportError(
                    f"exported output {name} has shape {tuple(a.shape)} for input {tuple(x.shape)}, "
                    f"PyTorch {tuple(b.shape)}"
                )
            diffs[name] = float((a - b).abs().max()) if a.numel() else 0.0
            if not torch.allclose(a, b, rtol=CHECK_RTOL, atol=CHECK_ATOL):
                raise ExportError(
                    f"the exported graph disagrees with PyTorch on {name} by up to {diffs[name]:.3g} for input "
                    f"{tuple(x.shape)}. If the input size differs from the traced one, the backbone's padding "
                    "depends on the input size (e.g. Swin) and tracing kept the traced size: export with a fixed "
                    "--image-size WxH instead"
                )
        report.append({"input": list(x.shape), "max_abs_diff": diffs})
    return report


def _file_digest(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _versions() -> dict[str, str]:
    import torchvision

    out = {"torch": torch.__version__, "torchvision": torchvision.__version__}
    for name in ("onnx", "onnxruntime", "onnxscript"):
        with contextlib.suppress(ImportError):
            out[name] = __import__(name).__version__
    return out


def export_model(
    model: nn.Module,
    prompts: Sequence[str],
    out_dir: str | Path,
    *,
    format: str = "onnx",
    exporter: str = "torchscript",
    opset: int = DEFAULT_OPSET,
    image_size: tuple[int, int] | None = None,
    category_ids: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    members: dict[str, list[str]] | None = None,
    source: str | None = None,
    check: bool = True,
) -> dict:
    """Freeze ``prompts`` into ``model`` (a :class:`DetCLIPv2`, moved to the CPU) and write ``out_dir/model.<ext>``
    plus the sidecar ``out_dir/export.json``; returns the sidecar's content.

    Args:
        format: ``"onnx"`` (``model.onnx``), ``"torchscript"`` (``model.pt``) or ``"torch-export"`` (``model.pt2``).
        exporter: for ONNX, ``"torchscript"`` (the legacy TorchScript-based ``torch.onnx.export``, dynamic H/W)
            or ``"dynamo"`` (``torch.export``-based; needs ``image_size``).
        opset: the ONNX opset; ≥ 19 when the model has the deformable module (ONNX ``DeformConv``).
        image_size: ``(W, H)``, multiples of ``size_divisor``: fix the graph's input size; every image is then
            padded to it (so results equal ``predict`` only for batches ``predict`` pads to the same size:
            GroupNorm sees the padding). None keeps H and W dynamic (legacy ONNX exporter, TorchScript).
        category_ids / names: per prompt, written into the sidecar's vocabulary.
        members: per suite member, its prompts (``--suite``); written into the sidecar.
        source: where the model came from (the CLI's ``--model``), for the sidecar.
        check: run the artefact on one or two inputs and compare with PyTorch (needs onnxruntime for ONNX);
            raises :class:`ExportError` beyond ``rtol=1e-3, atol=1e-4``.
    """
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r}; choose from {', '.join(FORMATS)}")
    if format == "onnx" and exporter not in EXPORTERS:
        raise ExportError(f"unknown ONNX exporter {exporter!r}; choose from {', '.join(EXPORTERS)}")
    cfg = model.config
    if format == "onnx" and cfg.deformable and opset < DEFORM_CONV_OPSET:
        raise ExportError(
            f"this model has the deformable module (config.deformable=True): ONNX has DeformConv only from opset "
            f"{DEFORM_CONV_OPSET}; use --opset {DEFORM_CONV_OPSET} or higher, a model trained with "
            "deformable=False (any opset), or --format torchscript / torch-export"
        )
    fixed = None
    if image_size is not None:
        w, h = (int(v) for v in image_size)
        if w <= 0 or h <= 0 or w % cfg.size_divisor or h % cfg.size_divisor:
            raise ExportError(
                f"--image-size {w}x{h}: width and height must be positive multiples of size_divisor={cfg.size_divisor}"
            )
        fixed = (h, w)
    needs_fixed = format == "torch-export" or (format == "onnx" and exporter == "dynamo")
    if needs_fixed and fixed is None:
        what = "torch.export" if format == "torch-export" else "the dynamo ONNX exporter"
        raise ExportError(
            f"{what} needs a fixed input size: add --image-size WxH (e.g. the padded test_size of a landscape "
            f"image, {_example_size(InferenceSettings.from_config(cfg))[1]}x"
            f"{_example_size(InferenceSettings.from_config(cfg))[0]}). With symbolic height/width its shape "
            "reasoning through the backbone's strided convs did not finish in 15 minutes (torch 2.14); "
            "for dynamic sizes use --format onnx --exporter torchscript, or --format torchscript"
        )
    prompts = [str(p) for p in prompts]
    if category_ids is not None and len(category_ids) != len(prompts):
        raise ValueError("category_ids must give one id per prompt")
    if names is not None and len(names) != len(prompts):
        raise ValueError("names must give one name per prompt")

    model = model.to("cpu").eval()
    identity = model.identity() if hasattr(model, "identity") else None
    provenance = model.provenance() if hasattr(model, "provenance") else {}
    wrapper = FrozenVocabularyDetector(model, prompts)
    settings = InferenceSettings.from_config(cfg, fixed_size=fixed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / FORMATS[format]
    h, w = fixed or _example_size(settings)
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(2, 3, h, w, generator=generator)  # batch 2: torch.export specialises a size-1 dim
    dynamic_hw = _dynamic_hw(format, exporter, fixed is not None)
    try:
        _export_graph(wrapper, example, path, format, exporter, opset, dynamic_hw)
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(
            f"{format} export ({exporter if format == 'onnx' else 'torch'}) failed: "
            f"{type(exc).__name__}: {str(exc)[:800]}"
        ) from exc

    report = None
    if check and not (format == "onnx" and _missing("onnxruntime")):
        inputs = [example[:1]]
        if dynamic_hw:  # another batch and size: does the traced graph generalise?
            d = cfg.size_divisor
            inputs.append(torch.randn(3, 3, max(d, h - d), w + d, generator=generator))
        else:
            inputs.append(torch.randn(3, 3, h, w, generator=generator))
        report = _check(wrapper, _runner(format, path), inputs)

    sidecar = {
        "sidecar_version": SIDECAR_VERSION,
        "format": format,
        "exporter": exporter
        if format == "onnx"
        else {"torchscript": "torch.jit.trace", "torch-export": "torch.export"}[format],
        "opset": opset if format == "onnx" else None,
        "file": path.name,
        "file_bytes": path.stat().st_size,
        "model": {
            "name": cfg.name,
            "source": source,
            "identity": identity,
            "deformable": cfg.deformable,
            "config": cfg.to_dict(),
        },
        "provenance": provenance,
        "vocabulary": {
            "prompts": prompts,
            "category_ids": None if category_ids is None else [int(c) for c in category_ids],
            "names": None if names is None else [str(n) for n in names],
            **({"members": members} if members else {}),
        },
        "input": {
            "name": INPUT_NAME,
            "shape": ["batch", 3, h if fixed else "height", w if fixed else "width"],
            "dtype": "float32",
            "layout": "NCHW, RGB",
            # files are read upright, as `predict` and suite evaluation read them: boxes come back in that frame
            "exif_transpose": True,
            "preprocess": (
                "per image, read upright (EXIF Orientation applied: PIL.ImageOps.exif_transpose): resize keeping the aspect by min(test_size[1] / short side, test_size[0] / long side) "
                "(PIL bicubic, sizes rounded); x / 255; (x - pixel_mean) / pixel_std; then zero-pad bottom/right "
                "to the batch's largest height and width (at least fixed_size), rounded up to a multiple of "
                "size_divisor; images go through in chunks of batch_size"
            ),
        },
        "outputs": {
            "class_prob": ["batch", "anchors", len(prompts)],
            "centerness": ["batch", "anchors"],
            "deltas": ["batch", "anchors", 4],
            "anchors": "levels P3.. in order, each row-major over ceil(H / stride) x ceil(W / stride)",
        },
        "inference": settings.to_dict(),
        "postprocess": (
            "per image and level: (anchor, class) pairs with class_prob > score_thresh, the pre_nms_topk best by "
            "class_prob; boxes = deltas decoded against anchors (side anchor_scale x stride, centre "
            "(i + anchor_center_offset) x stride; box_coder_weights as torchvision's BoxCoder); score = class_prob x "
            "centerness; class-wise NMS at nms_iou; the max_dets_per_image best; boxes / resize factor, clipped "
            "to the image"
        ),
        "check": report,
        "versions": _versions(),
    }
    from detclip_bench.io import atomic_write_json

    atomic_write_json(out / SIDECAR, sidecar)
    return sidecar


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


# ---- runner ---------------------------------------------------------------------------------------------


def _resolve(source: str | Path) -> tuple[Path, dict]:
    """An export folder (or its model file) → (folder, sidecar)."""
    path = Path(source).expanduser()
    folder = path.parent if path.is_file() else path
    sidecar_path = folder / SIDECAR
    if not sidecar_path.is_file():
        raise DataError(
            str(source),
            SIDECAR,
            "not an export folder: no export.json beside the model "
            "(make one with `detclip-bench export --model CKPT --prompts ... --out DIR`)",
        )
    from detclip_bench.io import read_json

    sidecar = read_json(sidecar_path)
    if (
        not isinstance(sidecar, dict)
        or sidecar.get("sidecar_version") != SIDECAR_VERSION
        or sidecar.get("format") not in FORMATS
    ):
        raise DataError(
            str(sidecar_path),
            "-",
            f"unsupported export sidecar (need sidecar_version {SIDECAR_VERSION} and a format in {sorted(FORMATS)})",
        )
    if not (folder / sidecar["file"]).is_file():
        raise DataError(str(folder), sidecar["file"], "the exported model file named by export.json is missing")
    return folder, sidecar


class OnnxDetector(PreparedInputs):
    """An exported DetCLIPv2 (``export_model`` / ``detclip-bench export``) as a :class:`Detector`.

    Runs ``model.onnx`` with ONNX Runtime (the sidecar's format decides: the ``torchscript`` and ``torch-export``
    artefacts of the same verb run too, through torch), with exactly ``predict``'s pre- and post-processing
    (:func:`~reference_model.detclipv2.decode.run_dense_prepared`) and the settings in ``export.json``.

    ``predict(images, prompts)``: ``prompts`` must be the frozen vocabulary, or prompts taken from it (any
    order: the class columns are selected, which gives what ``predict`` gives for those prompts, since each
    column is scored on its own); any other prompt is a :class:`DataError`. ``identity()`` is the sha256 of
    the model file and the sidecar.
    """

    def __init__(
        self, source: str | Path, *, device: str = "cpu", threads: int | None = None, name: str | None = None
    ) -> None:
        self.folder, self.sidecar = _resolve(source)
        self.format = self.sidecar["format"]
        self.path = self.folder / self.sidecar["file"]
        self.prompts: tuple[str, ...] = tuple(self.sidecar["vocabulary"]["prompts"])
        self._column = {p: i for i, p in enumerate(self.prompts)}
        self.settings = InferenceSettings.from_dict(self.sidecar["inference"])
        self.name = name or f"onnx:{source}"
        self.device = device
        self._identity = _file_digest([self.path, self.folder / SIDECAR])
        self._run = _runner(self.format, self.path, device, threads)

    def identity(self) -> str:
        return self._identity

    def provenance(self) -> dict:
        model = self.sidecar.get("model", {})
        return {
            **dict(self.sidecar.get("provenance") or {}),
            "export": {
                "format": self.format,
                "exporter": self.sidecar.get("exporter"),
                "opset": self.sidecar.get("opset"),
                "source": model.get("source"),
                "source_identity": model.get("identity"),
                "prompts": len(self.prompts),
            },
        }

    def columns(self, prompts: Sequence[str]) -> list[int] | None:
        """The class columns of ``prompts`` in the frozen vocabulary (None: exactly the vocabulary)."""
        prompts = [str(p) for p in prompts]
        if tuple(prompts) == self.prompts:
            return None
        missing = [p for p in prompts if p not in self._column]
        if missing or not prompts:
            more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
            shown = ", ".join(repr(p) for p in missing[:5]) + more
            raise DataError(
                str(self.folder),
                "prompts",
                f"this export has a frozen vocabulary of {len(self.prompts)} prompts "
                f"({', '.join(repr(p) for p in self.prompts[:5])}{', …' if len(self.prompts) > 5 else ''})"
                f"; {'no prompts were given' if not prompts else 'not in it: ' + shown}. Re-export "
                "with these prompts (detclip-bench export --prompts/--vocab/--suite)",
            )
        return [self._column[p] for p in prompts]

    def input_transform(self) -> ImageTransform:
        """Resize, normalise, pad as the sidecar's settings say (run by the evaluation loop's workers)."""
        return ImageTransform(self.settings)

    def predict_inputs(
        self,
        inputs: Sequence[PreparedImage],
        prompts: Sequence[str],
        *,
        max_dets_per_image: int | None = None,
        score_thresh: float | None = None,
    ) -> list[Prediction]:
        columns = self.columns(prompts)
        settings = self.settings
        thresh = settings.score_thresh if score_thresh is None else score_thresh
        max_dets = settings.max_dets_per_image if max_dets_per_image is None else max_dets_per_image

        def forward(batch: torch.Tensor):
            class_prob, centerness, deltas = self._run(batch)
            if columns is not None:
                class_prob = class_prob[..., columns]
            h, w = batch.shape[-2:]
            expected = sum(a * b for a, b in level_sizes(h, w, settings.strides))
            if class_prob.shape[1] != expected:
                raise ExportError(
                    f"the graph gave {class_prob.shape[1]} anchors for a {h}x{w} input; the levels "
                    f"at strides {settings.strides} have {expected}"
                )
            return class_prob, centerness, deltas, anchors_for(h, w, settings, device=class_prob.device)

        with torch.inference_mode():
            return run_dense_prepared(forward, list(inputs), settings, thresh=thresh, max_dets=max_dets)


def load_onnx_detector(source: str, *, device: str = "cpu") -> OnnxDetector:
    """The ``onnx`` model family (``--model onnx:<export folder>``): an :class:`OnnxDetector` over the folder.

    ``device="auto"``: ONNX Runtime's CUDA provider where it has one and a GPU is there, else the CPU."""
    try:
        return OnnxDetector(source, device=_onnx_device(device))
    except ExportError as exc:
        raise DataError(source, "model", str(exc)) from exc


load_onnx_detector.resolves_auto_device = True  # see detclip_bench.adapters.models.load_detector


def _onnx_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import onnxruntime as ort
    except ImportError:
        return "cpu"  # the session then says what to install
    return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() and torch.cuda.is_available() else "cpu"
