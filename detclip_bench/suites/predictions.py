"""A suite target's predictions: the one prediction loop over its images, with a cache so re-scoring never
re-runs a model.

Predictions are :class:`~detclip_bench.predict.arrays.PredictionArrays`, cached per (model identity, suite,
member, split). Under torchrun each rank predicts a strided shard of the images and rank 0 receives everything
in rank order. They are serialised once: the run's ``predictions/`` file and the cache file carry the same
record, so one is a hard link to the other (a copy of its bytes across devices), and the run keeps its file
when the cache is deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from detclip_bench import dist
from detclip_bench.adapters.base import Detector, model_provenance
from detclip_bench.datasets.base import MapSource
from detclip_bench.io import atomic_link
from detclip_bench.predict.arrays import PredictionArrays
from detclip_bench.predict.loop import EXIF_TRANSPOSE, predict_arrays
from detclip_bench.predict.vocabulary import prompts_for
from detclip_bench.suites.suite import EvalTarget, Suite, member_file_stem

__all__ = ["cache_path", "predict_target"]

log = logging.getLogger("detclip_bench.suites")


def cache_path(cache_dir: Path, identity: str, suite: Suite, target: EvalTarget) -> Path:
    name = f"{member_file_stem(target.member)}-{target.split}.npz"
    return cache_dir / identity[:16] / f"{suite.name}-v{suite.version}" / name


def predict_target(
    detector: Detector,
    suite: Suite,
    target: EvalTarget,
    *,
    cache_dir: Path | None,
    batch_size: int = 4,
    workers: int | None = None,
    progress: bool = True,
    dataset: MapSource | None = None,
    keep: Path | None = None,
) -> tuple[PredictionArrays, list[str]]:
    """Predictions for every image of ``target`` (from cache when present) and the prompts used.

    ``workers``: DataLoader workers reading and preparing the images (None: ``auto_workers``).
    ``dataset``: the target already opened (default: opened here). ``keep``: where the run keeps these
    predictions (its ``predictions/<member>-<split>.npz``, rank 0): a hard link to the cache file when the cache
    holds them with the same record, else written there.
    """
    dataset = dataset if dataset is not None else target.open()
    vocabulary = tuple(dataset.vocabulary())
    prompts = prompts_for(suite, vocabulary)
    prompt_hash = hashlib.sha256("\n".join(prompts).encode()).hexdigest()[:12]
    path = cache_path(cache_dir, detector.identity(), suite, target) if cache_dir is not None else None
    # what besides the weights decides the predictions (adapter settings, library versions, the inference
    # code's revision): a cache made under other settings is recomputed, never reused
    provenance = json.loads(json.dumps(model_provenance(detector), sort_keys=True, default=str))
    deciding = {
        "prompt_hash": prompt_hash,
        "max_dets_per_image": suite.max_dets_per_image,
        "score_threshold": suite.score_threshold,
        "provenance": provenance,
        "exif_transpose": EXIF_TRANSPOSE,
    }
    # the record every predictions file carries, cache and run alike: what decides them, whose they are, of what
    meta = {
        **deciding,
        "model": detector.name,
        "identity": detector.identity(),
        "suite": suite.name,
        "version": suite.version,
        "member": target.member,
        "split": target.split,
    }
    if path is not None and path.is_file():
        arrays, cached = PredictionArrays.load(path)
        if all(cached.get(k) == v for k, v in deciding.items()) and cached.get("exif_transpose") is EXIF_TRANSPOSE:
            log.info("%s [%s]: %d cached predictions from %s", target.member, target.split, len(arrays), path)
            if keep is not None and dist.is_main_process():
                _keep(arrays, meta, keep, path if cached == meta else None)
            return arrays, prompts
        log.info("%s: cache %s was made with other prompts or budget; recomputing", target.member, path)

    rank, world = dist.get_rank(), dist.get_world_size()
    indices = list(range(rank, len(dataset), world))

    def load(k: int):
        sample = dataset[indices[k]]
        return int(sample.record_id), sample.load_image(exif_transpose=EXIF_TRANSPOSE), sample.record_id

    arrays = predict_arrays(
        detector,
        len(indices),
        load,
        prompts,
        [c.category_id for c in vocabulary],
        max_dets=suite.max_dets_per_image,
        score_thresh=suite.score_threshold,
        batch_size=batch_size,
        workers=workers,
        progress=progress and rank == 0,
        desc=f"{target.member} [{target.split}]",
    )
    if world > 1:
        arrays = PredictionArrays.concat(dist.all_gather_object(arrays))
    if dist.is_main_process():
        if path is not None:
            arrays.save(path, meta)
        if keep is not None:
            _keep(arrays, meta, keep, path)
    return arrays, prompts


def _keep(arrays: PredictionArrays, meta: dict, keep: Path, saved: Path | None) -> None:
    """The run's file: ``saved`` (a file holding ``arrays`` with ``meta``) linked, else ``arrays`` written."""
    if saved is not None:
        atomic_link(saved, keep)
    else:
        arrays.save(keep, meta)
