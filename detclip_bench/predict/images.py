"""Which image files a ``predict`` run reads, the folder it writes, and the COCO ids of its images."""

from __future__ import annotations

import glob
import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from detclip_bench.errors import DataError
from detclip_bench.io import run_out_dir

__all__ = ["DEFAULT_OUT", "IMAGE_EXTENSIONS", "collect_images", "image_ids_from", "outside_folder", "predict_out_dir"]

log = logging.getLogger("detclip_bench.predict")

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
_GLOB_CHARS = re.compile(r"[*?\[]")
DEFAULT_OUT = "runs/predict"


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


def predict_out_dir(out: str | os.PathLike | None, *, exist_ok: bool = False, default: str = DEFAULT_OUT) -> Path:
    """The folder a ``predict`` run writes to (:func:`detclip_bench.io.run_out_dir`: ``runs/predict``, then
    ``runs/predict2``, …); ``exist_ok`` replaces a given folder's predictions and its old ``vis/`` pictures."""
    return run_out_dir(
        out, exist_ok=exist_ok, default=default, replaces="its predictions (its old vis/ pictures are removed)"
    )


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
