"""ImageNet-1k → CLASSIFICATION samples (caption = the class's prompt name).

Layouts: ``imagenet-folder`` (``<root>/<split>/<wnid>/*.JPEG``, class index = sorted wnid order,
names from a ``LOC_synset_mapping.txt``-style file, ``synset_mapping=``), ``imagenet-kaggle``
(``LOC_synset_mapping.txt`` at the root, ``ILSVRC/Data/CLS-LOC/{train,val}`` or ``{train,val}``;
the flat Kaggle val labelled by ``LOC_val_solution.csv``), ``imagenet-hf-parquet`` (HF
``imagenet-1k`` parquet: ``image`` struct with ``bytes``, ``label``; names from the ClassLabel in
the parquet's ``huggingface`` schema metadata, or ``synset_mapping=``).

Prompt names: the first WordNet synonym ("tench, Tinca tinca" → "tench"). Two pairs of
classes share that first synonym; :data:`IMAGENET_DISAMBIGUATION` (keyed by wnid, with the
sorted-wnid index) names them after their WordNet sense. Any other collision gets its wnid
appended, so a prompt never maps to two classes.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson

from detclip_bench.datasets.base import MapSource, StreamSource
from detclip_bench.datasets.coco_index import pack_strings
from detclip_bench.datasets.webdataset_tars import list_shards
from detclip_bench.errors import DataError
from detclip_bench.schema import Concept, DataKind, ImageRef, Sample

__all__ = ["IMAGENET_DISAMBIGUATION", "ImageNetFolder", "ImageNetHfParquet", "ImageNetKaggle", "class_concepts"]

# wnid -> (sorted-wnid class index, prompt name). WordNet senses: crane.n.05 (bird) vs crane.n.04
# (lifting machine); maillot.n.01 (dancer's tights) vs maillot.n.02 = tank suit (one-piece swimsuit).
IMAGENET_DISAMBIGUATION: dict[str, tuple[int, str]] = {
    "n02012849": (134, "crane (bird)"),
    "n03126707": (517, "crane (machine)"),
    "n03710637": (638, "maillot (tights)"),
    "n03710721": (639, "maillot (one-piece swimsuit)"),
}
_BY_INDEX = {idx: name for idx, name in IMAGENET_DISAMBIGUATION.values()}
_WNID = re.compile(r"^n\d{8}$")
_IMAGE_EXT = (".jpeg", ".jpg", ".png")
MAPPING_NAMES = ("LOC_synset_mapping.txt", "synset_words.txt")


def class_concepts(raw_names: list[str], wnids: list[str] | None = None) -> tuple[Concept, ...]:
    """Cleaned, collision-free prompt names; ``key`` keeps the raw WordNet string."""
    names = []
    for idx, raw in enumerate(raw_names):
        wnid = wnids[idx] if wnids else None
        if wnid in IMAGENET_DISAMBIGUATION:
            names.append(IMAGENET_DISAMBIGUATION[wnid][1])
        elif wnid is None and len(raw_names) == 1000 and idx in _BY_INDEX:
            names.append(_BY_INDEX[idx])
        else:
            names.append(raw.split(",")[0].strip())
    counts = {n: names.count(n) for n in names}
    names = [f"{n} ({wnids[i] if wnids else i})" if counts[n] > 1 else n for i, n in enumerate(names)]
    return tuple(
        Concept(name=n, key=raw, category_id=i) for i, (n, raw) in enumerate(zip(names, raw_names, strict=True))
    )


def read_synset_mapping(path: Path) -> dict[str, str]:
    out = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        wnid, _, names = line.strip().partition(" ")
        if not _WNID.match(wnid) or not names.strip():
            raise DataError(str(path), f"line {lineno}", "expected '<wnid> <comma-separated names>'")
        out[wnid] = names.strip()
    return out


def _find_mapping(candidates: list[Path]) -> Path | None:
    return next((d / n for d in candidates for n in MAPPING_NAMES if (d / n).is_file()), None)


class ImageNetFolder(MapSource):
    """ImageNet-1k as class folders (format ``imagenet-folder``) → map-style CLASSIFICATION samples.

    On disk: ``<path>/<split>/<wnid>/*.JPEG`` (also ``<path>/ILSVRC/Data/CLS-LOC/<split>/``, or
    ``path`` itself holding the ``<wnid>/`` folders) and a ``LOC_synset_mapping.txt``-style file
    (``<wnid> <comma-separated names>`` per line). Class index = sorted-wnid order; a class folder
    missing from the mapping is a DataError. Files are listed once at open, in sorted path order.

    Each :class:`~detclip_bench.schema.Sample` fills: ``kind`` = CLASSIFICATION, ``source``,
    ``record_id`` = the file name, ``image`` (path), ``concepts`` = the one class concept
    (``name`` = its prompt name, the first WordNet synonym made unique, see :func:`class_concepts`;
    ``key`` = the raw synonym list; ``category_id`` = class index), ``caption`` = that name and
    ``meta`` = ``{"wnid"}``. ``width``/``height`` stay 0 (known once decoded). :meth:`vocabulary`
    is every class, in index order.

    Args:
        path: the ImageNet root.
        split: the split folder to read (``"train"``, ``"val"``).
        synset_mapping: the mapping file (default: ``LOC_synset_mapping.txt`` or
            ``synset_words.txt`` in ``path`` or its parent; none found is a DataError).
        skip_log: the :class:`~detclip_bench.errors.SkipLog` of the source.
    """

    format_name = "imagenet-folder"
    kind = DataKind.CLASSIFICATION

    def __init__(self, path, *, split: str = "train", synset_mapping=None, skip_log=None) -> None:
        super().__init__(path, skip_log)
        self.split = split
        mapping_file = Path(synset_mapping) if synset_mapping else _find_mapping([self.path, self.path.parent])
        if mapping_file is None:
            raise DataError(str(self.path), "-", "no class names: pass synset_mapping=<LOC_synset_mapping.txt>")
        mapping = read_synset_mapping(mapping_file)
        self.wnids = sorted(mapping)
        self._concepts = class_concepts([mapping[w] for w in self.wnids], self.wnids)
        files, labels = self._list(self._split_dir(), {w: i for i, w in enumerate(self.wnids)})
        pairs = sorted(zip(files, labels, strict=True))  # deterministic order on every file system
        self._buf, self._off = pack_strings([f for f, _ in pairs])
        self._labels = np.array([lab for _, lab in pairs], np.int64)

    def _split_dir(self) -> Path:
        for cand in (self.path / self.split, self.path / "ILSVRC" / "Data" / "CLS-LOC" / self.split):
            if cand.is_dir():
                return cand
        if any(_WNID.match(p.name) for p in self.path.iterdir() if p.is_dir()):
            return self.path
        raise DataError(str(self.path), self.split, f"no '{self.split}' folder of <wnid>/ class folders here")

    def _list(self, split_dir: Path, index: dict[str, int]) -> tuple[list[str], list[int]]:
        files, labels = [], []
        for entry in sorted(os.scandir(split_dir), key=lambda e: e.name):
            if not entry.is_dir():
                continue
            if entry.name not in index:
                raise DataError(str(split_dir), entry.name, "class folder not in the synset mapping")
            for f in os.scandir(entry.path):
                if f.name.lower().endswith(_IMAGE_EXT):
                    files.append(f.path)
                    labels.append(index[entry.name])
        return files, labels

    def vocabulary(self) -> tuple[Concept, ...]:
        return self._concepts

    def __len__(self) -> int:
        return len(self._labels)

    def __getitem__(self, index: int) -> Sample:
        path = bytes(self._buf[self._off[index] : self._off[index + 1]]).decode("utf-8")
        concept = self._concepts[int(self._labels[index])]
        return Sample(
            kind=self.kind,
            source=self.format_name,
            record_id=Path(path).name,
            image=ImageRef(path=path),
            concepts=(concept,),
            caption=concept.name,
            meta={"wnid": self.wnids[concept.category_id]},
        )


class ImageNetKaggle(ImageNetFolder):
    """Kaggle's imagenet-object-localization-challenge layout (format ``imagenet-kaggle``) → CLASSIFICATION.

    On disk: ``<path>/LOC_synset_mapping.txt`` and ``<path>/ILSVRC/Data/CLS-LOC/{train,val}`` (or
    ``<path>/{train,val}``); a split of ``<wnid>/`` folders is read as :class:`ImageNetFolder`
    does, a flat one (Kaggle's val) is labelled by ``<path>/LOC_<split>_solution.csv`` (first wnid
    of each ``PredictionString``). Samples are filled as by :class:`ImageNetFolder`.

    Args:
        path: the Kaggle root.
        split: ``"train"`` or ``"val"``.
        synset_mapping: the mapping file (default: ``<path>/LOC_synset_mapping.txt``).
        skip_log: the :class:`~detclip_bench.errors.SkipLog` of the source.
    """

    format_name = "imagenet-kaggle"

    def __init__(self, path, *, split: str = "train", synset_mapping=None, skip_log=None) -> None:
        path = Path(path)
        super().__init__(
            path, split=split, synset_mapping=synset_mapping or path / "LOC_synset_mapping.txt", skip_log=skip_log
        )

    def _list(self, split_dir: Path, index: dict[str, int]) -> tuple[list[str], list[int]]:
        if any(e.is_dir() for e in os.scandir(split_dir)):
            return super()._list(split_dir, index)
        solution = next((p for p in (self.path / f"LOC_{self.split}_solution.csv",) if p.is_file()), None)
        if solution is None:
            raise DataError(
                str(split_dir), self.split, f"flat folder needs {self.path / f'LOC_{self.split}_solution.csv'}"
            )
        files, labels = [], []
        with open(solution, newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.DictReader(fh), 2):
                wnid = (row.get("PredictionString") or "").split(" ")[0]
                if wnid not in index:
                    raise DataError(str(solution), f"line {n}", f"unknown wnid {wnid!r}")
                files.append(str(split_dir / f"{row['ImageId']}.JPEG"))
                labels.append(index[wnid])
        return files, labels


class ImageNetHfParquet(StreamSource):
    """Hugging Face ``imagenet-1k`` parquet shards (format ``imagenet-hf-parquet``) → CLASSIFICATION stream.

    On disk: a folder of ``*.parquet`` shards (or one file) with an ``image`` struct column
    (``bytes``, ``path``) and an integer ``label``; class names come from the ClassLabel in the
    parquet's ``huggingface`` schema metadata, or from ``synset_mapping``. Rows without a label
    (the test split) are counted skips; a label out of range or an image without bytes is a
    DataError. ``part=(k, n)`` keeps every n-th row of a shard.

    Each :class:`~detclip_bench.schema.Sample` fills: ``kind`` = CLASSIFICATION, ``source``,
    ``record_id`` = the image's ``path`` (else ``"row <i>"``), ``image`` = the bytes (its path is
    the shard), ``concepts`` = the one class concept (as in :class:`ImageNetFolder`) and
    ``caption`` = its name; no ``meta``, ``width``/``height`` stay 0.

    Args:
        path: a folder of parquet shards, or one shard.
        synset_mapping: a ``LOC_synset_mapping.txt``-style file naming the classes (sorted-wnid
            order) instead of the schema metadata.
        batch_size: rows per record batch read from a shard.
        skip_log: the :class:`~detclip_bench.errors.SkipLog` counting skipped rows.
    """

    format_name = "imagenet-hf-parquet"
    kind = DataKind.CLASSIFICATION

    def __init__(self, path, *, synset_mapping=None, batch_size: int = 64, skip_log=None) -> None:
        super().__init__(path, skip_log)
        self._shards = list_shards(self.path, ".parquet")
        self.batch_size = batch_size
        if synset_mapping:
            mapping = read_synset_mapping(Path(synset_mapping))
            wnids = sorted(mapping)
            self._concepts = class_concepts([mapping[w] for w in wnids], wnids)
        else:
            self._concepts = class_concepts(self._names_from_schema())

    def _names_from_schema(self) -> list[str]:
        import pyarrow.parquet as pq

        meta = pq.read_schema(self._shards[0]).metadata or {}
        try:
            info = orjson.loads(meta[b"huggingface"])
            names = info["info"]["features"]["label"]["names"]
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                self._shards[0],
                "schema",
                "no ClassLabel names in the parquet metadata; pass synset_mapping=<LOC_synset_mapping.txt>",
            ) from exc
        return [str(n) for n in names]

    def vocabulary(self) -> tuple[Concept, ...]:
        return self._concepts

    def shards(self) -> list[str]:
        return self._shards

    def iter_shard(self, shard: str, part: tuple[int, int] = (0, 1)) -> Iterator[Sample]:
        import pyarrow.parquet as pq

        k, n = part
        i = -1
        for batch in pq.ParquetFile(shard).iter_batches(batch_size=self.batch_size, columns=["image", "label"]):
            for row in batch.to_pylist():
                i += 1
                if i % n != k:
                    continue
                rid = f"row {i}"
                label = row["label"]
                if label is None or label < 0:
                    self.skips.skip(shard, rid, "no label (test split)")
                    continue
                if label >= len(self._concepts):
                    raise DataError(shard, rid, f"label {label} out of range for {len(self._concepts)} classes")
                image = row["image"] or {}
                if not image.get("bytes"):
                    raise DataError(shard, rid, "image struct has no bytes")
                concept = self._concepts[label]
                yield Sample(
                    kind=self.kind,
                    source=self.format_name,
                    record_id=image.get("path") or rid,
                    image=ImageRef(path=shard, data=image["bytes"]),
                    concepts=(concept,),
                    caption=concept.name,
                )
