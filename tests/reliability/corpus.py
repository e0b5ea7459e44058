"""Shared helpers for the bad-input corpus: every case builds its own input in a tmp dir and states
the one outcome it accepts — a DataError (or CLI ``error:`` line) naming file and record, or a
counted skip."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from detclip_bench.errors import DataError
from tests.datasets.writers import write_jpeg, write_json


@dataclass(frozen=True)
class Case:
    """``build(tmp) -> action``; ``action()`` must raise a DataError whose text contains every needle."""

    name: str
    build: Callable[[Path], Callable[[], object]]
    needles: tuple[str, ...]

    def __str__(self) -> str:
        return self.name


def assert_data_error(action: Callable[[], object], *needles: str) -> DataError:
    with pytest.raises(DataError) as err:
        action()
    text = str(err.value)
    missing = [n for n in needles if n not in text]
    assert not missing, f"error text lacks {missing}: {text}"
    return err.value


def params(cases: list[Case]):
    return [pytest.param(c, id=c.name) for c in cases]


def coco_dict(n_images: int = 2) -> dict:
    """A valid two-image COCO json (images a0.jpg, a1.jpg; annotation ids 1..n)."""
    images = [{"id": i + 1, "file_name": f"a{i}.jpg", "width": 48, "height": 32} for i in range(n_images)]
    anns = [
        {"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [1.0, 1.0, 10.0, 10.0], "area": 100.0, "iscrowd": 0}
        for i in range(n_images)
    ]
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}


def write_coco(root: Path, data: dict | None = None, *, images: bool = True, raw: str | None = None) -> Path:
    data = data if data is not None else coco_dict()
    if images:
        for im in data.get("images", []):
            if isinstance(im, dict) and im.get("file_name"):
                write_jpeg(root / im["file_name"])
    path = root / "ann.json"
    if raw is not None:
        root.mkdir(parents=True, exist_ok=True)
        path.write_text(raw)
        return path
    return write_json(path, data)


def png_bytes(w: int = 48, h: int = 32, color=(10, 200, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return buf.getvalue()


def dump(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path
