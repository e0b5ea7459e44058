"""Run any :class:`~detclip_bench.adapters.base.Detector` on a pile of image files: ``detclip-bench predict``.

:func:`predict_images` is the Python API; the ``predict`` verb (:mod:`detclip_bench.cli.predict`) only parses
arguments and calls it. A run folder holds:

* ``predictions.json``: a COCO results list ``{image_id, category_id, bbox: [x, y, w, h], score}``, boxes in
  the original image's pixels (as stored in the file: no EXIF rotation, like every loader of this package),
  per image by descending score;
* ``inputs.json``: a COCO-style ``{images: [{id, file_name, width, height, path, vis}], categories:
  [{id, name, prompt}]}`` naming every id the results use (``file_name`` is relative to the folder the
  inputs share; images that could not be read are not in it);
* ``run_info.json``: the model (spec, name, identity, provenance), the prompts, threshold and budget, the
  skipped files, library versions, git hash and device;
* ``vis/<stem>.jpg``: each image at its original size with its boxes, labels and scores drawn (a name
  used twice gets ``-<image id>`` appended).

Id rules (so ``detclip-bench score --gt GT --pred predictions.json`` works against a GT with the same ids):

* categories: the vocabulary's own ids when it comes from a COCO/LVIS json (``--vocab``) or a suite
  (``--suite``); otherwise ``1..K`` in prompt order;
* images: ``1..N`` in sorted path order over every input (an unreadable file keeps its id unused, so
  the others do not move), unless ``image_ids`` come from a COCO json (:func:`image_ids_from`), which
  matches each path to an ``images`` entry by its ``file_name`` (LVIS: the ``<split>2017/<name>`` of its
  ``coco_url``), the longest path suffix first, then a unique base name.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detclip_bench.adapters.base import Detector, Prediction
from detclip_bench.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "PredictionRun",
    "Vocabulary",
    "collect_images",
    "draw_detections",
    "image_ids_from",
    "parse_prompts",
    "predict_images",
    "read_vocab",
    "suite_vocabulary",
]

log = logging.getLogger("detclip_bench.predict")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_GLOB_CHARS = re.compile(r"[*?\[]")


# ---- vocabulary ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """What the model is asked for: the texts it sees, the category id each maps to, and a display name."""

    prompts: tuple[str, ...]
    category_ids: tuple[int, ...]
    names: tuple[str, ...]  # for inputs.json and the drawn labels (a suite's "name", not "name, definition")
    source: str = "--prompts"

    def __post_init__(self) -> None:
        if not self.prompts:
            raise DataError(self.source, "-", "no prompts: give at least one category to detect")
        if not (len(self.prompts) == len(self.category_ids) == len(self.names)):
            raise ValueError("prompts, category ids and names must have the same length")
        dup = [i for i, n in Counter(self.category_ids).items() if n > 1]
        if dup:
            raise DataError(self.source, "categories", f"category id {dup[0]} is used twice")

    @classmethod
    def from_prompts(cls, prompts: Sequence[str], source: str = "--prompts") -> Vocabulary:
        """Free-text prompts: category ids ``1..K`` in prompt order (duplicates are an error)."""
        prompts = tuple(_check_unique([" ".join(str(p).split()) for p in prompts], source))
        return cls(prompts, tuple(range(1, len(prompts) + 1)), prompts, source)


def _check_unique(prompts: list[str], source: str) -> list[str]:
    seen: dict[str, str] = {}
    for p in prompts:
        key = p.casefold()
        if key in seen:
            same = f"{p!r}" if seen[key] == p else f"{seen[key]!r} and {p!r}"
            raise DataError(source, p, f"duplicate prompt {same}: each category must be asked for once")
        seen[key] = p
    return prompts


def parse_prompts(text: str) -> Vocabulary:
    """``"cat, red apple, ..."`` → a vocabulary: split on commas, whitespace stripped, empty items dropped;
    a prompt given twice (ignoring case) is a :class:`DataError`."""
    items = [" ".join(p.split()) for p in str(text).split(",")]
    return Vocabulary.from_prompts([p for p in items if p], "--prompts")


def read_vocab(path: str | os.PathLike) -> Vocabulary:
    """A vocabulary file: plain text (one prompt per line; blank lines and ``#`` comments ignored), a JSON
    list of prompts, or a COCO/LVIS json (its ``categories``, or a bare list of ``{id, name}``).

    From a json's categories: the ids are kept, categories in id order, Roboflow's root category (id 0,
    ``supercategory: "none"``, as ODinW exports carry) dropped, and the prompt is the category name —
    LVIS names with ``_`` as spaces (``bat_(animal)`` → ``"bat (animal)"``), the way the LVIS loader
    names concepts (use ``--suite`` for the suites' exact ``"name, definition"`` prompts).
    """
    from detclip_bench.io import read_json

    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            source, "-", f"cannot read the vocabulary file: {getattr(exc, 'strerror', None) or exc}"
        ) from exc
    if path.suffix.lower() != ".json" and text.lstrip()[:1] not in ("[", "{"):
        lines = [" ".join(line.split()) for line in text.splitlines()]
        return Vocabulary.from_prompts([ln for ln in lines if ln and not ln.startswith("#")], source)
    data = read_json(path)
    if isinstance(data, dict):
        if not isinstance(data.get("categories"), list):
            raise DataError(source, "-", "a JSON vocabulary must be a list of prompts or have a 'categories' list")
        return _from_categories(data["categories"], source)
    if isinstance(data, list) and data and all(isinstance(c, dict) for c in data):
        return _from_categories(data, source)
    if isinstance(data, list) and all(isinstance(p, str) for p in data):
        return Vocabulary.from_prompts([p for p in (" ".join(p.split()) for p in data) if p], source)
    raise DataError(
        source,
        "-",
        "a JSON vocabulary must be a list of strings, a list of {id, name} categories, "
        "or a COCO/LVIS json with 'categories'",
    )


def _from_categories(cats: list, source: str) -> Vocabulary:
    from detclip_bench.datasets.lvis import clean_lvis_name
    from detclip_bench.datasets.odinw import _is_root_category

    for j, c in enumerate(cats):
        if (
            not isinstance(c, dict)
            or not isinstance(c.get("id"), int)
            or isinstance(c.get("id"), bool)
            or not isinstance(c.get("name"), str)
        ):
            raise DataError(source, f"categories[{j}]", f"a category needs an integer 'id' and a string 'name': {c!r}")
    cats = sorted((c for c in cats if not _is_root_category(c, cats)), key=lambda c: c["id"])
    lvis = any(k in c for c in cats for k in ("def", "synset", "frequency"))
    prompts = [clean_lvis_name(c["name"]) if lvis else " ".join(c["name"].split()) for c in cats]
    _check_unique(prompts, source)
    return Vocabulary(tuple(prompts), tuple(int(c["id"]) for c in cats), tuple(str(c["name"]) for c in cats), source)


def suite_vocabulary(suite_name: str, data_root: str | os.PathLike | None = None):
    """A suite's vocabulary, exactly as its runner prompts it (:func:`~detclip_bench.suites.predict.prompts_for`),
    read from its first member's annotation file under the data root. Returns ``(vocabulary, suite)``."""
    from detclip_bench.suites import get_suite, resolve_data_root
    from detclip_bench.suites.predict import open_target, prompts_for

    suite = get_suite(suite_name)
    target = suite.targets(resolve_data_root(suite, data_root))[0]
    if not target.annotations.is_file():
        hint = suite.download or "see README 'Data layout'"
        raise DataError(
            str(target.annotations),
            target.member,
            f"the suite's annotation file (its vocabulary) is missing; pass --data-root. How to get it: {hint}",
        )
    concepts = tuple(open_target(target).vocabulary())
    vocab = Vocabulary(
        tuple(prompts_for(suite, concepts)),
        tuple(int(c.category_id) for c in concepts),
        tuple(c.name for c in concepts),
        f"suite {suite.name} ({target.annotations})",
    )
    return vocab, suite


# ---- inputs ------------------------------------------------------------------------------------------------


def _images_under(folder: Path) -> list[Path]:
    return [f for f in folder.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()]


def collect_images(specs: Sequence[str | os.PathLike]) -> list[Path]:
    """Files (taken as they are, whatever the extension), folders (recursively, image extensions only) and
    globs (``**`` recursive; matched folders are walked, matched files filtered by extension), deduplicated by
    the file they resolve to, in sorted path order. A path that does not exist or a glob matching nothing is
    a :class:`DataError`."""
    found: dict[str, Path] = {}
    for spec in specs:
        p = Path(spec).expanduser()
        if p.is_dir():
            candidates = _images_under(p)
            if not candidates:
                log.warning("%s: no image files (%s) in this folder", p, " ".join(sorted(IMAGE_EXTENSIONS)))
        elif p.is_file():
            candidates = [p]
        elif _GLOB_CHARS.search(str(spec)):
            matches = sorted(glob.glob(os.path.expanduser(str(spec)), recursive=True))
            candidates = []
            for m in map(Path, matches):
                if m.is_dir():
                    candidates += _images_under(m)
                elif m.is_file() and m.suffix.lower() in IMAGE_EXTENSIONS:
                    candidates.append(m)
            if not candidates:
                raise DataError(str(spec), "--images", "the pattern matches no image file")
        else:
            raise DataError(str(spec), "--images", "no such file or folder")
        for c in candidates:
            shown = Path(os.path.abspath(c))
            key = os.path.realpath(c)
            if key not in found or str(shown) < str(found[key]):
                found[key] = shown
    if not found:
        raise DataError(" ".join(map(str, specs)), "--images", "no image files found")
    return sorted(found.values(), key=str)


def image_ids_from(coco_json: str | os.PathLike, paths: Sequence[Path]) -> list[int]:
    """The id of each path in a COCO/LVIS json's ``images``: matched by ``file_name`` (LVIS v1: from
    ``coco_url``, ``val2017/<name>``) against the path's suffixes, longest first, then by a base name
    that only one entry has. A path the json does not list, or two paths on one id, is a DataError."""
    from detclip_bench.datasets.lvis import file_name_from_coco_url
    from detclip_bench.io import read_json

    source = str(coco_json)
    data = read_json(coco_json)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(source, "-", "--image-ids-from needs a COCO/LVIS json with an 'images' list")
    by_name: dict[str, int] = {}
    base_count: Counter = Counter()
    by_base: dict[str, int] = {}
    for j, im in enumerate(data["images"]):
        if not isinstance(im, dict) or not isinstance(im.get("id"), int):
            raise DataError(source, f"images[{j}]", "an image needs an integer 'id'")
        name = im.get("file_name") or (file_name_from_coco_url(im["coco_url"]) if im.get("coco_url") else "")
        name = str(name).replace("\\", "/").removeprefix("./") if name else ""
        if not name:
            continue
        by_name[name] = im["id"]
        base = name.rsplit("/", 1)[-1]
        base_count[base] += 1
        by_base[base] = im["id"]
    ids: list[int] = []
    missing: list[str] = []
    for p in paths:
        parts = Path(p).parts
        suffixes = ("/".join(parts[k:]) for k in range(1, len(parts)))
        found = next((by_name[s] for s in suffixes if s in by_name), None)
        if found is None and base_count.get(parts[-1]) == 1:
            found = by_base[parts[-1]]
        if found is None:
            missing.append(str(p))
        ids.append(found)
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise DataError(
            source, "images", f"{len(missing)} input image(s) are not listed in it: " + ", ".join(missing[:5]) + more
        )
    twice = [i for i, n in Counter(ids).items() if n > 1]
    if twice:
        clash = [str(p) for p, i in zip(paths, ids, strict=True) if i == twice[0]]
        raise DataError(source, f"image {twice[0]}", f"two inputs map to the same image id: {', '.join(clash)}")
    return ids


# ---- drawing -----------------------------------------------------------------------------------------------

# bright colours, neighbours far apart (labels 0, 1, 2, ... cycle through them); each is drawn between dark
# outlines, so a box reads on a dark image (the colour) and on a light one (the outlines)
PALETTE = (
    (255, 56, 56),
    (0, 194, 255),
    (72, 249, 10),
    (255, 178, 29),
    (203, 56, 255),
    (0, 212, 187),
    (255, 112, 31),
    (100, 115, 255),
    (207, 210, 49),
    (255, 55, 199),
    (61, 219, 134),
    (255, 157, 151),
    (44, 153, 168),
    (146, 204, 23),
    (132, 56, 255),
    (255, 149, 200),
)


def _text_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def draw_detections(image, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, names: Sequence[str]):
    """A copy of ``image`` (RGB) with each xyxy box drawn in its class's palette colour between dark outlines,
    and a ``"name 0.87"`` label on a filled background (above the box, or inside it at the image's top);
    low scores first, so the best boxes end on top."""
    from PIL import ImageDraw, ImageFont

    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    w, h = out.size
    width = max(2, round(max(w, h) / 300))
    font = ImageFont.load_default(size=min(32, max(10, round(max(w, h) / 35))))
    for k in np.argsort(scores, kind="stable"):
        x1, y1, x2, y2 = (float(v) for v in boxes[k])
        colour = PALETTE[int(labels[k]) % len(PALETTE)]
        draw.rectangle([x1 - width, y1 - width, x2 + width, y2 + width], outline=(0, 0, 0), width=width + 2)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        name = str(names[int(labels[k])])
        text = f"{name if len(name) <= 32 else name[:31] + '…'} {float(scores[k]):.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left + 4, bottom - top + 4
        tx = min(max(0.0, x1 - width), max(0.0, w - tw))
        ty = y1 - width - th if y1 - width - th >= 0 else max(0.0, y1)
        draw.rectangle([tx, ty, tx + tw, ty + th], fill=colour, outline=(0, 0, 0))
        draw.text((tx + 2 - left, ty + 2 - top), text, fill=_text_colour(colour), font=font)
    return out


# ---- running -----------------------------------------------------------------------------------------------


@dataclass
class PredictionRun:
    """What :func:`predict_images` produced: the COCO inputs, the results list and the skipped files."""

    vocabulary: Vocabulary
    images: list[dict] = field(default_factory=list)  # {id, file_name, width, height, path, vis}
    detections: list[dict] = field(default_factory=list)  # COCO results records
    skipped: list[dict] = field(default_factory=list)  # {path, image_id, reason}
    n_inputs: int = 0
    info: dict = field(default_factory=dict)

    def coco_inputs(self) -> dict:
        v = self.vocabulary
        return {
            "images": self.images,
            "categories": [
                {"id": i, "name": n, "prompt": p} for i, n, p in zip(v.category_ids, v.names, v.prompts, strict=True)
            ],
        }

    def summary_line(self) -> str:
        return (
            f"predict: {self.n_inputs} images, {len(self.skipped)} skipped, "
            f"{len(self.detections)} detections over {len(self.vocabulary.prompts)} prompts"
        )

    def write(self, out_dir: str | os.PathLike) -> None:
        from detclip_bench.io import atomic_write_json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "predictions.json", self.detections, indent=None)
        atomic_write_json(out / "inputs.json", self.coco_inputs())
        atomic_write_json(out / "run_info.json", self.info)


def _vis_names(paths: Sequence[Path], ids: Sequence[int]) -> list[str]:
    stems = Counter(p.stem for p in paths)
    return [f"{p.stem}.jpg" if stems[p.stem] == 1 else f"{p.stem}-{i}.jpg" for p, i in zip(paths, ids, strict=True)]


def _common_root(paths: Sequence[Path]) -> Path:
    return Path(os.path.commonpath([str(p.parent) for p in paths]))


def _keep(pred: Prediction, score_thresh: float | None, max_dets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detector's output under the run's contract: scores above the threshold, the top ``max_dets``, by score."""
    keep = np.ones(len(pred.scores), bool) if score_thresh is None else pred.scores > score_thresh
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(-pred.scores[idx], kind="stable")][:max_dets]
    return pred.boxes[idx], pred.scores[idx], pred.labels[idx]


def predict_images(
    detector: Detector,
    paths: Sequence[str | os.PathLike],
    prompts: Vocabulary | Sequence[str],
    *,
    image_ids: Sequence[int] | None = None,
    score_thresh: float | None = None,
    max_dets: int = 100,
    batch_size: int = 4,
    out_dir: str | os.PathLike | None = None,
    draw: bool = True,
    progress: bool = True,
    info: Mapping | None = None,
) -> PredictionRun:
    """Run ``detector`` on image files, ``batch_size`` at a time, and (with ``out_dir``) write the run folder.

    Args:
        detector: any :class:`~detclip_bench.adapters.base.Detector` (e.g. from
            :func:`~detclip_bench.adapters.registry.load_detector`).
        paths: image files, predicted in this order (see :func:`collect_images` for folders and globs).
        prompts: a :class:`Vocabulary` (:func:`parse_prompts`, :func:`read_vocab`, :func:`suite_vocabulary`), or
            prompt texts (category ids ``1..K``).
        image_ids: one id per path (e.g. :func:`image_ids_from`); default ``1..N`` in the given order.
        score_thresh: drop detections scoring at or below it (None: the model's own threshold).
        max_dets: at most this many detections per image (the highest scores).
        out_dir: write ``predictions.json``, ``inputs.json``, ``run_info.json`` and (``draw``) ``vis/`` here.
        info: extra entries for ``run_info.json`` (the CLI adds the ``--model`` spec and the device).

    A file that cannot be read or decoded is skipped with a warning naming it and counted
    (:attr:`PredictionRun.skipped`); if no file can be read, a :class:`DataError` is raised and nothing is written.
    """
    from tqdm import tqdm

    from detclip_bench.provenance import device_description, git_hash, library_versions
    from detclip_bench.schema import ImageRef
    from detclip_bench.suites.runner import model_provenance

    vocab = prompts if isinstance(prompts, Vocabulary) else Vocabulary.from_prompts(list(prompts), "prompts")
    paths = [Path(os.path.abspath(p)) for p in paths]
    if not paths:
        raise DataError("--images", "-", "no images to predict on")
    ids = list(range(1, len(paths) + 1)) if image_ids is None else [int(i) for i in image_ids]
    if len(ids) != len(paths) or len(set(ids)) != len(ids):
        raise ValueError("image_ids must give one distinct id per path")
    if max_dets < 1 or batch_size < 1:
        raise ValueError("max_dets and batch_size must be at least 1")
    out = Path(out_dir) if out_dir is not None else None
    vis_dir = out / "vis" if out is not None and draw else None
    vis_names = _vis_names(paths, ids)
    root = _common_root(paths)
    cat_ids = np.asarray(vocab.category_ids, np.int64)
    run = PredictionRun(vocab, n_inputs=len(paths))
    bar = tqdm(total=len(paths), desc="predict", unit="img", disable=not progress)
    for start in range(0, len(paths), batch_size):
        batch = []
        for k in range(start, min(start + batch_size, len(paths))):
            try:
                batch.append((k, ImageRef(path=str(paths[k])).open(record=f"image {ids[k]}")))
            except DataError as exc:
                log.warning("skipped %s: %s", paths[k], exc.reason)
                run.skipped.append({"path": str(paths[k]), "image_id": ids[k], "reason": exc.reason})
        if batch:
            preds = detector.predict(
                [im for _, im in batch], list(vocab.prompts), max_dets_per_image=max_dets, score_thresh=score_thresh
            )
            if len(preds) != len(batch):
                raise DataError(
                    detector.name, "-", f"the detector returned {len(preds)} predictions for {len(batch)} images"
                )
            for (k, im), pred in zip(batch, preds, strict=True):
                boxes, scores, labels = _keep(pred, score_thresh, max_dets)
                if len(labels) and (labels.min() < 0 or labels.max() >= len(vocab.prompts)):
                    raise DataError(detector.name, str(paths[k]), "detector returned a label outside the prompt list")
                entry = {
                    "id": ids[k],
                    "file_name": paths[k].relative_to(root).as_posix(),
                    "width": im.width,
                    "height": im.height,
                    "path": str(paths[k]),
                }
                xywh = boxes.astype(np.float64)
                xywh[:, 2:] -= xywh[:, :2]
                run.detections += [
                    {"image_id": ids[k], "category_id": int(c), "bbox": b, "score": s}
                    for c, b, s in zip(
                        cat_ids[labels].tolist(), xywh.tolist(), scores.astype(np.float64).tolist(), strict=True
                    )
                ]
                if vis_dir is not None:
                    vis_dir.mkdir(parents=True, exist_ok=True)
                    draw_detections(im, boxes, scores, labels, vocab.names).save(vis_dir / vis_names[k], quality=90)
                    entry["vis"] = f"vis/{vis_names[k]}"
                run.images.append(entry)
        bar.update(min(start + batch_size, len(paths)) - start)
    bar.close()
    if len(run.skipped) == len(paths):
        raise DataError(
            "--images",
            "-",
            f"none of the {len(paths)} images could be read (first: "
            f"{run.skipped[0]['path']}: {run.skipped[0]['reason']})",
        )
    run.info = {
        **dict(info or {}),
        "model": detector.name,
        "identity": detector.identity(),
        "model_provenance": model_provenance(detector),
        "vocabulary": vocab.source,
        "prompts": list(vocab.prompts),
        "category_ids": list(vocab.category_ids),
        "score_threshold": score_thresh,
        "max_dets_per_image": max_dets,
        "batch_size": batch_size,
        "images": len(paths),
        "skipped": run.skipped,
        "detections": len(run.detections),
        "image_ids": "1..N in sorted path order" if image_ids is None else "given",
        "git_hash": git_hash(),
        "versions": library_versions(),
        # a detector that runs on torch has imported it; one that does not should not pay for the import here
        "device_name": device_description() if "torch" in sys.modules else "cpu",
    }
    if out is not None:
        run.write(out)
    return run
