"""Run any :class:`~detclip_bench.adapters.base.Detector` on a pile of image files: ``detclip-bench predict``.

:func:`predict_images` is the Python API; the ``predict`` verb (:mod:`detclip_bench.cli.predict`) only parses
arguments and calls it. A run folder holds:

* ``predictions.json``: a COCO results list ``{image_id, category_id, bbox: [x, y, w, h], score}``, boxes in
  the original image's pixels, upright: a photo whose EXIF Orientation says "rotated" is turned first
  (``PIL.ImageOps.exif_transpose``, as suite evaluation does), so width/height and boxes are in the frame a
  phone shows and COCO tools label in; per image by descending score, every detection above the score
  threshold (low on purpose: AP needs the tail);
* ``inputs.json``: a COCO-style ``{images: [{id, file_name, width, height, path, vis}], categories:
  [{id, name, prompt}]}`` naming every id the results use (``file_name`` is relative to the folder the
  inputs share; images that could not be read are not in it);
* ``run_info.json``: the model (spec, name, identity, provenance), the prompts, the score threshold the
  results used (and where it came from) and the one the drawings used, the budget, ``exif_transpose``, the skipped files,
  library versions, git hash and device;
* ``vis/<stem>.jpg``: each image (upright) at its original size with the boxes scoring above
  ``vis_thresh`` drawn, labels and scores included (a name used twice gets ``-<image id>`` appended). They
  replace the folder's old pictures only once the run has finished, so old and new never mix.

An input file inside the run folder (a folder of photos holding its own ``--out``) is never predicted on: it
is skipped, counted (``inputs_inside_out`` in run_info.json) and logged. :func:`predict_out_dir` is the CLI's
folder rule: ``runs/predict``, then ``runs/predict2``, ``runs/predict3``, … so a re-run never overwrites the
last one; a given folder holding files is refused unless ``exist_ok``.

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
import shutil
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
    "model_score_threshold",
    "outside_folder",
    "parse_prompts",
    "predict_images",
    "predict_out_dir",
    "read_vocab",
    "suite_vocabulary",
]

log = logging.getLogger("detclip_bench.predict")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_GLOB_CHARS = re.compile(r"[*?\[]")
DEFAULT_OUT = "runs/predict"
# drawn pictures keep only detections scoring above this: the results keep the model's low threshold (AP needs
# the tail), which would cover a picture in a hundred overlapping boxes
DEFAULT_VIS_THRESHOLD = 0.3
VIS_DIR = "vis"
_VIS_STAGING = ".vis-partial"  # this run's pictures until it has finished; then they replace vis/


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


def _inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def outside_folder(paths: Sequence[Path], folder: str | os.PathLike | None) -> tuple[list[Path], list[Path]]:
    """``(kept, inside)``: the paths not inside ``folder`` (by the files they resolve to), and those that are.

    A run must never read its own output: a second ``predict`` on a photo folder holding its ``--out`` would
    otherwise predict on the first run's drawings."""
    if folder is None:
        return list(paths), []
    kept, inside = [], []
    for p in paths:
        (inside if _inside(p, folder) else kept).append(p)
    return kept, inside


def _holds_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def predict_out_dir(out: str | os.PathLike | None, *, exist_ok: bool = False, default: str = DEFAULT_OUT) -> Path:
    """The folder a ``predict`` run writes to, chosen so that two runs' files never mix.

    ``out=None``: ``default`` (``runs/predict``) when free (missing or empty), else the first free one of
    ``runs/predict2``, ``runs/predict3``, … (as ``yolo predict`` numbers its runs); with ``exist_ok``,
    ``default`` itself. A given ``out`` that holds files raises :class:`FileExistsError` unless ``exist_ok``
    (then the run replaces its files and its ``vis/`` pictures). Nothing is created here.
    """
    if out is None:
        base = Path(default)
        if exist_ok or not _holds_files(base):
            return base
        n = 2
        while _holds_files(base.with_name(f"{base.name}{n}")):
            n += 1
        return base.with_name(f"{base.name}{n}")
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"--out {path} is a file, not a folder")
    if _holds_files(path) and not exist_ok:
        shown = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())[:4])
        raise FileExistsError(
            f"--out {path} already holds files ({shown}{', …' if len(list(path.iterdir())) > 4 else ''}); "
            "give a new folder, or --exist-ok to replace its predictions (its old vis/ pictures are removed)"
        )
    return path


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


def model_score_threshold(detector: Detector) -> float | None:
    """The threshold ``detector`` applies when asked for none (``score_thresh=None``), where it states one:
    DetCLIPv2's ``config.score_thresh``, an ONNX export's ``settings.score_thresh``; None where it keeps its
    top-k unthresholded (or does not say), so run_info.json records the number actually used, never a guess."""
    for owner in (getattr(detector, "config", None), getattr(detector, "settings", None)):
        value = getattr(owner, "score_thresh", None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def _replace_vis(staging: Path, vis_dir: Path) -> None:
    """Swap in this run's pictures: the old run's ``*.jpg`` go first, so the folder never mixes two runs."""
    vis_dir.mkdir(parents=True, exist_ok=True)
    for old in vis_dir.glob("*.jpg"):
        old.unlink()
    if staging.is_dir():
        for new in staging.iterdir():
            new.replace(vis_dir / new.name)
        staging.rmdir()


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
    vis_thresh: float = DEFAULT_VIS_THRESHOLD,
    progress: bool = True,
    info: Mapping | None = None,
) -> PredictionRun:
    """Run ``detector`` on image files, ``batch_size`` at a time, and (with ``out_dir``) write the run folder.

    Args:
        detector: any :class:`~detclip_bench.adapters.base.Detector` (e.g. from
            :func:`~detclip_bench.adapters.registry.load_detector`).
        paths: image files, predicted in this order (see :func:`collect_images` for folders and globs); files
            inside ``out_dir`` are skipped (a run never reads its own output).
        prompts: a :class:`Vocabulary` (:func:`parse_prompts`, :func:`read_vocab`, :func:`suite_vocabulary`), or
            prompt texts (category ids ``1..K``).
        image_ids: one id per path (e.g. :func:`image_ids_from`); default ``1..N`` in the given order.
        score_thresh: drop detections scoring at or below it (None: the model's own threshold).
        max_dets: at most this many detections per image (the highest scores).
        out_dir: write ``predictions.json``, ``inputs.json``, ``run_info.json`` and (``draw``) ``vis/`` here.
        vis_thresh: the drawings show only detections scoring above it (the results keep every one).
        info: extra entries for ``run_info.json`` (the CLI adds the ``--model`` spec and the device).

    Images are read upright (EXIF Orientation applied), so sizes and boxes are in the frame COCO tools use.
    A file that cannot be read or decoded is skipped with a warning naming it and counted
    (:attr:`PredictionRun.skipped`); if no file can be read, a :class:`DataError` is raised and nothing is written.
    """
    from tqdm import tqdm

    from detclip_bench.provenance import device_description, git_hash, library_versions
    from detclip_bench.schema import ImageRef
    from detclip_bench.suites.runner import model_provenance

    vocab = prompts if isinstance(prompts, Vocabulary) else Vocabulary.from_prompts(list(prompts), "prompts")
    paths = [Path(os.path.abspath(p)) for p in paths]
    ids = list(range(1, len(paths) + 1)) if image_ids is None else [int(i) for i in image_ids]
    if len(ids) != len(paths) or len(set(ids)) != len(ids):
        raise ValueError("image_ids must give one distinct id per path")
    out = Path(out_dir) if out_dir is not None else None
    inside = 0
    if out is not None:
        pairs = [(p, i) for p, i in zip(paths, ids, strict=True) if not _inside(p, out)]
        inside = len(paths) - len(pairs)
        if inside:
            log.warning(
                "skipped %d input file(s) inside the output folder %s: a run never reads its output", inside, out
            )
        paths, ids = [p for p, _ in pairs], [i for _, i in pairs]
        if image_ids is None:
            ids = list(range(1, len(paths) + 1))
    inside += int(dict(info or {}).get("inputs_inside_out", 0))
    if not paths:
        why = f" (the {inside} found are inside the output folder)" if inside else ""
        raise DataError("--images", "-", f"no images to predict on{why}")
    if max_dets < 1 or batch_size < 1:
        raise ValueError("max_dets and batch_size must be at least 1")
    staging = out / _VIS_STAGING if out is not None and draw else None
    if staging is not None and staging.exists():  # an interrupted run's pictures
        shutil.rmtree(staging)
    vis_names = _vis_names(paths, ids)
    root = _common_root(paths)
    cat_ids = np.asarray(vocab.category_ids, np.int64)
    run = PredictionRun(vocab, n_inputs=len(paths))
    bar = tqdm(total=len(paths), desc="predict", unit="img", disable=not progress)
    for start in range(0, len(paths), batch_size):
        batch = []
        for k in range(start, min(start + batch_size, len(paths))):
            try:
                image = ImageRef(path=str(paths[k])).open(record=f"image {ids[k]}", exif_transpose=True)
                batch.append((k, image))
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
                if staging is not None:
                    staging.mkdir(parents=True, exist_ok=True)
                    shown = scores > vis_thresh
                    picture = draw_detections(im, boxes[shown], scores[shown], labels[shown], vocab.names)
                    picture.save(staging / vis_names[k], quality=90)
                    entry["vis"] = f"{VIS_DIR}/{vis_names[k]}"
                run.images.append(entry)
        bar.update(min(start + batch_size, len(paths)) - start)
    bar.close()
    if len(run.skipped) == len(paths):
        if staging is not None and staging.exists():
            shutil.rmtree(staging)
        raise DataError(
            "--images",
            "-",
            f"none of the {len(paths)} images could be read (first: "
            f"{run.skipped[0]['path']}: {run.skipped[0]['reason']})",
        )
    own = model_score_threshold(detector)
    run.info = {
        **dict(info or {}),
        "model": detector.name,
        "identity": detector.identity(),
        "model_provenance": model_provenance(detector),
        "vocabulary": vocab.source,
        "prompts": list(vocab.prompts),
        "category_ids": list(vocab.category_ids),
        # the threshold predictions.json used (the model's own where none was given and it states one)
        "score_threshold": own if score_thresh is None else score_thresh,
        "score_threshold_from": "the model"
        if score_thresh is None
        else dict(info or {}).get("score_threshold_from", "given"),
        "vis_threshold": vis_thresh if draw else None,
        "max_dets_per_image": max_dets,
        "batch_size": batch_size,
        "exif_transpose": True,
        "images": len(paths),
        "inputs_inside_out": inside,
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
        if staging is not None:
            _replace_vis(staging, out / VIS_DIR)
        else:  # --no-draw: pictures of an earlier run in this folder would not match these predictions
            for old in (out / VIS_DIR).glob("*.jpg"):
                old.unlink()
    return run
