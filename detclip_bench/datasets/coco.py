"""COCO-style detection json → DETECTION samples; Objects365 v1/v2 is the same code path plus quirks.

Per-case decisions (bad input):

* malformed/truncated json, duplicate ids, unknown category id, annotation → missing image,
  image w/h ≤ 0: ``DataError`` (see :mod:`coco_index`).
* image file missing on disk: counted skip of the image (O365 v2 ships 3 such images;
  checked once at open by listing each image folder, so it stays cheap for 1.7M images).
* box with w or h ≤ 0: counted skip of the box. Box wholly outside the image: counted skip.
  Box partly outside (by more than 1 px): clipped to the image and counted as "clipped".
  (Real O365/COCO contain a few of each; ``data validate`` lists every one.)
* corrupt JPEG: ``DataError`` when the image is decoded (``ImageRef.open``).

O365: raw category names stay the ``Concept.key`` (what the json and the evaluators match on);
``Concept.name`` is the prompt name: stripped, typos fixed (data.md §1.4), slash synonyms split
with the first kept as the name (all of them via :meth:`Objects365.synonyms`, YOLO-World style).
v2 ``file_name`` ``images/v1/patch8/x.jpg`` is resolved as ``patch8/x.jpg`` under the image root.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from detclip_bench.datasets.base import MapSource, first_existing
from detclip_bench.datasets.boxes import check_boxes
from detclip_bench.datasets.coco_index import IndexSpec, load_or_build_index
from detclip_bench.errors import DataError
from detclip_bench.schema import Concept, DataKind, ImageRef, Sample

__all__ = [
    "KNOWN_MISSING_REASON",
    "O365_KNOWN_MISSING",
    "O365_TYPO_FIXES",
    "CocoDetection",
    "Objects365",
    "clean_o365_name",
]


class CocoDetection(MapSource):
    """Any COCO detection json (format ``coco``) → map-style DETECTION samples, one per image.

    On disk: a json with ``images`` (``id``, ``file_name``, ``width``, ``height``), ``annotations``
    (``id``, ``image_id``, ``category_id``, ``bbox`` as xywh pixels, ``iscrowd``) and ``categories``
    (``id``, ``name``); image files at ``image_root / file_name``. The json is parsed once into a
    columnar index cached beside it as ``<json>.index.npz`` (:mod:`~detclip_bench.datasets.coco_index`).
    Bad boxes and images missing on disk are counted skips; see the module docstring for every case.

    Each :class:`~detclip_bench.schema.Sample` fills: ``kind`` = DETECTION, ``source`` = the format
    name, ``record_id`` = the image id (as a string), ``image`` (path under ``image_root``),
    ``width``/``height`` from the json, ``concepts`` = the categories present in the image (unique,
    each with ``name`` (stripped), ``key`` (raw name) and ``category_id``; no definition),
    ``boxes`` ``(N, 4)`` float32 xyxy pixels clipped to the image, ``labels`` ``(N,)`` into
    ``concepts``, and ``meta`` = ``{"annotation_ids", "iscrowd"}`` (arrays aligned with the boxes;
    crowd boxes are kept). Images without annotations are samples with no boxes.
    :meth:`vocabulary` is every category, in id order.

    Args:
        path: the annotation json.
        image_root: the folder ``file_name`` is relative to (default: the json's folder).
        cache: read and write the ``.index.npz`` cache (rebuilt when the json's size or mtime changes).
        check_images: list each image folder once and skip images missing on disk.
        skip_log: the :class:`~detclip_bench.errors.SkipLog` counting skipped records (default: a new one).

    Example::

        >>> ds = CocoDetection("coco/annotations/instances_val2017.json", image_root="coco/val2017")
        >>> s = ds[0]
        >>> s.boxes.shape, [c.name for c in s.box_concepts][:3], s.load_image().size
    """

    format_name = "coco"
    kind = DataKind.DETECTION
    spec = IndexSpec()

    def __init__(self, path, *, image_root=None, cache: bool = True, check_images: bool = True, skip_log=None) -> None:
        super().__init__(path, skip_log)
        self.index = load_or_build_index(self.path, self.spec, cache=cache)
        self.image_root = Path(image_root) if image_root else self.default_image_root()
        cats = sorted(self.index.categories, key=lambda c: int(c["id"]))
        self.categories = self.filter_categories(cats)
        self._vocab = tuple(self.make_concept(c) for c in self.categories)
        self._cat_ids = np.array([int(c["id"]) for c in self.categories], np.int64)
        self._prepare_boxes()
        keep = self.keep_images()
        if check_images:
            keep &= self._images_on_disk(keep)
        self.rows = np.flatnonzero(keep)

    # ---- hooks for the format variants -------------------------------------------------
    def default_image_root(self) -> Path:
        return self.path.parent

    def filter_categories(self, cats: list[dict]) -> list[dict]:
        return cats

    def make_concept(self, cat: dict) -> Concept:
        return Concept(name=str(cat["name"]).strip(), key=str(cat["name"]), category_id=int(cat["id"]))

    def relative_file(self, i: int) -> str:
        return self.index.image_str("file_name", i)

    def image_meta(self, i: int, ann: np.ndarray) -> dict:
        return {"iscrowd": self.index.a["ann_iscrowd"][ann]}

    def keep_images(self) -> np.ndarray:
        return np.ones(self.index.n_images, bool)

    def missing_reason(self, relative_file: str) -> str:
        return "image file missing on disk"

    # ---- shared machinery ---------------------------------------------------------------
    def _prepare_boxes(self) -> None:
        """Validate every box once, vectorised: xyxy, clipped, with a keep mask (skips counted)."""
        a = self.index.a
        per_ann_img = np.repeat(np.arange(self.index.n_images), np.diff(a["ann_off"]))
        w = a["img_w"][per_ann_img].astype(np.float32)
        h = a["img_h"][per_ann_img].astype(np.float32)
        x, y, bw, bh = a["ann_bbox"].T if len(a["ann_bbox"]) else (np.zeros(0, np.float32),) * 4
        check = check_boxes(np.stack([x, y, x + bw, y + bh], axis=1), w, h)
        for j, reason in check.problems():
            self.skips.skip(str(self.path), f"annotation {int(a['ann_id'][j])}", reason)
        self._boxes, self._box_ok = check.boxes, check.ok
        self._ann_vocab = np.searchsorted(self._cat_ids, a["ann_cat"]) if len(self._cat_ids) else a["ann_cat"] * 0

    def image_path(self, i: int) -> Path:
        relative = self.relative_file(i)
        if not relative.strip():  # would resolve to the image root itself and pass the on-disk check
            raise DataError(
                str(self.path),
                f"image {int(self.index.a['img_id'][i])}",
                "no file name for the image (needs 'file_name', or 'coco_url' for LVIS)",
            )
        return self.image_root / relative

    def _images_on_disk(self, candidates: np.ndarray) -> np.ndarray:
        """One directory listing per image folder instead of one stat per image."""
        by_dir: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for i in np.flatnonzero(candidates).tolist():
            p = self.image_path(i)
            by_dir[str(p.parent)].append((i, p.name))
        ok = np.ones(self.index.n_images, bool)
        for folder, items in by_dir.items():
            try:
                present = set(os.listdir(folder))
            except OSError:
                present = set()
            for i, name in items:
                if name not in present:
                    ok[i] = False
                    rec = f"image {int(self.index.a['img_id'][i])} ({Path(folder) / name})"
                    self.skips.skip(str(self.path), rec, self.missing_reason(self.relative_file(i)))
        return ok

    def vocabulary(self) -> tuple[Concept, ...]:
        return self._vocab

    def __len__(self) -> int:
        return len(self.rows)

    def record_id(self, index: int) -> str:
        return str(int(self.index.a["img_id"][self.rows[index]]))

    def __getitem__(self, index: int) -> Sample:
        i = int(self.rows[index])
        sl = self.index.ann_slice(i)
        ann = np.arange(sl.start, sl.stop)[self._box_ok[sl]]
        vocab_idx = self._ann_vocab[ann]
        present, labels = np.unique(vocab_idx, return_inverse=True)
        return Sample(
            kind=self.kind,
            source=self.format_name,
            record_id=str(int(self.index.a["img_id"][i])),
            image=ImageRef(path=str(self.image_path(i))),
            width=int(self.index.a["img_w"][i]),
            height=int(self.index.a["img_h"][i]),
            concepts=tuple(self._vocab[k] for k in present.tolist()),
            boxes=self._boxes[ann],
            labels=labels.reshape(-1),
            meta={"annotation_ids": self.index.a["ann_id"][ann], **self.image_meta(i, ann)},
        )


# In zhiyuan_objv2_train.json but not in the released patches (mmdet's objv2_ignore_list).
O365_KNOWN_MISSING = frozenset(
    {
        "patch16/objects365_v2_00908726.jpg",
        "patch6/objects365_v1_00320532.jpg",
        "patch6/objects365_v1_00320534.jpg",
    }
)
KNOWN_MISSING_REASON = "known-missing O365 v2 image"

# Misspelt words in raw O365 names (v2, and v1 lower-case) → prompt spelling; data.md §1.4
# (mmdet's fix_o365_names / Ultralytics' YAML). Matched as whole words, case-insensitively.
O365_TYPO_FIXES: dict[str, str] = {
    "moniter": "monitor",
    "bakset": "basket",
    "ballon": "balloon",
    "dinning": "dining",
    "billards": "billiards",
    "extention": "extension",
    "hotair": "hot-air",
    "hamimelon": "hami melon",
    "mushroon": "mushroom",
    "measur": "measure",
    "campel": "camel",
    "meat ball": "meatball",
    "buttefly": "butterfly",
    "teniis": "tennis",
    "pine apple": "pineapple",
}
_TYPO_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, O365_TYPO_FIXES), key=len, reverse=True)) + r")\b", re.I)


def _fix_word(m: re.Match) -> str:
    fixed = O365_TYPO_FIXES[m.group(0).lower()]
    return fixed[0].upper() + fixed[1:] if m.group(0)[0].isupper() else fixed


def clean_o365_name(raw: str) -> tuple[str, ...]:
    """Raw category name → prompt synonyms (first is the name): split on '/', strip, fix typos.

    ``"Moniter/TV"`` → ``("Monitor", "TV")``; ``"Tape Measur/ Ruler"`` → ``("Tape Measure", "Ruler")``;
    ``"Table Tennis "`` → ``("Table Tennis",)``. The capitalisation of each fixed word is kept.
    """
    out = [_TYPO_RE.sub(_fix_word, " ".join(part.split())) for part in raw.split("/")]
    return tuple(p for p in out if p) or (raw.strip(),)


class Objects365(CocoDetection):
    """Objects365 v1/v2 (format ``o365``) → DETECTION samples; the :class:`CocoDetection` path plus quirks.

    On disk: mmdet's layout, ``<root>/annotations/<json>`` (``zhiyuan_objv2_{train,val}.json`` for
    v2) and images in ``<root>/{train,val}/patchN/*.jpg``; v2's ``file_name``
    ``images/v1/patch8/x.jpg`` resolves as ``patch8/x.jpg`` under the image root. The three
    images of v2 train that were never released are skipped with their own reason.

    Samples are filled as by :class:`CocoDetection`, except that ``Concept.name`` is the cleaned
    prompt name (:func:`clean_o365_name`: stripped, typos fixed, first slash synonym) while
    ``Concept.key`` keeps the raw name, and ``meta`` also carries ``isfake`` and ``isreflected``.
    :meth:`synonyms` lists every slash synonym per category id.

    Args:
        path: the annotation json.
        image_root: the image folder (default: the first of ``<root>/<split>`` and
            ``<root>/images/<split>`` that exists, else ``<root>``; ``<root>`` is the folder above
            ``annotations/`` (or the json's folder), ``split`` is ``val`` when the json's name
            contains it, else ``train``).
        cache, check_images, skip_log: as for :class:`CocoDetection`.
    """

    format_name = "o365"
    spec = IndexSpec(ann_int=("iscrowd", "isfake", "isreflected"))

    def default_image_root(self) -> Path:
        top = self.path.parent.parent if self.path.parent.name == "annotations" else self.path.parent
        split = "val" if "val" in self.path.stem else "train"
        return first_existing([top / split, top / "images" / split], top)

    def make_concept(self, cat: dict) -> Concept:
        raw = str(cat["name"])
        names = clean_o365_name(raw)
        return Concept(name=names[0], key=raw, category_id=int(cat["id"]))

    def synonyms(self) -> dict[int, tuple[str, ...]]:
        """Category id → all cleaned slash synonyms (YOLO-World-style class text lists)."""
        return {int(c["id"]): clean_o365_name(str(c["name"])) for c in self.categories}

    def missing_reason(self, relative_file: str) -> str:
        if relative_file in O365_KNOWN_MISSING:
            return KNOWN_MISSING_REASON
        return super().missing_reason(relative_file)

    def relative_file(self, i: int) -> str:
        name = self.index.image_str("file_name", i)
        parts = name.replace("\\", "/").split("/")
        return "/".join(parts[-2:]) if len(parts) >= 2 and parts[-2].startswith("patch") else parts[-1]

    def image_meta(self, i: int, ann: np.ndarray) -> dict:
        a = self.index.a
        return {
            "iscrowd": a["ann_iscrowd"][ann],
            "isfake": a["ann_isfake"][ann],
            "isreflected": a["ann_isreflected"][ann],
        }
