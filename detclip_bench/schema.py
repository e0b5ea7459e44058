"""One sample schema for the four data kinds DetCLIPv2 trains on.

Every loader yields :class:`Sample`; the model, the recipes and the evaluators consume only it.

Conventions (the contract every module relies on):

* ``boxes`` are ``float32 (N, 4)`` in **xyxy absolute pixels of the original image**
  (``0 <= x1 < x2 <= width``), never COCO xywh and never normalised.
* ``labels`` are ``int64 (N,)`` indices into ``concepts``.
* ``concepts`` depend on the kind:

  - DETECTION: the dataset categories present in the image (unique), each with its
    ``category_id``, raw ``key`` (the exact string in the source file) and cleaned ``name``.
    The full vocabulary (for negative sampling) is the dataset's ``vocabulary``.
  - GROUNDING: the caption's phrases, each with its character ``spans`` into ``caption``.
  - IMAGE_TEXT: none; the model extracts noun phrases from ``caption`` itself.
  - CLASSIFICATION: exactly one concept, the class (``category_id`` = class index);
    ``caption`` is the class's prompt name.

* ``source`` and ``record_id`` name where the sample came from, so every error can say
  which file and which record was bad.
"""

from __future__ import annotations

import enum
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detclip_bench.errors import DataError

__all__ = ["Concept", "DataKind", "ImageRef", "Sample"]

# the EXIF tag that says how the stored pixels must be turned to stand upright (1: as stored)
EXIF_ORIENTATION = 0x0112

# a fixed (w, h) or a function of the stored (width, height) returning one (or None: no draft)
DraftSize = tuple[int, int] | Callable[[int, int], tuple[int, int] | None] | None


class DataKind(str, enum.Enum):
    DETECTION = "detection"
    GROUNDING = "grounding"
    IMAGE_TEXT = "image_text"
    CLASSIFICATION = "classification"


@dataclass(frozen=True, slots=True)
class Concept:
    """A text the model scores regions against: a category, a phrase or a class name."""

    name: str
    definition: str = ""
    key: str = ""
    category_id: int | None = None
    spans: tuple[tuple[int, int], ...] = ()

    def prompt(self) -> str:
        """The text encoded for this concept: ``"name, definition"`` (DetCLIP concept enrichment)."""
        return f"{self.name}, {self.definition}" if self.definition else self.name


@dataclass(frozen=True, slots=True)
class ImageRef:
    """Where an image's bytes live; decoded only when asked, so indexing stays cheap."""

    path: str | None = None
    data: bytes | None = None

    def describe(self) -> str:
        return self.path if self.path is not None else "<in-memory bytes>"

    def read_bytes(self, record: str = "?") -> bytes:
        if self.data is not None:
            return self.data
        if self.path is None:
            raise DataError("<none>", record, "sample has neither an image path nor image bytes")
        try:
            with open(self.path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise DataError(self.path, record, f"cannot read image: {exc.strerror or exc}") from exc

    def open(self, record: str = "?", draft: DraftSize = None, *, exif_transpose: bool = False):
        """Decode to an RGB ``PIL.Image``.

        ``draft=(w, h)`` lets JPEG decoding skip work via DCT scaling when the target is small
        (e.g. 320² image-text inputs); the result is at least that large, never smaller.
        ``draft`` may also be a callable ``(width, height) -> (w, h) | None`` given the stored
        (header) size, for targets that depend on it, such as a keep-ratio resize.
        ``exif_transpose=True`` turns the pixels upright by the EXIF Orientation tag
        (``PIL.ImageOps.exif_transpose``), the frame a phone shows and COCO annotation tools label in;
        inference (``predict``, suite evaluation) reads images this way, so boxes come back in that frame.
        """
        from PIL import Image, ImageOps, UnidentifiedImageError

        raw = self.read_bytes(record)
        try:
            img = Image.open(io.BytesIO(raw))
            if img.format == "JPEG":
                # the bytes are in memory: one decoder call, not one per 64 KiB block; same pixels, ~2% fewer instructions
                img.decodermaxblock = max(img.decodermaxblock, len(raw))
            if draft is not None and img.format == "JPEG":
                request = draft(*img.size) if callable(draft) else draft
                if request is not None:
                    img.draft("RGB", (max(1, int(request[0])), max(1, int(request[1]))))
            img.load()
            if exif_transpose and img.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1):
                img = ImageOps.exif_transpose(img)
        except UnidentifiedImageError as exc:  # PIL's own text names only its in-memory buffer object
            head = raw[:8]
            raise DataError(
                self.describe(), record, f"corrupt or unreadable image: not an image format PIL reads (starts {head!r})"
            ) from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(self.describe(), record, f"corrupt or unreadable image: {exc}") from exc
        return img.convert("RGB") if img.mode != "RGB" else img


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), dtype=np.float32)


def _empty_labels() -> np.ndarray:
    return np.zeros((0,), dtype=np.int64)


@dataclass(slots=True)
class Sample:
    """One training or evaluation record of any of the four data kinds (see module docstring)."""

    kind: DataKind
    source: str
    record_id: str
    image: ImageRef
    width: int = 0
    height: int = 0
    concepts: tuple[Concept, ...] = ()
    boxes: np.ndarray = field(default_factory=_empty_boxes)
    labels: np.ndarray = field(default_factory=_empty_labels)
    caption: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.kind = DataKind(self.kind)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        where = self.image.describe()
        if len(self.boxes) != len(self.labels):
            raise DataError(where, self.record_id, f"{len(self.boxes)} boxes but {len(self.labels)} labels")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.concepts)):
            raise DataError(where, self.record_id, f"label index out of range for {len(self.concepts)} concepts")
        if not np.isfinite(self.boxes).all():
            raise DataError(where, self.record_id, "box coordinates contain NaN or inf")
        if self.kind in (DataKind.IMAGE_TEXT, DataKind.CLASSIFICATION) and not self.caption.strip():
            raise DataError(where, self.record_id, f"empty caption in a {self.kind.value} sample")
        if self.kind is DataKind.CLASSIFICATION and len(self.concepts) != 1:
            raise DataError(where, self.record_id, "a classification sample needs exactly one concept")

    @property
    def box_concepts(self) -> list[Concept]:
        """The concept of every box, in box order."""
        return [self.concepts[i] for i in self.labels.tolist()]

    def load_image(self, draft: DraftSize = None, *, exif_transpose: bool = False):
        """The decoded image; ``exif_transpose=True`` for inference, upright as in :meth:`ImageRef.open`."""
        return self.image.open(self.record_id, draft=draft, exif_transpose=exif_transpose)
