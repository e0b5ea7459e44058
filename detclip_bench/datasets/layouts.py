"""Recognise the datasets in a folder as people have them on disk, and map them onto the README layout.

``recognise(ROOT)`` finds which datasets are present, in which known layout, and which of their
parts are there; ROOT may be a data root holding several datasets (``/data``, GLIP's ``DATASET/``,
mmdetection's ``data/``) or one dataset's own folder (``/mnt/Objects365``). A layout is data: per
dataset, the folders its base sits in under a data root, and per part the candidate paths under
that base. The layouts, with the public files each was read from:

* **o365** — ours: ``o365/annotations/zhiyuan_objv2_{train,val}.json`` + ``o365/{train,val}/patchN/``.
  mmdet (MM-Grounding-DINO, ``configs/mm_grounding_dino/dataset_prepare.md``): ``objects365v2/``
  (same inner layout as ours) and ``objects365v1/`` with ``objects365_{train,val}.json`` at its top
  and ``train/``, ``val/``. mmdet 2.x (``configs/_base_/datasets/objects365v{1,2}_detection.py``):
  ``Objects365/Obj365_v{1,2}/annotations/...`` + ``train/``, ``val/``. The release as downloaded:
  an ``Objects365/`` (``o365/``) folder holding either. GLIP's own Objects365 is TSV
  (microsoft/GLIP ``DATA.md``, ``DATASET/Objects365/train.label.tsv``): recognised, reported as not
  readable here.
* **lvis** — ours: ``lvis/lvis_v1_{train,val,minival}.json`` beside ``coco/{train2017,val2017}``.
  GLIP (``configs/lvis/minival.yaml``, ``configs/lvis/val.yaml``, ``DATA.md``,
  ``maskrcnn_benchmark/config/paths_catalog.py``) and mmdet 3.x (``configs/mm_grounding_dino/lvis/
  *_mini-lvis.py``, ``dataset_prepare.md``): ``coco/annotations/lvis_v1_minival_inserted_image_name.json``,
  ``coco/annotations/lvis_od_val.json`` (LVIS v1 val, file names inserted), ``lvis_v1_{train,val}.json``,
  image root ``coco/``. mmdet 2.x (``configs/_base_/datasets/lvis_v1_instance.py``):
  ``lvis_v1/annotations/lvis_v1_*.json`` + ``lvis_v1/{train2017,val2017}``.
* **goldg** — ours: ``goldg/mdetr_annotations/final_{mixed_train_no_coco,flickr_separateGT_train}.json``,
  ``goldg/gqa/images``, ``goldg/flickr30k_images``. GLIP (``DATA.md``, ``paths_catalog.py``): the same
  files straight under ``DATASET/``, Flickr images in ``flickr30k/flickr30k_images[/train]``. mmdet
  (``dataset_prepare.md`` GoldG, ``grounding_dino_swin-t_pretrain_obj365_goldg.py``):
  ``gqa/final_mixed_train_no_coco.json`` + ``gqa/images``, ``flickr30k_entities/
  final_flickr_separateGT_train.json`` + ``flickr30k_entities/flickr30k_images``.
* **odinw** — GLIP (``odinw/download.py`` unzips into ``DATASET/odinw``, ``configs/odinw_13/*.yaml``)
  and mmdet (``data/odinw/``, ``configs/*/odinw/*odinw13.py``) use the same folders, which are ours
  (:data:`~detclip_bench.datasets.odinw.ODINW13`: ``mini_val``, ``large`` and the other variant folders).
* **export** — one Roboflow/COCO export (``widgets.v3i.coco/``, GLIP's ``Aquarium Combined.v2-raw-1024.coco/``):
  ``train/``, ``valid/`` (``val/``, ``mini_val/``), ``test/`` each holding ``_annotations.coco.json`` (or
  ``annotations_without_background.json``), as ``eval --dataset`` takes it
  (:func:`~detclip_bench.datasets.odinw.export_splits`); any folder name, the folder itself or one below the root.
* **imagenet** — Kaggle's ``LOC_synset_mapping.txt`` + ``ILSVRC/Data/CLS-LOC/{train,val}`` (or ``{train,val}``),
  or the README's ``imagenet/{train,val}/<wnid>/``.
* **cc** (``cc3m``, ``cc12m``, ``cc15m``, ``cc``) — CC3M's ``Train_GCC-training.tsv`` (or the
  ``cc3m.tsv``/``cc12m.tsv`` img2dataset's examples rename it to) and/or img2dataset shards:
  webdataset ``NNNNN.tar`` (+ ``NNNNN_stats.json``) or parquet, in the folder or one folder below.

:func:`resolve_dataset_roots` turns a data root and an optional per-dataset map
(``o365=/mnt/Objects365,lvis=/mnt/coco``) into a :class:`DataRoots`, which maps a path of the README
layout (``o365/annotations/zhiyuan_objv2_train.json``, ``coco``, ``goldg/gqa/images``) to where it
really is. A path that exists under the data root as written always wins over the recogniser, so the
README layout behaves exactly as before.

Every family follows the same rules: ROOT may be the dataset's own folder or a folder holding it, and the
folder names a layout declares (``o365``, ``GoldG``, ``CC``, ``imagenet``) are matched ignoring case.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from detclip_bench.errors import DataError

__all__ = [
    "DATASETS",
    "DataRoots",
    "DatasetSpec",
    "FoundDataset",
    "Layout",
    "PartSpec",
    "PartStatus",
    "parse_data_map",
    "recognise",
    "render_report",
    "resolve_dataset_roots",
    "suggest_options",
    "suite_candidates",
    "validate_layouts",
]

Role = Literal["annotations", "images", "captions", "shards"]
Job = tuple[str, Path, str, dict]  # (report name, path, loader format, loader options)


@dataclass(frozen=True)
class PartSpec:
    """One part of a dataset (an annotation file, an image folder, caption TSVs, shards).

    ``ours`` are the README-layout paths (relative to the data root) this part stands for, which
    :meth:`DataRoots.resolve` maps to where the part really is (``{name}``: the dataset's name, for CC).
    ``options``: loader option -> key of the part whose path it takes; ``needs``: parts that must be
    there too for this one to be usable (the image folders an annotation file reads).
    """

    key: str
    role: Role
    ours: tuple[str, ...] = ()
    format: str | None = None
    options: tuple[tuple[str, str], ...] = ()
    needs: tuple[str, ...] = ()
    hidden: bool = False  # resolved and used for options, not listed in the report


@dataclass(frozen=True)
class Layout:
    """Where one tool's instructions put a dataset: base folders under a data root and per-part candidates."""

    name: str  # "ours", "glip", "mmdet", "mmdet-2.x", "download"
    # the base under a data root ("" = the data root itself, "*" = any folder in it); matched ignoring case
    folders: tuple[str, ...]
    paths: Mapping[str, tuple[str, ...]]  # part key -> candidate paths under the base, preferred first
    source: str  # the public file(s) it was read from
    variant: str = ""  # e.g. "v1" / "v2" for Objects365
    readable: bool = True
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.variant})" if self.variant else self.name


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    parts: tuple[PartSpec, ...]
    layouts: tuple[Layout, ...]
    home: str | None = None  # the dataset's folder in the README layout
    # families whose parts are not fixed paths (ODinW13's members, an export's splits): base, layout -> parts
    statuses: Callable[[Path, Layout], list[PartStatus]] | None = None
    looked_for: str = ""  # what a --data-map error says was looked for, where the layouts' paths do not say it


@dataclass
class PartStatus:
    spec: PartSpec
    paths: tuple[Path, ...]  # what was found (files or folders); empty: missing
    looked_for: tuple[Path, ...]
    detail: str = ""
    missing: tuple[str, ...] = ()  # the pieces of a partly-found part that are not there
    jobs: tuple[Job, ...] = ()  # what `data validate` opens

    @property
    def status(self) -> str:
        return "missing" if not self.paths else ("partial" if self.missing else "found")


@dataclass
class FoundDataset:
    """One dataset recognised at ``base`` in ``layout``, with the status of each of its parts."""

    name: str
    spec: DatasetSpec
    layout: Layout
    base: Path
    parts: list[PartStatus]

    def part(self, key: str) -> PartStatus | None:
        return next((p for p in self.parts if p.spec.key == key), None)

    def path_of(self, key: str) -> Path | None:
        st = self.part(key)
        return st.paths[0] if st and st.paths else None

    @property
    def problems(self) -> list[str]:
        """What makes a found part unusable: an image folder it reads is missing; a layout we cannot read."""
        out = []
        if not self.layout.readable:
            out.append(f"{self.name}: {self.layout.note}")
        for st in self.parts:
            if not st.paths:
                continue
            for need in st.spec.needs:
                other = self.part(need)
                if other is not None and not other.paths:
                    looked = ", ".join(str(p) for p in other.looked_for[:3])
                    out.append(f"{self.name}: {st.spec.key} reads {need}, which is missing (looked for {looked})")
        return out

    def jobs(self) -> list[Job]:
        return [job for st in self.parts for job in st.jobs]

    def fingerprint(self) -> frozenset:
        return frozenset(p.resolve() for st in self.parts for p in st.paths)

    def resolve(self, rel: str) -> Path | None:
        """Where the README-layout path ``rel`` is in this dataset (None: not one of its paths)."""
        best: tuple[str, Path] | None = None
        for st in self.parts:
            if not st.paths:
                continue
            for alias in (a.format(name=self.name) for a in st.spec.ours):
                prefix = st.spec.role == "images" and rel.startswith(alias + "/")
                if (rel == alias or prefix) and (best is None or len(alias) > len(best[0])):
                    best = (alias, st.paths[0])
        home = self.spec.home.format(name=self.name) if self.spec.home else None
        if best is None and home and (rel == home or rel.startswith(home + "/")):
            best = (home, self.base)
        if best is None:
            return None
        rest = rel[len(best[0]) :].lstrip("/")
        return best[1] / rest if rest else best[1]


# ------------------------------------------------------------------------------------------------ specs


def _o365() -> DatasetSpec:
    parts = (
        PartSpec(
            "train",
            "annotations",
            ("o365/annotations/zhiyuan_objv2_train.json",),
            "o365",
            (("image_root", "train images"),),
            ("train images",),
        ),
        PartSpec(
            "val",
            "annotations",
            ("o365/annotations/zhiyuan_objv2_val.json",),
            "o365",
            (("image_root", "val images"),),
            ("val images",),
        ),
        PartSpec("train images", "images", ("o365/train",)),
        PartSpec("val images", "images", ("o365/val",)),
        PartSpec("GLIP tsv", "annotations"),
    )
    images = {"train images": ("train", "images/train"), "val images": ("val", "images/val")}
    v2 = {"train": ("annotations/zhiyuan_objv2_train.json",), "val": ("annotations/zhiyuan_objv2_val.json",), **images}
    v1 = {
        "train": ("objects365_train.json", "annotations/objects365_train.json"),
        "val": ("objects365_val.json", "annotations/objects365_val.json"),
        **images,
    }
    prep = "open-mmlab/mmdetection configs/mm_grounding_dino/dataset_prepare.md"
    return DatasetSpec(
        "o365",
        "Objects365",
        parts,
        (
            Layout("ours", ("o365",), v2, "README 'Data layout'", "v2"),
            Layout("mmdet", ("objects365v2",), v2, prep, "v2"),
            Layout(
                "mmdet-2.x",
                ("Objects365/Obj365_v2",),
                v2,
                "open-mmlab/mmdetection configs/_base_/datasets/objects365v2_detection.py",
                "v2",
            ),
            Layout("download", ("Objects365", "objects365", "O365"), v2, "the Objects365 v2 release", "v2"),
            Layout("mmdet", ("objects365v1",), v1, prep, "v1"),
            Layout(
                "mmdet-2.x",
                ("Objects365/Obj365_v1",),
                v1,
                "open-mmlab/mmdetection configs/_base_/datasets/objects365v1_detection.py",
                "v1",
            ),
            Layout("download", ("Objects365", "objects365", "o365", "O365"), v1, "the Objects365 v1 release", "v1"),
            Layout(
                "glip",
                ("Objects365",),
                {"GLIP tsv": ("train.label.tsv", "objects365_train_vgoiv6.cas2000.yaml")},
                "microsoft/GLIP DATA.md (Objects365)",
                "tsv",
                readable=False,
                note="GLIP's Objects365 TSV files (DATA.md) cannot be read here: use the json release "
                "(annotations/zhiyuan_objv2_*.json + train/patchN/)",
            ),
        ),
        home="o365",
    )


def _lvis() -> DatasetSpec:
    def ann(key: str, ours: tuple[str, ...], needs: tuple[str, ...]) -> PartSpec:
        return PartSpec(key, "annotations", ours, "lvis", (("image_root", "images"),), needs)

    parts = (
        ann("minival", ("lvis/lvis_v1_minival.json", "lvis/lvis_v1_minival_inserted_image_name.json"), ("val2017",)),
        ann("val", ("lvis/lvis_v1_val.json",), ("train2017", "val2017")),
        ann("train", ("lvis/lvis_v1_train.json",), ("train2017",)),
        PartSpec("train2017", "images", ("coco/train2017",)),
        PartSpec("val2017", "images", ("coco/val2017",)),
        PartSpec("images", "images", ("coco",), hidden=True),  # the folder file names resolve under
    )

    def under(prefix: str, coco: str) -> dict[str, tuple[str, ...]]:
        return {
            "minival": (f"{prefix}lvis_v1_minival.json", f"{prefix}lvis_v1_minival_inserted_image_name.json"),
            "val": (f"{prefix}lvis_v1_val.json",),
            "train": (f"{prefix}lvis_v1_train.json",),
            "images": (coco,),
            "train2017": (f"{coco}/train2017",),
            "val2017": (f"{coco}/val2017",),
        }

    coco = {
        "minival": ("annotations/lvis_v1_minival_inserted_image_name.json", "annotations/lvis_v1_minival.json"),
        "val": ("annotations/lvis_v1_val.json", "annotations/lvis_od_val.json"),
        "train": ("annotations/lvis_v1_train.json", "annotations/lvis_od_train.json"),
        "images": ("",),
        "train2017": ("train2017",),
        "val2017": ("val2017",),
    }
    return DatasetSpec(
        "lvis",
        "LVIS v1 (+ COCO 2017 images)",
        parts,
        (
            Layout("ours", ("",), under("lvis/", "coco"), "README 'Data layout'"),
            Layout("ours", ("lvis",), under("", "../coco"), "README 'Data layout'"),
            Layout(
                "glip/mmdet",
                ("coco",),
                coco,
                "microsoft/GLIP configs/lvis/{minival,val}.yaml, DATA.md; open-mmlab/mmdetection "
                "configs/mm_grounding_dino/lvis/*.py, dataset_prepare.md",
            ),
            Layout(
                "mmdet-2.x", ("lvis_v1",), coco, "open-mmlab/mmdetection configs/_base_/datasets/lvis_v1_instance.py"
            ),
        ),
    )


def _goldg() -> DatasetSpec:
    mixed, flickr = "final_mixed_train_no_coco.json", "final_flickr_separateGT_train.json"
    parts = (
        PartSpec(
            "mixed",
            "annotations",
            (f"goldg/mdetr_annotations/{mixed}",),
            "mdetr",
            (("vg_root", "gqa images"), ("coco_root", "coco train2014")),
            ("gqa images",),
        ),
        PartSpec(
            "flickr",
            "annotations",
            (f"goldg/mdetr_annotations/{flickr}",),
            "mdetr",
            (("image_root", "flickr images"),),
            ("flickr images",),
        ),
        PartSpec("gqa images", "images", ("goldg/gqa/images",)),
        PartSpec("flickr images", "images", ("goldg/flickr30k_images",)),
        # GLIP's and mmdet's configs name it even for the no-COCO file, which has no COCO record
        PartSpec("coco train2014", "images", ("goldg/coco/train2014",), hidden=True),
    )
    glip_flickr = ("flickr30k/flickr30k_images/train", "flickr30k/flickr30k_images")
    mdetr = {
        "mixed": (f"mdetr_annotations/{mixed}",),
        "flickr": (f"mdetr_annotations/{flickr}",),
        "gqa images": ("gqa/images",),
        "coco train2014": ("coco/train2014", "../coco/train2014"),
    }
    return DatasetSpec(
        "goldg",
        "GoldG (MDETR's GQA + Flickr30k grounding)",
        parts,
        (
            Layout(
                "ours",
                ("goldg", "GoldG"),
                {**mdetr, "flickr images": ("flickr30k_images", *glip_flickr)},
                "README 'Data layout'",
            ),
            Layout(
                "glip",
                ("", "DATASET"),
                {**mdetr, "flickr images": (*glip_flickr, "flickr30k_images")},
                "microsoft/GLIP DATA.md (Flickr30K, MixedGrounding), maskrcnn_benchmark/config/paths_catalog.py",
            ),
            Layout(
                "mmdet",
                ("",),
                {
                    "mixed": (f"gqa/{mixed}",),
                    "flickr": (f"flickr30k_entities/{flickr}",),
                    "gqa images": ("gqa/images",),
                    "flickr images": ("flickr30k_entities/flickr30k_images",),
                    "coco train2014": ("coco/train2014",),
                },
                "open-mmlab/mmdetection configs/mm_grounding_dino/dataset_prepare.md (GoldG), "
                "grounding_dino_swin-t_pretrain_obj365_goldg.py",
            ),
        ),
        home="goldg",
    )


def _odinw() -> DatasetSpec:
    from detclip_bench.datasets.odinw import ODINW13

    parts = tuple(PartSpec(m.name, "annotations", (), "odinw") for m in ODINW13)
    return DatasetSpec(
        "odinw",
        "ODinW13 (Roboflow exports, GLIP's odinw_35 folders)",
        parts,
        (
            Layout(
                "glip/mmdet",
                ("odinw", "ODinW", "DATASET/odinw"),
                {},
                "microsoft/GLIP odinw/download.py, configs/odinw_13/*.yaml; open-mmlab/mmdetection "
                "configs/*/odinw/*odinw13.py (data/odinw/); the same folders as ours",
            ),
        ),
        home="odinw",
        statuses=lambda base, _layout: _odinw_statuses(base),
        looked_for="the ODinW13 folders (e.g. Aquarium/Aquarium Combined.v2-raw-1024.coco/valid/_annotations.coco.json)",
    )


def _export() -> DatasetSpec:
    from detclip_bench.datasets.odinw import EXPORT_SPLIT_FOLDERS

    return DatasetSpec(
        "export",
        "a Roboflow/COCO export (train/, valid/, test/ with _annotations.coco.json)",
        tuple(PartSpec(split, "annotations", (), "odinw") for split in EXPORT_SPLIT_FOLDERS),
        (
            Layout(
                "roboflow",
                ("*",),
                {},
                "Roboflow's COCO export; GLIP's odinw_35 folders (the same rules as `eval --dataset`)",
            ),
        ),
        statuses=lambda base, _layout: _export_statuses(base),
        looked_for="train/, valid/ (val/, mini_val/) or test/ holding _annotations.coco.json",
    )


_IMAGENET_FOLDERS = ("imagenet", "imagenet-1k", "imagenet1k", "ilsvrc2012", "imagenet-object-localization-challenge")


def _imagenet() -> DatasetSpec:
    return DatasetSpec(
        "imagenet",
        "ImageNet-1k (Kaggle's layout, or class folders)",
        (PartSpec("train", "annotations", ("imagenet/train",)), PartSpec("val", "annotations", ("imagenet/val",))),
        (
            Layout(
                "kaggle",
                _IMAGENET_FOLDERS,
                {},
                "Kaggle's ImageNet Object Localization Challenge (LOC_synset_mapping.txt, ILSVRC/Data/CLS-LOC/)",
            ),
            Layout("ours", _IMAGENET_FOLDERS, {}, "README 'Data layout' (imagenet/train/<wnid>/)"),
        ),
        home="imagenet",
        statuses=lambda base, layout: _imagenet_statuses(base, layout),
        looked_for="LOC_synset_mapping.txt + ILSVRC/Data/CLS-LOC/{train,val}, or {train,val}/<wnid>/",
    )


_CC_NAMES = {"cc": "cc", "cc3m": "cc3m", "cc12m": "cc12m", "cc15m": "cc15m", "conceptual_captions": "cc3m"}


def _cc() -> DatasetSpec:
    parts = (
        PartSpec("captions tsv", "captions", ("{name}/Train_GCC-training.tsv", "{name}/{name}.tsv"), "cc-tsv"),
        PartSpec("webdataset shards", "shards", ("{name}", "{name}/wds"), "img2dataset-wds"),
        PartSpec("parquet shards", "shards", ("{name}/parquet",), "img2dataset-parquet"),
    )
    return DatasetSpec(
        "cc",
        "Conceptual Captions (TSV and/or img2dataset shards)",
        parts,
        (
            Layout(
                "ours/img2dataset",
                ("cc15m", "cc3m", "cc12m", "cc", "CC3M", "CC12M", "CC15M", "conceptual_captions"),
                {
                    "captions tsv": (
                        "Train_GCC-training.tsv",
                        "Validation_GCC-1.1.0-Validation.tsv",
                        "cc3m.tsv",
                        "cc12m.tsv",
                        "*.tsv",
                    ),
                    "webdataset shards": ("*.tar", "*/*.tar"),
                    "parquet shards": ("*.parquet", "*/*.parquet"),
                },
                "README 'Data layout'; Google's CC3M download (Train_GCC-training.tsv); img2dataset's "
                "cc3m/cc12m examples (NNNNN.tar + NNNNN_stats.json + NNNNN.parquet)",
            ),
        ),
        home="{name}",
    )


DATASETS: tuple[DatasetSpec, ...] = (_o365(), _lvis(), _goldg(), _odinw(), _cc(), _imagenet(), _export())
_SPECS = {s.name: s for s in DATASETS}
# --data-map names: the datasets, CC's folder names, aliases, and plain README folders (base/rest)
_ALIASES = {"objects365": "o365", "obj365": "o365", "mdetr": "goldg", "conceptual_captions": "cc3m"}
_PLAIN = ("coco", "imagenet")
MAP_NAMES = tuple(sorted({*(n for n in _SPECS if n != "export"), *_CC_NAMES.values(), *_PLAIN}))


# -------------------------------------------------------------------------------------------- matching


def _nonempty_dir(p: Path) -> bool:
    try:
        with os.scandir(p) as it:
            return next(it, None) is not None
    except OSError:
        return False


def _patch_detail(p: Path) -> str:
    try:
        with os.scandir(p) as it:
            n = sum(1 for e in itertools.islice(it, 10_000) if e.name.startswith("patch") and e.is_dir())
    except OSError:
        return ""
    return f"{n} patch folders" if n else ""


_HUB_SHARD = re.compile(r"-(train|validation|val|test)-\d+\.tar$")


def _shard_status(part: PartSpec, cands: tuple[str, ...], base: Path, subfolders: bool) -> PartStatus:
    folders: list[Path] = []
    for pattern in cands:
        if "/" in pattern and not subfolders:
            continue
        for match in sorted(base.glob(pattern)):
            if match.parent not in folders:
                folders.append(match.parent)
    if _ext(cands) == ".parquet":  # img2dataset's webdataset output has a metadata parquet per tar
        folders = [f for f in folders if not any(f.glob("*.tar"))]
    jobs, details = [], []
    for folder in folders:
        shards = sorted(folder.glob(f"*{_ext(cands)}"))
        if _ext(cands) == ".tar":
            fmt = "hf-webdataset" if all(_HUB_SHARD.search(s.name) for s in shards) else "img2dataset-wds"
            stats = sum(1 for s in shards if s.with_name(s.stem + "_stats.json").is_file())
            details.append(f"{len(shards)} shards, {stats} with _stats.json")
        else:
            fmt = "img2dataset-parquet"
            details.append(f"{len(shards)} shards")
        jobs.append((folder, fmt))
    return PartStatus(
        part,
        tuple(folders),
        tuple(base / c for c in cands),
        "; ".join(details),
        jobs=tuple((f"{part.key}", f, fmt, {}) for f, fmt in jobs),
    )


def _ext(cands: tuple[str, ...]) -> str:
    return Path(cands[0]).suffix


def _status(part: PartSpec, layout: Layout, base: Path, subfolders: bool) -> PartStatus | None:
    cands = layout.paths.get(part.key)
    if not cands:
        return None
    looked = tuple(base / c if c else base for c in cands)
    if part.role == "shards":
        return _shard_status(part, cands, base, subfolders)
    if part.role == "images":
        hit = next((p for p in looked if p.is_dir() and _nonempty_dir(p)), None)
        detail = _patch_detail(hit) if hit is not None and part.ours[:1] and part.ours[0].startswith("o365/") else ""
        return PartStatus(part, (hit,) if hit else (), looked, detail)
    found: list[Path] = []
    for c in cands:
        matches = sorted(base.glob(c)) if "*" in c else [base / c]
        found += [m for m in matches if m.is_file() and m not in found]
        if found and part.role == "annotations":
            break
    return PartStatus(part, tuple(found), looked)


def _odinw_statuses(base: Path) -> list[PartStatus]:
    from detclip_bench.datasets.odinw import ODINW13

    out = []
    for m in ODINW13:
        got, missing, jobs, looked = [], [], [], []
        for split in ("train", "val", "test"):
            pairs = m.candidates(split)
            looked += [base / a for a, _ in pairs]
            hit = next(((base / a, base / i) for a, i in pairs if (base / a).is_file() and (base / i).is_dir()), None)
            if hit is None:
                missing.append(f"{split} ({m._folder(split)})")
                continue
            got.append(hit[0])
            jobs.append((f"{m.name} {split}", hit[0], "odinw", {"image_root": str(hit[1]), "class_names": m.classes}))
        detail = f"{m.subdir}/" + (f"; missing {', '.join(missing)}" if got and missing else "")
        if not got:
            detail = f"{m.subdir}/{{{','.join(dict.fromkeys(m._folder(s) for s in ('train', 'val', 'test')))}}}/"
        out.append(
            PartStatus(
                PartSpec(m.name, "annotations", (), "odinw"),
                tuple(got),
                tuple(looked),
                detail,
                tuple(missing) if got else (),
                tuple(jobs),
            )
        )
    return out


def _export_statuses(base: Path) -> list[PartStatus]:
    from detclip_bench.datasets.odinw import EXPORT_ANNOTATION_NAMES, EXPORT_SPLIT_FOLDERS, export_splits

    splits = export_splits(base)
    out = []
    for split, folders in EXPORT_SPLIT_FOLDERS.items():
        looked = tuple(base / f / n for f in folders for n in EXPORT_ANNOTATION_NAMES)
        if split not in splits:
            out.append(PartStatus(PartSpec(split, "annotations", (), "odinw"), (), looked))
            continue
        ann, images = splits[split]
        job = (split, ann, "odinw", {"image_root": str(images)})
        out.append(PartStatus(PartSpec(split, "annotations", (), "odinw"), (ann,), looked, jobs=(job,)))
    return out


def _imagenet_statuses(base: Path, layout: Layout) -> list[PartStatus]:
    """Kaggle: the mapping file at the top and split folders under ILSVRC/Data/CLS-LOC (or at the top);
    ours: split folders of <wnid>/ class folders."""
    from detclip_bench.datasets.imagenet import MAPPING_NAMES

    kaggle = layout.name == "kaggle"
    if kaggle and not (base / "LOC_synset_mapping.txt").is_file():
        return []
    mapping = next((base / n for n in MAPPING_NAMES if (base / n).is_file()), None)
    out = []
    for split in ("train", "val"):
        looked = (base / "ILSVRC" / "Data" / "CLS-LOC" / split, base / split)
        hit = next((p for p in looked if p.is_dir() and (kaggle or _has_wnid_folders(p))), None)
        spec = PartSpec(
            split, "annotations", (f"imagenet/{split}",), "imagenet-kaggle" if kaggle else "imagenet-folder"
        )
        jobs = ()
        if hit is not None:
            options = {"split": split} | ({"synset_mapping": str(mapping)} if mapping and not kaggle else {})
            jobs = ((split, base, spec.format, options),)
        out.append(PartStatus(spec, (hit,) if hit else (), looked, jobs=jobs))
    return out


_WNID = re.compile(r"^n\d{8}$")


def _has_wnid_folders(p: Path) -> bool:
    try:
        with os.scandir(p) as it:
            return any(_WNID.match(e.name) and e.is_dir() for e in itertools.islice(it, 2000))
    except OSError:
        return False


def _match(spec: DatasetSpec, layout: Layout, base: Path) -> FoundDataset | None:
    name, subfolders = spec.name, True
    if spec.name == "cc":
        known = base.name.lower() in _CC_NAMES
        if not known and not (any(base.glob("*.tsv")) or any(base.glob("*_stats.json"))):
            return None  # an arbitrary folder of tars/parquet: leave it to format detection
        name, subfolders = _CC_NAMES.get(base.name.lower(), "cc"), known
    if spec.name == "export":
        name = base.name  # the export's own name, as `eval --dataset` labels it
    if spec.statuses is not None:
        statuses = spec.statuses(base, layout)
    else:
        statuses = [s for p in spec.parts if (s := _status(p, layout, base, subfolders)) is not None]
    if not any(s.paths and s.spec.role != "images" for s in statuses):
        return None
    found = FoundDataset(name, spec, layout, base, statuses)
    for st in statuses:
        if st.jobs or not st.paths or st.spec.format is None or st.spec.role == "images":
            continue
        options = {opt: str(p) for opt, key in st.spec.options if (p := found.path_of(key)) is not None}
        st.jobs = tuple((f"{st.spec.key}", path, st.spec.format, options) for path in st.paths)
    for st in statuses:  # report names say which dataset: "o365 train: <path>"
        st.jobs = tuple((f"{name} {label}: {path}", path, fmt, opts) for label, path, fmt, opts in st.jobs)
    return found


def _recognise_spec(spec: DatasetSpec, root: Path) -> list[FoundDataset]:
    tries: dict[Path, list[tuple[bool, int, Layout]]] = {}
    order = 0
    for layout in spec.layouts:  # ROOT as a data root: each layout's base folders under it
        for folder in layout.folders:
            for base in _bases(root, folder):
                tries.setdefault(base, []).append((True, -order, layout))
            order += 1
    for layout in spec.layouts:  # ROOT as the dataset's own folder, whatever its name
        if any(layout.folders):
            names = {PurePosixPath(f).name.lower() for f in layout.folders if f}
            declared = "*" in names or root.name.lower() in names
            tries.setdefault(root, []).append((declared, -order, layout))
        order += 1
    hits: list[FoundDataset] = []
    for base, options in tries.items():
        best = None
        for declared, rank, layout in options:
            hit = _match(spec, layout, base)
            if hit is None:
                continue
            score = (sum(1 for s in hit.parts if s.paths), layout.readable, declared, rank)
            if best is None or score > best[0]:
                best = (score, hit)
        if best is not None:
            hits.append(best[1])
    kept, seen = [], set()
    for hit in hits:  # ours at the data root and ours at lvis/ (via ../coco) find the same files
        key = hit.fingerprint()
        if key not in seen:
            seen.add(key)
            kept.append(hit)
    return kept


def _bases(root: Path, folder: str) -> list[Path]:
    """The folders ``folder`` names under ``root``: "" is root, "*" every folder in it; names match ignoring case."""
    if not folder:
        return [root]
    if folder == "*":
        try:
            with os.scandir(root) as it:
                return sorted(root / e.name for e in it if e.is_dir() and not e.name.startswith("."))
        except OSError:
            return []
    hit = _child_ignoring_case(root, folder)
    return [hit] if hit is not None else []


def _child_ignoring_case(root: Path, rel: str) -> Path | None:
    """``root/rel`` with each folder name matched ignoring case (``CC`` for ``cc``); an exact name is preferred."""
    path = root
    for name in PurePosixPath(rel).parts:
        if (path / name).is_dir():
            path = path / name
            continue
        try:
            with os.scandir(path) as it:
                same = sorted(e.name for e in it if e.name.lower() == name.lower() and e.is_dir())
        except OSError:
            return None
        if not same:
            return None
        path = path / same[0]
    return path


def recognise(root, datasets: Iterable[str] | None = None) -> list[FoundDataset]:
    """Every dataset found at ``root`` (a data root, or one dataset's own folder), in a known layout."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(str(root), "-", "no such folder")
    wanted = set(datasets) if datasets is not None else None
    return [hit for spec in DATASETS if wanted is None or spec.name in wanted for hit in _recognise_spec(spec, root)]


# ------------------------------------------------------------------------------------- data map, roots


def parse_data_map(spec) -> dict[str, Path]:
    """``"o365=/mnt/Objects365,lvis=/mnt/coco"`` (or a list of such strings) → ``{"o365": Path(...), ...}``."""
    if not spec:
        return {}
    if isinstance(spec, Mapping):
        items = [f"{k}={v}" for k, v in spec.items()]
    else:
        items = [spec] if isinstance(spec, str | os.PathLike) else list(spec)
    out: dict[str, Path] = {}
    for item in items:
        for pair in filter(None, (p.strip() for p in str(item).split(","))):
            name, sep, folder = pair.partition("=")
            name = name.strip().lower()
            name = _ALIASES.get(name, name)
            if not sep or not name or not folder.strip():
                raise DataError("--data-map", pair, "expected NAME=FOLDER[,NAME=FOLDER...], e.g. o365=/mnt/Objects365")
            if name not in MAP_NAMES:
                raise DataError("--data-map", pair, f"unknown dataset {name!r}; one of: {', '.join(MAP_NAMES)}")
            out[name] = Path(folder.strip()).expanduser()
    return out


@dataclass
class _Folder:
    """A plain README folder mapped elsewhere (``coco=/mnt/coco``): ``coco/<rest>`` → ``/mnt/coco/<rest>``."""

    name: str
    base: Path

    def resolve(self, rel: str) -> Path | None:
        if rel == self.name or rel.startswith(self.name + "/"):
            rest = rel[len(self.name) :].lstrip("/")
            return self.base / rest if rest else self.base
        return None


def _looked_for(spec: DatasetSpec) -> str:
    if spec.looked_for:
        return spec.looked_for
    paths = []
    for layout in spec.layouts:
        for part in spec.parts:
            if part.role != "images":
                paths += [c for c in layout.paths.get(part.key, ()) if c not in paths]
    return ", ".join(paths)


@dataclass
class DataRoots:
    """A data root plus per-dataset folders; ``roots / "o365/annotations/..."`` is where that file really is.

    Behaves like the data root where a path is expected (``str()``, ``os.fspath``), and joins like
    one: a README-layout path resolves to the mapped dataset's part first, then to the path as
    written under the data root if it exists, then to a dataset recognised under the data root in
    another layout (GLIP, mmdetection), else to the path as written (missing; reported as before).
    """

    root: Path | None
    mapped: list = field(default_factory=list)  # FoundDataset | _Folder, in --data-map order
    _found: list[FoundDataset] | None = None

    def found_under_root(self) -> list[FoundDataset]:
        if self._found is None:
            try:
                self._found = recognise(self.root) if self.root is not None and self.root.is_dir() else []
            except DataError:
                self._found = []
        return self._found

    def datasets(self) -> list[FoundDataset]:
        """The mapped datasets, then those recognised under the data root that the map does not name."""
        mapped = [m for m in self.mapped if isinstance(m, FoundDataset)]
        names = {m.name for m in self.mapped}
        return mapped + [f for f in self.found_under_root() if f.name not in names]

    def mapping(self) -> dict[str, Path]:
        return {m.name: m.base for m in self.mapped}

    def resolve(self, rel) -> Path:
        if Path(rel).is_absolute():
            return Path(rel)
        rel = PurePosixPath(str(rel).replace(os.sep, "/")).as_posix()
        for entry in self.mapped:
            hit = entry.resolve(rel)
            if hit is not None:
                return hit
        root = self.root if self.root is not None else Path(".")
        direct = root / rel
        if direct.exists():
            return direct
        for entry in self.found_under_root():
            hit = entry.resolve(rel)
            if hit is not None and hit.exists():
                return hit
        return direct

    def __truediv__(self, rel) -> Path:
        return self.resolve(rel)

    def __fspath__(self) -> str:
        return str(self.root if self.root is not None else Path("."))

    def __str__(self) -> str:
        text = os.fspath(self)
        if self.mapped:
            text += " (" + ", ".join(f"{m.name}={m.base}" for m in self.mapped) + ")"
        return text


def resolve_dataset_roots(data_root=None, data_map=None) -> DataRoots:
    """A :class:`DataRoots` for ``data_root`` and a per-dataset map (``"o365=/mnt/Objects365,lvis=/mnt/coco"``,
    a list of such strings, or a dict). Each mapped folder must be recognised as that dataset (its own
    folder, or a data root holding it) in a known layout; otherwise a DataError says what was looked for."""
    root = Path(data_root).expanduser() if data_root else None
    roots = DataRoots(root)
    for name, folder in parse_data_map(data_map).items():
        if not folder.is_dir():
            raise DataError(str(folder), "-", f"--data-map {name}: no such folder")
        if name in _PLAIN:
            roots.mapped.append(_Folder(name, folder))
            continue
        spec = _SPECS["cc" if name in _CC_NAMES.values() else name]
        hits = _recognise_spec(spec, folder)
        if not hits:
            raise DataError(
                str(folder),
                "-",
                f"--data-map {name}: no {spec.description} here in a known layout; "
                f"looked for {_looked_for(spec)} (see README 'Data layout')",
            )
        hit = hits[0]
        hit.name = name  # cc15m=/mnt/cc12m_shards stands in for cc15m
        roots.mapped.append(hit)
    return roots


# ------------------------------------------------------------------------------------- suites, reports


def suite_candidates(dataset: str, key: str) -> tuple[tuple[str, str], ...]:
    """(annotation file, image folder) pairs relative to a data root, from every layout whose base is a fixed
    folder under it: what a suite member lists so a GLIP or mmdetection data root works as ``--data-root`` (the
    built-in LVIS suite files list exactly these; ``tests/suites/test_builtin_suite_files.py`` keeps them equal)."""
    spec = _SPECS[dataset]
    part = next(p for p in spec.parts if p.key == key)
    image_key = dict(part.options).get("image_root")
    out: list[tuple[str, str]] = []
    for layout in spec.layouts:
        for folder in layout.folders:
            if folder.startswith("..") or not layout.readable:
                continue
            images = layout.paths.get(image_key, ("",))[0] if image_key else ""
            for ann in layout.paths.get(key, ()):
                pair = (_join(folder, ann), _join(folder, images))
                if ".." not in pair[1].split("/") and pair not in out:
                    out.append(pair)
    return tuple(out)


def _join(folder: str, rel: str) -> str:
    return PurePosixPath(folder, rel).as_posix() if folder or rel else "."


def _shown(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return path.relative_to(root).as_posix() or "."
        except ValueError:
            pass
    return str(path)


def suggest_options(found: list[FoundDataset], root: Path | None) -> list[str]:
    """The ``--data-root`` / ``--data-map`` that point eval/train at these datasets."""
    lines = []
    if root is not None and any(_under(f.base, root) for f in found if f.spec.name != "export"):
        lines.append(f"--data-root {root}")
    pairs, seen = [], set()
    for f in found:
        if f.layout.readable and f.spec.name != "export" and f.name not in seen:
            seen.add(f.name)
            pairs.append(f"{f.name}={f.base}")
    if pairs:
        lines.append("--data-map " + ",".join(pairs))
    lines += [f"--dataset {shlex.quote(str(f.base))}  (eval/finetune)" for f in found if f.spec.name == "export"]
    return lines


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def render_report(found: list[FoundDataset], root: Path | None = None) -> list[str]:
    """A table of datasets × parts (found / missing / partial, and where), then problems and suggested options."""
    rows = [("dataset", "layout", "part", "status", "where")]
    for f in found:
        first = True
        for st in f.parts:
            if st.spec.hidden:
                continue
            if st.paths:
                where = ", ".join(_shown(p, root) for p in st.paths[:3]) + (" …" if len(st.paths) > 3 else "")
                if f.spec.name == "odinw":
                    where = _shown(f.base, root) + "/" + st.detail
                elif st.detail:
                    where += f" ({st.detail})"
            elif f.spec.name == "odinw":
                where = f"looked for {_shown(f.base, root)}/{st.detail}"
            else:
                where = "looked for " + ", ".join(_shown(p, root) for p in st.looked_for[:3])
            rows.append((f.name if first else "", f.layout.label if first else "", st.spec.key, st.status, where))
            first = False
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
    for f in found:
        lines.append(f"{f.name}: {f.layout.label} layout at {f.base} (from {f.layout.source})")
    lines += [f"problem: {p}" for f in found for p in f.problems]
    options = suggest_options(found, root)
    if options:
        lines.append("use: " + options[0])
        lines += [" or: " + o for o in options[1:]]
    return lines


def validate_layouts(found: list[FoundDataset], decode_images: bool = True) -> list:
    """``data validate``'s per-file check (:func:`~detclip_bench.datasets.validate.validate_path`) on every
    annotation file, caption TSV and shard folder found, each report named ``"<dataset> <part>: <path>"``."""
    from detclip_bench.datasets.validate import validate_path

    reports = []
    for f in found:
        if not f.layout.readable:
            continue
        for name, path, fmt, options in f.jobs():
            for rep in validate_path(path, fmt, decode_images=decode_images, **options):
                rep.name = name
                reports.append(rep)
    return reports
