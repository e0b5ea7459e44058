"""Build (or rebuild) a FiftyOne dataset from a run directory: GT, predictions and verdicts.

Per sample: ``member``, ``image_id``, ``split``, ``ground_truth`` and ``predictions``
(``fo.Detections``; every box carries ``eval`` = tp/fp/fn/ignored as attribute *and* label tag,
``eval_reason``, ``eval_iou``, ``category_id``; predictions also ``confused_with``; GT also
``frequency`` and ``rare``), the counts ``eval_tp/fp/fn/ignored``, and for LVIS the image's
``neg_labels`` / ``not_exhaustive_labels``. ``dataset.info`` keeps the suite, the model, the
run's aggregate and, per member and protocol, our evaluator's per-category AP
(``info["category_ap"][member][protocol][name]``; None = no GT).

Building takes minutes for a 100-image suite, so ``analyze`` reuses a dataset whose
``info["source_fingerprint"]`` (:func:`source_fingerprint`) says it was built from the same run files, GT files
and build format (:func:`reusable_dataset`); anything else is rebuilt.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np

from detclip_bench.analysis.fo_env import import_fiftyone
from detclip_bench.analysis.records import ImageRecord, category_names, iter_records
from detclip_bench.analysis.run_dir import LoadedRun, MemberRun

__all__ = [
    "BUILD_FORMAT",
    "build_dataset",
    "category_ap_table",
    "dataset_name",
    "rare_category_ids",
    "reusable_dataset",
    "source_fingerprint",
]

BUILD_FORMAT = 1  # bump whenever build_dataset/_sample change what a dataset holds: older datasets are rebuilt


def dataset_name(run: LoadedRun) -> str:
    """Stable per (suite, model identity): re-running analyze replaces the same dataset."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"detclip-{run.suite.name}-{run.identity[:12]}")


def source_fingerprint(run: LoadedRun) -> str:
    """What a dataset is built from: the run folder's results, predictions and per-category tables, each member's
    GT file and image folder, the data root and :data:`BUILD_FORMAT`. Size and modification time stand for a
    file's content (any rewrite changes them), so checking costs no read of the files."""
    from detclip_bench.suites.runner import predictions_path
    from detclip_bench.suites.suite import member_file_stem

    parts = [f"format {BUILD_FORMAT}", f"data root {run.data_root}"]
    files = [run.run_dir / "results.json"]
    for m in run.members:
        stem = member_file_stem(m.target.member)
        files.append(predictions_path(run.run_dir, m.target))
        files += [run.run_dir / f"{stem}-{protocol}.csv" for protocol in sorted(m.category_tables)]
        files.append(Path(m.target.annotations))
        parts.append(f"{m.member} {m.split} images {m.target.images}")
    for f in files:
        st = f.stat()
        parts.append(f"{f.resolve()} {st.st_size} {st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def reusable_dataset(run: LoadedRun, *, name: str | None = None):
    """The persistent dataset of this name if it was built from exactly this run (else None: build it)."""
    fo = import_fiftyone()
    name = name or dataset_name(run)
    if not fo.dataset_exists(name):
        return None
    ds = fo.load_dataset(name)
    return ds if ds.info.get("source_fingerprint") == source_fingerprint(run) else None


def category_ap_table(member: MemberRun) -> dict[str, dict[str, float | None]]:
    """protocol -> category name -> AP (None where the category has no GT)."""
    out = {}
    for protocol, table in member.category_tables.items():
        out[protocol] = {
            str(r["name"]): (None if r["ap"] is None or math.isnan(float(r["ap"])) else float(r["ap"]))
            for _, r in table.iterrows()
        }
    return out


def rare_category_ids(member: MemberRun, primary: str) -> set[int]:
    """LVIS: frequency 'r'. Without frequencies: the categories in the lowest quartile of GT count."""
    table = member.category_tables[primary]
    if table["frequency"].notna().any():
        return {int(i) for i in table.index[table["frequency"] == "r"]}
    with_gt = table[table["num_gt"] > 0]
    if with_gt.empty:
        return set()
    cut = float(np.quantile(with_gt["num_gt"].to_numpy(), 0.25))
    return {int(i) for i in with_gt.index[with_gt["num_gt"] <= cut]}


def _rel(box: np.ndarray, w: int, h: int) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1 / w, y1 / h, (x2 - x1) / w, (y2 - y1) / h]


def _sample(fo, rec: ImageRecord, names: dict[int, str], freq: dict[int, str | None], rare: set[int], split: str):
    m = rec.match
    gts = []
    for g in range(len(rec.gt.category_ids)):
        c = int(rec.gt.category_ids[g])
        status = str(m.gt_status[g])
        gts.append(
            fo.Detection(
                label=names[c],
                bounding_box=_rel(rec.gt.boxes[g], rec.width, rec.height),
                tags=[status],
                eval=status,
                category_id=c,
                iscrowd=bool(rec.gt.crowd[g]),
                frequency=freq.get(c),
                rare=c in rare,
            )
        )
    preds = []
    for d in range(len(rec.det_scores)):
        c = int(rec.det_category_ids[d])
        status, reason = str(m.det_status[d]), str(m.det_reason[d])
        confused = int(m.det_confused_with[d])
        preds.append(
            fo.Detection(
                label=names[c],
                bounding_box=_rel(rec.det_boxes[d], rec.width, rec.height),
                confidence=float(rec.det_scores[d]),
                tags=[status] + ([reason] if reason else []),
                eval=status,
                eval_reason=reason,
                eval_iou=float(m.det_iou[d]),
                category_id=c,
                confused_with=names[confused] if confused >= 0 else None,
            )
        )
    fields = {
        "member": rec.member,
        "split": split,
        "image_id": rec.image_id,
        "ground_truth": fo.Detections(detections=gts),
        "predictions": fo.Detections(detections=preds),
        **{f"eval_{k}": v for k, v in m.counts.items()},
    }
    if rec.gt.federated:
        fields["neg_labels"] = sorted(names[c] for c in rec.gt.neg_category_ids if c in names)
        fields["not_exhaustive_labels"] = sorted(names[c] for c in rec.gt.not_exhaustive_category_ids if c in names)
    return fo.Sample(filepath=rec.path, **fields)


def build_dataset(run: LoadedRun, *, name: str | None = None, progress: bool = True):
    """Create the dataset (replacing one of the same name), persistent so the App process sees it."""
    fo = import_fiftyone()
    ds = fo.Dataset(name or dataset_name(run), overwrite=True, persistent=True)
    info = {
        "suite": run.suite.name,
        "suite_version": run.suite.version,
        "model": run.results.get("model"),
        "model_identity": run.identity,
        "primary_protocol": run.primary,
        "aggregate": run.results["aggregate"],
        "summary": run.results.get("summary"),
        "category_ap": {},
        "iou_threshold": 0.5,
        "source_fingerprint": None,  # set last: a build cut short is never reused
    }
    for member in run.members:
        names = category_names(member)
        table = member.category_tables[run.primary]
        freq = {int(i): (None if not isinstance(f, str) else f) for i, f in table["frequency"].items()}
        rare = rare_category_ids(member, run.primary)
        samples = [_sample(fo, rec, names, freq, rare, member.split) for rec in iter_records(member, progress=progress)]
        ds.add_samples(samples, progress=False)
        info["category_ap"][member.member] = category_ap_table(member)
    ds.info = info | {"source_fingerprint": source_fingerprint(run)}
    ds.save()
    return ds
