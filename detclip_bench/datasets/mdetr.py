"""GoldG: MDETR's ``final_mixed_train*.json`` and ``final_flickr_{separate,merged}GT_*.json`` → GROUNDING.

A sample is one caption with its boxes. A box's phrase is its ``tokens_positive`` character
slices joined with a space (YOLO-World's rule); the unique phrases of a caption become the
sample's concepts, each with the union of its spans. Images are found per ``data_source``:
``"coco"`` under ``coco_root`` (COCO train2014), ``"vg"`` under ``vg_root`` (GQA ``images/``);
Flickr entries under ``image_root``. All roots are options with GLIP/MM-GDINO-style defaults.

Bad input:

* boxes with w or h ≤ 0, outside the image, or without ``tokens_positive``: counted skip;
  images left with no valid box: counted skip (GLIP drops them too).
* empty caption, or a span that runs past the caption: ``DataError`` (the spans are meaningless).
* everything else as in :mod:`detclip_bench.datasets.coco`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detclip_bench.datasets.base import first_existing
from detclip_bench.datasets.coco import CocoDetection
from detclip_bench.datasets.coco_index import IndexSpec
from detclip_bench.errors import DataError
from detclip_bench.schema import Concept, DataKind, ImageRef, Sample

__all__ = ["MdetrGrounding", "phrase_of"]


def phrase_of(caption: str, spans) -> str:
    return " ".join(caption[int(s) : int(e)] for s, e in spans)


class MdetrGrounding(CocoDetection):
    """GoldG, MDETR's grounding jsons (format ``mdetr``) → GROUNDING samples, one per caption.

    On disk: ``final_mixed_train*.json`` or ``final_flickr_{separate,merged}GT_*.json`` (COCO layout;
    each image record has a ``caption`` and a ``data_source``, each annotation its
    ``tokens_positive`` character spans), usually in ``<root>/mdetr_annotations/``. Images resolve
    by ``data_source``: ``"coco"`` under ``coco_root``, ``"vg"`` under ``vg_root``, anything else
    (Flickr30k) under ``image_root``. Boxes without ``tokens_positive`` and records left with no
    valid box are counted skips; an empty caption or a span past its end is a DataError.

    Each :class:`~detclip_bench.schema.Sample` fills: ``kind`` = GROUNDING, ``source``,
    ``record_id`` = the image record's id, ``image``, ``width``/``height``, ``caption``,
    ``concepts`` = the caption's unique phrases (a box's spans joined by a space), each with the
    union of its ``spans`` and no ``category_id``, ``boxes`` ``(N, 4)`` float32 xyxy pixels,
    ``labels`` ``(N,)`` into ``concepts``, and ``meta`` = ``{"annotation_ids", "iscrowd",
    "data_source"}``. :meth:`vocabulary` is empty: grounding negatives come from a concept dictionary.

    Args:
        path: the MDETR json.
        image_root: the Flickr30k image folder (default: the first existing of
            ``<root>/flickr30k_images/<split>``, ``<root>/flickr30k_images`` and the other usual
            Flickr layouts).
        vg_root: the GQA/VG image folder (default: ``<root>/gqa/images``, ``<root>/vg/images`` or
            ``<root>/images``, the first that exists).
        coco_root: the COCO train2014 folder (default: ``<root>/coco/train2014`` or
            ``<root>/../coco/train2014``).
        cache, check_images, skip_log: as for :class:`CocoDetection`.

    ``<root>`` is the folder above ``mdetr_annotations/`` (or the json's folder); ``<split>`` is
    ``train``, ``val`` or ``test`` as the json's name says.
    """

    format_name = "mdetr"
    kind = DataKind.GROUNDING
    spec = IndexSpec(
        image_str=("file_name", "caption", "data_source"),
        ann_spans=("tokens_positive",),
        check_categories=False,
    )

    def __init__(self, path, *, image_root=None, vg_root=None, coco_root=None, **options) -> None:
        path = Path(path)
        top = path.parent.parent if path.parent.name == "mdetr_annotations" else path.parent
        split = next((s for s in ("train", "val", "test") if s in path.stem), "train")
        self.vg_root = (
            Path(vg_root)
            if vg_root
            else first_existing([top / "gqa" / "images", top / "vg" / "images", top / "images"], top / "gqa" / "images")
        )
        self.coco_root = (
            Path(coco_root)
            if coco_root
            else first_existing(
                [top / "coco" / "train2014", top.parent / "coco" / "train2014"], top / "coco" / "train2014"
            )
        )
        self._flickr_default = first_existing(
            [
                top / "flickr30k_images" / split,
                top / "flickr30k_images",
                top / "flickr30k" / "flickr30k_images" / split,
                top / "flickr30k" / "flickr30k_images",
                top / "flickr" / "full_images",
            ],
            top / "flickr30k_images",
        )
        super().__init__(path, image_root=image_root, **options)

    def default_image_root(self) -> Path:
        return self._flickr_default

    def vocabulary(self) -> tuple[Concept, ...]:
        # grounding concepts are per-caption phrases (the json's categories are placeholders); a trainer
        # draws grounding negatives from a training concept dictionary (docs/concept_dictionary.md)
        return ()

    def image_path(self, i: int) -> Path:
        source = self.index.image_str("data_source", i)
        root = {"coco": self.coco_root, "vg": self.vg_root}.get(source, self.image_root)
        return root / self.relative_file(i)

    def keep_images(self) -> np.ndarray:
        a = self.index.a
        empty = np.flatnonzero(np.diff(a["img_caption_off"]) == 0)
        if len(empty):
            raise DataError(
                str(self.path), f"image {int(a['img_id'][empty[0]])}", "empty caption in a grounding record"
            )
        no_span = (np.diff(a["ann_tokens_positive_off"]) == 0) & self._box_ok
        for j in np.flatnonzero(no_span):
            self.skips.skip(str(self.path), f"annotation {int(a['ann_id'][j])}", "box without tokens_positive")
        self._box_ok &= ~no_span
        n_img = self.index.n_images
        per_ann_img = np.repeat(np.arange(n_img), np.diff(a["ann_off"]))
        n_valid = np.bincount(per_ann_img[self._box_ok], minlength=n_img)
        for i in np.flatnonzero(n_valid == 0):
            self.skips.skip(str(self.path), f"image {int(a['img_id'][i])}", "no valid box")
        return n_valid > 0

    def __getitem__(self, index: int) -> Sample:
        i = int(self.rows[index])
        rid = str(int(self.index.a["img_id"][i]))
        caption = self.index.image_str("caption", i)
        sl = self.index.ann_slice(i)
        ann = np.arange(sl.start, sl.stop)[self._box_ok[sl]]
        phrase_idx: dict[str, int] = {}
        phrase_spans: list[list[tuple[int, int]]] = []
        labels = []
        for j in ann.tolist():
            spans = [(int(s), int(e)) for s, e in self.index.ann_spans("tokens_positive", j)]
            if any(not 0 <= s < e <= len(caption) for s, e in spans):
                raise DataError(
                    str(self.path),
                    f"image {rid} annotation {int(self.index.a['ann_id'][j])}",
                    f"tokens_positive {spans} outside the caption (length {len(caption)})",
                )
            phrase = phrase_of(caption, spans)
            k = phrase_idx.setdefault(phrase, len(phrase_idx))
            if k == len(phrase_spans):
                phrase_spans.append([])
            phrase_spans[k] += [sp for sp in spans if sp not in phrase_spans[k]]
            labels.append(k)
        concepts = tuple(Concept(name=p, spans=tuple(sorted(phrase_spans[k]))) for p, k in phrase_idx.items())
        return Sample(
            kind=self.kind,
            source=self.format_name,
            record_id=rid,
            image=ImageRef(path=str(self.image_path(i))),
            width=int(self.index.a["img_w"][i]),
            height=int(self.index.a["img_h"][i]),
            concepts=concepts,
            boxes=self._boxes[ann],
            labels=np.asarray(labels, np.int64),
            caption=caption,
            meta={
                "annotation_ids": self.index.a["ann_id"][ann],
                "iscrowd": self.index.a["ann_iscrowd"][ann],
                "data_source": self.index.image_str("data_source", i),
            },
        )
