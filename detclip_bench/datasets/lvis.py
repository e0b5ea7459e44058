"""LVIS v1 (train / val, and MDETR's or GLIP's minival) → DETECTION samples.

* v1 images have no ``file_name``: it is derived from ``coco_url`` as ``<split>/<name>``
  (``val2017/000000xxxxxx.jpg``) and resolved under ``image_root`` (default: the ``coco``
  folder beside or above the json), because LVIS val draws from COCO train2017 *and* val2017.
  GLIP's ``..._inserted_image_name.json`` carries that ``file_name`` already; it wins if present.
* ``neg_category_ids`` / ``not_exhaustive_category_ids`` go to ``meta`` (federated eval).
* Category ``def`` → ``Concept.definition``; ``frequency`` (r/c/f), ``synonyms``, ``synset`` are
  available via :meth:`LvisV1.category_info`.
* Prompt names: ``name`` with underscores → spaces, parentheses kept (``bat_(animal)`` →
  ``"bat (animal)"``): the parenthesised part is what tells the two "bat"s apart, and GLIP-style
  dropping of ``(...)`` would create duplicate prompts.
* Bad input handling is the COCO loader's (:mod:`detclip_bench.datasets.coco`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detclip_bench.datasets.base import first_existing
from detclip_bench.datasets.coco import CocoDetection
from detclip_bench.datasets.coco_index import IndexSpec
from detclip_bench.schema import Concept

__all__ = ["LvisV1", "clean_lvis_name", "file_name_from_coco_url"]


def clean_lvis_name(name: str) -> str:
    return " ".join(name.replace("_", " ").split())


def file_name_from_coco_url(url: str) -> str:
    """``http://images.cocodataset.org/val2017/000000000139.jpg`` → ``val2017/000000000139.jpg``."""
    return "/".join(url.rstrip("/").split("/")[-2:])


class LvisV1(CocoDetection):
    """LVIS v1 train/val json, or MDETR's/GLIP's minival (format ``lvis``) → DETECTION samples.

    On disk: the LVIS json (COCO layout; images carry ``coco_url`` and the federated lists
    ``neg_category_ids`` / ``not_exhaustive_category_ids``; categories carry ``def``,
    ``frequency``, ``synonyms``, ``synset``) and the COCO 2017 images: an image's file is its
    ``file_name`` when present (GLIP's ``..._inserted_image_name.json``), else
    ``<split>2017/<name>`` taken from ``coco_url``, under ``image_root``.

    Samples are filled as by :class:`CocoDetection`, except: ``Concept.name`` is the category name
    with underscores as spaces (parentheses kept: ``"bat (animal)"``), ``Concept.definition`` is
    its ``def`` (so prompts are ``"name, definition"``), and ``meta`` =
    ``{"annotation_ids", "neg_category_ids", "not_exhaustive_category_ids"}`` (no ``iscrowd``).
    :meth:`category_info` gives frequency, synonyms, synset and counts per category id.

    Args:
        path: the LVIS json.
        image_root: the COCO image folder holding ``train2017/`` and ``val2017/`` (default: the
            first existing of ``coco/`` beside the json, ``../coco/``, ``../coco/images/``; else the
            json's folder).
        cache, check_images, skip_log: as for :class:`CocoDetection`.
    """

    format_name = "lvis"
    spec = IndexSpec(
        image_str=("file_name", "coco_url"),
        image_ragged=("neg_category_ids", "not_exhaustive_category_ids"),
        ann_int=(),
    )

    def default_image_root(self) -> Path:
        here = self.path.parent
        return first_existing([here / "coco", here.parent / "coco", here.parent / "coco" / "images"], here)

    def make_concept(self, cat: dict) -> Concept:
        return Concept(
            name=clean_lvis_name(str(cat["name"])),
            definition=str(cat.get("def") or "").strip(),
            key=str(cat["name"]),
            category_id=int(cat["id"]),
        )

    def category_info(self) -> dict[int, dict]:
        """Category id → frequency, synonyms, synset, image/instance counts (as in the json)."""
        keys = ("frequency", "synonyms", "synset", "image_count", "instance_count")
        return {int(c["id"]): {k: c.get(k) for k in keys} for c in self.categories}

    def relative_file(self, i: int) -> str:
        name = self.index.image_str("file_name", i)
        return name if name else file_name_from_coco_url(self.index.image_str("coco_url", i))

    def image_meta(self, i: int, ann: np.ndarray) -> dict:
        return {
            "neg_category_ids": self.index.image_list("neg_category_ids", i),
            "not_exhaustive_category_ids": self.index.image_list("not_exhaustive_category_ids", i),
        }
