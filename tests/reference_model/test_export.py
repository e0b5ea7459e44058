"""``detclip-bench export``: a frozen-vocabulary DetCLIPv2 graph run by ONNX Runtime gives predict()'s detections.

The mini model keeps its random head (real EfficientNet-Lite0 and MiniLM towers); its DeformConv offsets are
made non-zero, so the check covers ONNX DeformConv's offset layout, not just a plain conv.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime", reason="ONNX export tests need onnxruntime: pip install 'detclip-bench[export]'")

from detclip_bench.errors import DataError
from detclip_bench.suites import SUITES
from detclip_bench.suites.runner import evaluate_suite
from reference_model.detclipv2 import create_model
from reference_model.detclipv2.export import (
    SIDECAR,
    ExportError,
    OnnxDetector,
    export_model,
)

MEMBER = "odinw13/AerialMaritimeDrone"  # 5 classes, images of two sizes (168×160 and 192×192)
SCORE_ATOL = 1e-4  # |Δ score| allowed between ONNX Runtime and PyTorch
BOX_ATOL = 1e-2  # pixels


def _mini_model(**overrides):
    torch.manual_seed(0)
    model = create_model("detclipv2-mini", **overrides).eval()
    if model.config.deformable:
        with torch.no_grad():  # DCNv2 starts with zero offsets: make them matter
            torch.nn.init.normal_(model.head.offset_mask.weight, std=0.05)
            torch.nn.init.normal_(model.head.offset_mask.bias, std=1.0)
    return model


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from detclip_bench.mini_world import generate

    root = tmp_path_factory.mktemp("export_world")
    generate(root, scale=0.1, seed=0, progress=False)
    return root


@pytest.fixture(scope="module")
def model():
    return _mini_model()


@pytest.fixture(scope="module")
def suite():
    full = SUITES.get("mini-odinw13")
    member = next(m for m in full.members if m.name == MEMBER)
    return dataclasses.replace(full, name="mini-odinw13-drone", members=(member,), aggregate="single")


@pytest.fixture(scope="module")
def prompts(suite, world) -> list[str]:
    from detclip_bench.predict.vocabulary import prompts_for

    target = suite.targets(world)[0]
    return prompts_for(suite, tuple(target.open().vocabulary()))


@pytest.fixture(scope="module")
def exported(model, prompts, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx")
    export_model(model, prompts, out, category_ids=list(range(1, len(prompts) + 1)))
    return out


def _images(world: Path) -> list[Image.Image]:
    """Val images of several ODinW members: five different sizes in one batch."""
    files = sorted(world.glob("odinw/**/valid/*.jpg"))
    assert len({Image.open(f).size for f in files}) >= 3
    return [Image.open(f).convert("RGB") for f in files[:12]]


def _compare(ref, got) -> tuple[float, float]:
    """Same detections: per image the same count and labels, and each PyTorch detection has a counterpart with
    its label, a score within SCORE_ATOL and the closest box (near-equal scores may swap ranks). Returns the
    largest |Δscore| and |Δbox| over those pairs."""
    d_score = d_box = 0.0
    for a, b in zip(ref, got, strict=True):
        assert len(a.scores) == len(b.scores)
        assert sorted(a.labels.tolist()) == sorted(b.labels.tolist())
        for i in range(len(a.scores)):
            cand = np.nonzero((b.labels == a.labels[i]) & (np.abs(b.scores - a.scores[i]) <= SCORE_ATOL))[0]
            assert len(cand), f"detection {i} (label {a.labels[i]}, score {a.scores[i]}) has no counterpart"
            box = np.abs(b.boxes[cand] - a.boxes[i]).max(axis=1)
            j = cand[int(box.argmin())]
            d_score = max(d_score, float(abs(b.scores[j] - a.scores[i])))
            d_box = max(d_box, float(box.min()))
    return d_score, d_box


def test_onnx_runtime_gives_predicts_boxes_and_scores(model, prompts, exported, world):
    images = _images(world)
    ref = model.predict(images, prompts)
    assert sum(len(p.scores) for p in ref) > 0, (
        "the random mini head must produce detections for this test to mean anything"
    )
    detector = OnnxDetector(exported)
    got = detector.predict(images, prompts)
    d_score, d_box = _compare(ref, got)
    print(
        f"ONNX Runtime vs PyTorch predict: max |Δscore| = {d_score:.2e}, max |Δbox| = {d_box:.2e} px "
        f"over {sum(len(p.scores) for p in ref)} detections"
    )
    assert d_score <= SCORE_ATOL and d_box <= BOX_ATOL
    # one image at a time (another padded size, another batch) agrees as well
    single = detector.predict(images[:1], prompts, max_dets_per_image=5, score_thresh=0.02)
    assert (
        _compare(model.predict(images[:1], prompts, max_dets_per_image=5, score_thresh=0.02), single)[0] <= SCORE_ATOL
    )

    sidecar = json.loads((exported / SIDECAR).read_text())
    assert sidecar["vocabulary"]["prompts"] == prompts and sidecar["opset"] == 19
    assert sidecar["inference"]["test_size"] == [192, 160] and sidecar["inference"]["pixel_mean"] == list(
        model.config.pixel_mean
    )
    assert max(v for c in sidecar["check"] for v in c["max_abs_diff"].values()) <= SCORE_ATOL
    graph = (exported / "model.onnx").read_bytes()
    assert b"DeformConv" in graph and b"Tokenizer" not in graph


def test_eval_of_the_export_gives_the_pytorch_ap(model, exported, suite, world):
    from detclip_bench.adapters.models import load_detector

    detector = load_detector(f"onnx:{exported}")  # through the detclip_bench.models entry point
    assert isinstance(detector, OnnxDetector) and detector.name == f"onnx:{exported}"
    assert len(detector.identity()) == 64 and detector.identity() != model.identity()
    ours = evaluate_suite(detector, suite, world, progress=False)
    theirs = evaluate_suite(model, suite, world, progress=False)
    a, b = ours.members[MEMBER]["coco"], theirs.members[MEMBER]["coco"]
    assert a.num_detections_received == b.num_detections_received > 0
    for key in ("AP", "AP50", "AP75"):
        assert a.metrics[key] == pytest.approx(b.metrics[key], abs=1e-9), key
    assert ours.provenance["export"]["format"] == "onnx"


def test_prompts_must_come_from_the_frozen_vocabulary(model, prompts, exported, world):
    detector = OnnxDetector(exported)
    images = _images(world)[:3]
    with pytest.raises(DataError, match=r"frozen vocabulary of 5 prompts.*not in it: 'zebra'"):
        detector.predict(images, [*prompts[:2], "zebra"])
    with pytest.raises(DataError, match="no prompts were given"):
        detector.predict(images, [])
    # prompts taken from the vocabulary, in any order: their columns, i.e. what predict gives for them
    subset = [prompts[3], prompts[0]]
    d_score, _ = _compare(model.predict(images, subset), detector.predict(images, subset))
    assert d_score <= SCORE_ATOL


def test_the_deformable_module_needs_opset_19_and_a_plain_model_exports_lower(model, prompts, tmp_path):
    with pytest.raises(ExportError, match=r"opset 19.*deformable=False"):
        export_model(model, prompts, tmp_path / "a", opset=17)
    with pytest.raises(ExportError, match="needs a fixed input size"):
        export_model(model, prompts, tmp_path / "b", exporter="dynamo")
    with pytest.raises(ExportError, match=r"multiples of size_divisor=32"):
        export_model(model, prompts, tmp_path / "c", image_size=(200, 160))
    plain = _mini_model(deformable=False)
    sidecar = export_model(plain, prompts[:2], tmp_path / "plain", opset=17)
    assert sidecar["model"]["deformable"] is False and sidecar["opset"] == 17
    assert b"DeformConv" not in (tmp_path / "plain" / "model.onnx").read_bytes()
    assert max(v for c in sidecar["check"] for v in c["max_abs_diff"].values()) <= SCORE_ATOL


@pytest.mark.parametrize(
    ("fmt", "exporter"),
    [
        pytest.param("onnx", "dynamo", marks=pytest.mark.slow),
        pytest.param("torch-export", "torchscript", marks=pytest.mark.slow),
        ("torchscript", "torchscript"),
    ],
)
def test_other_exporters_give_predicts_detections(fmt, exporter, model, prompts, world, tmp_path):
    if exporter == "dynamo":
        pytest.importorskip("onnxscript", reason="the dynamo ONNX exporter needs onnxscript")
    # CottontailRabbits' and Raccoon's 128×128 images resize to 160×160: predict pads them to exactly the
    # fixed 160×160 input, so the fixed-size graphs must agree with it too
    files = sorted(world.glob("odinw/CottontailRabbits/valid/*.jpg")) + sorted(
        world.glob("odinw/Raccoon/**/valid/*.jpg")
    )
    images = [Image.open(f).convert("RGB") for f in files]
    assert {im.size for im in images} == {(128, 128)}
    size = None if fmt == "torchscript" else (160, 160)
    export_model(model, prompts, tmp_path, format=fmt, exporter=exporter, image_size=size)
    d_score, d_box = _compare(model.predict(images, prompts), OnnxDetector(tmp_path).predict(images, prompts))
    assert d_score <= SCORE_ATOL and d_box <= BOX_ATOL


def test_cli_exports_a_suites_vocabulary_and_eval_runs_it(world, tmp_path):
    """`detclip-bench export --suite mini-odinw13` freezes the union of its 13 vocabularies; `eval --model onnx:DIR`
    on the whole suite then gives the checkpoint's own numbers."""
    from detclip_bench.cli.main import main
    from reference_model.detclipv2 import DetCLIPv2

    _mini_model().save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "export"
    assert (
        main(
            [
                "export",
                "--model",
                str(tmp_path / "ckpt"),
                "--suite",
                "mini-odinw13",
                "--data-root",
                str(world),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    sidecar = json.loads((out / SIDECAR).read_text())
    assert len(sidecar["vocabulary"]["members"]) == 13
    assert (
        main(
            [
                "eval",
                "--model",
                f"onnx:{out}",
                "--suite",
                "mini-odinw13",
                "--data-root",
                str(world),
                "--out",
                str(tmp_path / "eval"),
                "--no-cache",
            ]
        )
        == 0
    )
    ours = json.loads((tmp_path / "eval" / "results.json").read_text())["aggregate"]["metrics"]
    theirs = evaluate_suite(
        DetCLIPv2.from_pretrained(str(tmp_path / "ckpt")), SUITES.get("mini-odinw13"), world, progress=False
    ).aggregate()
    assert ours["AP"] == pytest.approx(theirs["AP"], abs=1e-9)
    assert (
        main(
            [
                "export",
                "--model",
                str(tmp_path / "ckpt"),
                "--prompts",
                "a, b",
                "--out",
                str(tmp_path / "x"),
                "--image-size",
                "160",
            ]
        )
        == 2
    )


def test_the_printed_next_step_runs_what_was_exported():
    from argparse import Namespace

    from reference_model.cli.export import _next_step

    base = dict(out="runs/export", format="onnx", suite=None, prompts=None, vocab=None)
    assert _next_step(Namespace(**{**base, "suite": "mini-odinw13"})) == (
        "detclip-bench eval --model onnx:runs/export --suite mini-odinw13"
    )
    # free prompts: predict on photos with the same prompts (an export answers only its frozen vocabulary)
    assert _next_step(Namespace(**{**base, "prompts": "cat, red apple"})) == (
        "detclip-bench predict --model onnx:runs/export --images PHOTOS --prompts 'cat, red apple'"
    )
    assert _next_step(Namespace(**{**base, "vocab": "classes.txt"})).endswith("--images PHOTOS --vocab classes.txt")
    assert _next_step(Namespace(**{**base, "format": "torchscript", "suite": "mini-lvis"})) is None
