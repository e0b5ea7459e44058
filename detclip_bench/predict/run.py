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
is skipped, counted (``inputs_inside_out`` in run_info.json) and logged.
:func:`~detclip_bench.predict.images.predict_out_dir` is the CLI's
folder rule: ``runs/predict``, then ``runs/predict2``, ``runs/predict3``, … so a re-run never overwrites the
last one; a given folder holding files is refused unless ``exist_ok``.

Id rules (so ``detclip-bench score --gt GT --pred predictions.json`` works against a GT with the same ids):

* categories: the vocabulary's own ids when it comes from a COCO/LVIS json (``--vocab``) or a suite
  (``--suite``); otherwise ``1..K`` in prompt order;
* images: ``1..N`` in sorted path order over every input (an unreadable file keeps its id unused, so
  the others do not move), unless ``image_ids`` come from a COCO json (:func:`~detclip_bench.predict.images.image_ids_from`), which
  matches each path to an ``images`` entry by its ``file_name`` (LVIS: the ``<split>2017/<name>`` of its
  ``coco_url``), the longest path suffix first, then a unique base name.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detclip_bench.adapters.base import Detector, model_provenance
from detclip_bench.errors import DataError
from detclip_bench.predict.arrays import PredictionArrays, coco_results
from detclip_bench.predict.draw import draw_detections
from detclip_bench.predict.images import _inside
from detclip_bench.predict.loop import EXIF_TRANSPOSE, predict_arrays
from detclip_bench.predict.vocabulary import Vocabulary

__all__ = ["DEFAULT_VIS_THRESHOLD", "PredictionRun", "model_score_threshold", "predict_images"]

log = logging.getLogger("detclip_bench.predict")

# drawn pictures keep only detections scoring above this: the results keep the model's low threshold (AP needs
# the tail), which would cover a picture in a hundred overlapping boxes
DEFAULT_VIS_THRESHOLD = 0.3
VIS_DIR = "vis"
_VIS_STAGING = ".vis-partial"  # this run's pictures until it has finished; then they replace vis/


@dataclass
class PredictionRun:
    """What :func:`predict_images` produced: the COCO inputs, the detections and the skipped files."""

    vocabulary: Vocabulary
    images: list[dict] = field(default_factory=list)  # {id, file_name, width, height, path, vis}
    arrays: PredictionArrays = field(default_factory=lambda: PredictionArrays.concat([]))
    skipped: list[dict] = field(default_factory=list)  # {path, image_id, reason}
    n_inputs: int = 0
    info: dict = field(default_factory=dict)

    @property
    def detections(self) -> list[dict]:
        """The COCO results records of ``predictions.json``."""
        return coco_results(self.arrays)

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
            f"{len(self.arrays)} detections over {len(self.vocabulary.prompts)} prompts"
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
    workers: int | None = None,
    out_dir: str | os.PathLike | None = None,
    draw: bool = True,
    vis_thresh: float = DEFAULT_VIS_THRESHOLD,
    progress: bool = True,
    info: Mapping | None = None,
) -> PredictionRun:
    """Run ``detector`` on image files, ``batch_size`` at a time, and (with ``out_dir``) write the run folder.

    Args:
        detector: any :class:`~detclip_bench.adapters.base.Detector` (e.g. from
            :func:`~detclip_bench.adapters.models.load_detector`).
        paths: image files, predicted in this order (see :func:`~detclip_bench.predict.images.collect_images` for folders and globs); files
            inside ``out_dir`` are skipped (a run never reads its own output).
        prompts: a :class:`Vocabulary` (:mod:`detclip_bench.predict.vocabulary`), or
            prompt texts (category ids ``1..K``).
        image_ids: one id per path (e.g. :func:`~detclip_bench.predict.images.image_ids_from`); default ``1..N`` in the given order.
        score_thresh: drop detections scoring at or below it (None: the model's own threshold).
        max_dets: at most this many detections per image (the highest scores).
        workers: DataLoader workers reading the images ahead of the model (None: automatic; 0: none).
        out_dir: write ``predictions.json``, ``inputs.json``, ``run_info.json`` and (``draw``) ``vis/`` here.
        vis_thresh: the drawings show only detections scoring above it (the results keep every one).
        info: extra entries for ``run_info.json`` (the CLI adds the ``--model`` spec and the device).

    Images are read upright (EXIF Orientation applied), so sizes and boxes are in the frame COCO tools use.
    A file that cannot be read or decoded is skipped with a warning naming it and counted
    (:attr:`PredictionRun.skipped`); if no file can be read, a :class:`DataError` is raised and nothing is written.
    """
    from detclip_bench.provenance import device_description, git_hash, library_versions
    from detclip_bench.schema import ImageRef

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
    run = PredictionRun(vocab, n_inputs=len(paths))

    def load(k: int):
        image = ImageRef(path=str(paths[k])).open(record=f"image {ids[k]}", exif_transpose=EXIF_TRANSPOSE)
        return ids[k], image, str(paths[k])

    def skip(k: int, exc: DataError) -> None:
        log.warning("skipped %s: %s", paths[k], exc.reason)
        run.skipped.append({"path": str(paths[k]), "image_id": ids[k], "reason": exc.reason})

    def record(k: int, image, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray) -> None:
        entry = {
            "id": ids[k],
            "file_name": paths[k].relative_to(root).as_posix(),
            "width": image.width,
            "height": image.height,
            "path": str(paths[k]),
        }
        if staging is not None:
            staging.mkdir(parents=True, exist_ok=True)
            shown = scores > vis_thresh
            picture = draw_detections(image, boxes[shown], scores[shown], labels[shown], vocab.names)
            picture.save(staging / vis_names[k], quality=90)
            entry["vis"] = f"{VIS_DIR}/{vis_names[k]}"
        run.images.append(entry)

    run.arrays = predict_arrays(
        detector,
        len(paths),
        load,
        vocab.prompts,
        vocab.category_ids,
        max_dets=max_dets,
        score_thresh=score_thresh,
        batch_size=batch_size,
        workers=workers,
        enforce_budget=True,
        on_unreadable=skip,
        on_image=record,
        progress=progress,
    )
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
        "exif_transpose": EXIF_TRANSPOSE,
        "images": len(paths),
        "inputs_inside_out": inside,
        "skipped": run.skipped,
        "detections": len(run.arrays),
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
