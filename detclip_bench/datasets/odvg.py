"""ODVG jsonl (Open-GroundingDino / MM-GDINO) → DETECTION or GROUNDING samples.

One json object per line: ``{"filename", "height", "width", "detection": {"instances": [{"bbox":
xyxy, "label": int, "category": str}]}}`` or ``{..., "grounding": {"caption", "regions": [{"bbox",
"phrase"}]}}``. mmdet's ``goldg2odvg`` variant stores a list of boxes (and possibly a list of
phrases) per region plus ``tokens_positive``. Detection labels are resolved through the
``label_map`` json (``{"0": "person", ...}``; default: ``<stem>_label_map.json`` or
``label_map.json`` beside the file).

Map-style over line byte offsets (one scan at open), so a 1 GB jsonl is never held parsed.
Bad input: a malformed line, missing keys, unknown label or empty caption → DataError naming
file and line; bad boxes → counted skip (once per record), as in :mod:`boxes`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson

from detclip_bench.datasets.base import MapSource
from detclip_bench.datasets.boxes import check_boxes
from detclip_bench.errors import DataError
from detclip_bench.io import read_json
from detclip_bench.schema import Concept, DataKind, ImageRef, Sample

__all__ = ["OdvgJsonl", "line_offsets"]


def line_offsets(path: Path) -> np.ndarray:
    """Start offsets of the non-empty lines (plus the end offset), found with one buffered scan."""
    starts: list[int] = []
    pos = 0
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                starts.append(pos)
            pos += len(line)
    return np.array([*starts, pos], np.int64)


class OdvgJsonl(MapSource):
    """ODVG jsonl, Open-GroundingDino's / MM-GDINO's format (``odvg``) → DETECTION or GROUNDING samples.

    On disk: one json object per line with ``filename``, ``width``, ``height`` and either
    ``detection.instances`` (``bbox`` xyxy pixels, ``label``, ``category``) or
    ``grounding`` (``caption`` and ``regions`` with ``bbox`` and ``phrase``, possibly lists of
    boxes/phrases and ``tokens_positive``, as mmdet's ``goldg2odvg`` writes); images at
    ``image_root / filename``. Map-style over line offsets found in one scan at open. ``kind`` is
    DETECTION when the first record has ``detection``, else GROUNDING.

    Each :class:`~detclip_bench.schema.Sample` fills: ``kind`` (per record), ``source``,
    ``record_id`` = ``"line <n> (<filename>)"``, ``image``, ``width``/``height``, ``boxes``
    ``(N, 4)`` float32 xyxy pixels clipped to the image (bad boxes are counted skips), ``labels``
    ``(N,)`` into ``concepts``, and ``concepts`` = detection: the categories present (from the
    label map when there is one, else each instance's ``category`` string with its ``label`` as
    ``category_id``); grounding: the record's unique phrases with their
    character ``spans`` (from ``tokens_positive``, else the phrase's first occurrence in the
    caption), plus ``caption``. :meth:`vocabulary` is the label map's categories (empty without one).

    Args:
        path: the jsonl file.
        image_root: the folder ``filename`` is relative to (default: the jsonl's folder).
        label_map: a json ``{"<label>": "<name>", ...}`` resolving detection labels (default:
            ``<stem>_label_map.json`` (also with an ``_od`` stem suffix removed) or ``label_map.json``
            beside the file).
        skip_log: the :class:`~detclip_bench.errors.SkipLog` counting skipped boxes.
    """

    format_name = "odvg"

    def __init__(self, path, *, image_root=None, label_map=None, skip_log=None) -> None:
        super().__init__(path, skip_log)
        if not self.path.is_file():
            raise DataError(str(self.path), "-", "ODVG jsonl not found")
        self.image_root = Path(image_root) if image_root else self.path.parent
        self._offsets = line_offsets(self.path)
        lm = (
            Path(label_map)
            if label_map
            else next(
                (
                    p
                    for p in (
                        self.path.with_name(self.path.stem.removesuffix("_od") + "_label_map.json"),
                        self.path.with_name(self.path.stem + "_label_map.json"),
                        self.path.with_name("label_map.json"),
                    )
                    if p.is_file()
                ),
                None,
            )
        )
        self.label_map = {int(k): str(v) for k, v in read_json(lm).items()} if lm else {}
        self._vocab = tuple(Concept(name=v.strip(), key=v, category_id=k) for k, v in sorted(self.label_map.items()))
        self._vocab_pos = {c.category_id: n for n, c in enumerate(self._vocab)}
        self._reported: set[int] = set()
        self.kind = DataKind.GROUNDING
        if len(self) and "detection" in self._record(0):
            self.kind = DataKind.DETECTION

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def vocabulary(self) -> tuple[Concept, ...]:
        return self._vocab

    def _record(self, index: int) -> dict:
        start, end = int(self._offsets[index]), int(self._offsets[index + 1])
        with open(self.path, "rb") as fh:
            fh.seek(start)
            raw = fh.read(end - start)
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise DataError(str(self.path), f"line {index + 1}", f"malformed JSON: {exc}") from exc
        if not isinstance(rec, dict):
            raise DataError(str(self.path), f"line {index + 1}", "not a json object")
        return rec

    def __getitem__(self, index: int) -> Sample:
        rec = self._record(index)
        rid = f"line {index + 1}"
        try:
            w, h, name = int(rec["width"]), int(rec["height"]), str(rec["filename"])
            if "detection" in rec:
                concepts, boxes, labels, caption = self._detection(rec["detection"], rid)
            else:
                concepts, boxes, labels, caption = self._grounding(rec["grounding"], rid)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(str(self.path), rid, f"malformed ODVG record ({type(exc).__name__}: {exc})") from exc
        check = check_boxes(boxes, w, h)
        if index not in self._reported:
            self._reported.add(index)
            for j, reason in check.problems():
                self.skips.skip(str(self.path), f"{rid} box {j}", reason)
        keep = check.ok
        used, labels = np.unique(np.asarray(labels, np.int64)[keep], return_inverse=True)
        concepts = tuple(concepts[k] for k in used.tolist())
        kind = DataKind.DETECTION if "detection" in rec else DataKind.GROUNDING
        return Sample(
            kind=kind,
            source=self.format_name,
            record_id=f"{rid} ({name})",
            image=ImageRef(path=str(self.image_root / name)),
            width=w,
            height=h,
            concepts=concepts,
            boxes=check.boxes[keep],
            labels=labels.reshape(-1),
            caption=caption,
        )

    def _detection(self, det: dict, rid: str):
        concepts: list[Concept] = []
        pos: dict[object, int] = {}
        boxes, labels = [], []
        for inst in det.get("instances", []):
            if "label" in inst and self.label_map:
                lab = int(inst["label"])
                if lab not in self._vocab_pos:
                    raise DataError(str(self.path), rid, f"label {lab} is not in the label_map")
                key, concept = lab, self._vocab[self._vocab_pos[lab]]
            else:
                key = str(inst["category"])
                concept = Concept(name=key.strip(), key=key, category_id=inst.get("label"))
            if key not in pos:
                pos[key] = len(concepts)
                concepts.append(concept)
            boxes.append([float(v) for v in inst["bbox"]])
            labels.append(pos[key])
        return concepts, boxes, labels, ""

    def _grounding(self, gr: dict, rid: str):
        caption = str(gr["caption"])
        if not caption.strip():
            raise DataError(str(self.path), rid, "empty caption in a grounding record")
        concepts: list[Concept] = []
        pos: dict[str, int] = {}
        boxes, labels = [], []
        for region in gr.get("regions", []):
            bbs = region["bbox"]
            bbs = bbs if bbs and isinstance(bbs[0], list) else [bbs]
            phrases = region["phrase"] if isinstance(region["phrase"], list) else [region["phrase"]] * len(bbs)
            if len(phrases) != len(bbs):
                phrases = [" ".join(phrases)] * len(bbs)
            for bb, phrase in zip(bbs, phrases, strict=True):
                if phrase not in pos:
                    spans = tuple(tuple(int(v) for v in sp) for sp in region.get("tokens_positive") or [])
                    if not spans and caption.find(phrase) >= 0:
                        spans = ((caption.find(phrase), caption.find(phrase) + len(phrase)),)
                    pos[phrase] = len(concepts)
                    concepts.append(Concept(name=phrase, spans=spans))
                boxes.append([float(v) for v in bb])
                labels.append(pos[phrase])
        return concepts, boxes, labels, caption
