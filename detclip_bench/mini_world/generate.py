"""Write the whole mini world: every part in its real format, the vocabulary and the manifest.

Order matters: the training parts (O365, GoldG) are written first, because LVIS-like r/c/f is
derived from how many of their images box each concept. ``manifest.json`` is written last (and
atomically), so its presence marks a complete world.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from detclip_bench.errors import DataError
from detclip_bench.io import atomic_write_json
from detclip_bench.mini_world.captions import write_cc
from detclip_bench.mini_world.dictionary import DICTIONARY_FILE, training_dictionary
from detclip_bench.mini_world.goldg import write_goldg
from detclip_bench.mini_world.imagenet import write_imagenet
from detclip_bench.mini_world.lvis import write_lvis
from detclip_bench.mini_world.o365 import write_o365
from detclip_bench.mini_world.odinw import ODINW13, class_definitions, write_odinw
from detclip_bench.mini_world.render import Difficulty
from detclip_bench.mini_world.scenes import PartOutput
from detclip_bench.mini_world.vocabulary import (
    CONCEPTS,
    VOCABULARY_FILE,
    FrequencyRule,
    MiniVocabulary,
    VocabularyEntry,
    frequency_of,
)

__all__ = ["MANIFEST_FILE", "MANIFEST_VERSION", "generate"]

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = "mini-world/2"  # 2: concept_dictionary.json and cc/heldout
# Everything generate() writes at the top level; only these are removed by overwrite=True.
_OWNED = ("o365", "goldg", "cc", "imagenet", "lvis", "coco", "odinw", VOCABULARY_FILE, DICTIONARY_FILE, MANIFEST_FILE)


def _prepare(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder (stale shards from a bigger run would be read as data) unless
    ``overwrite``; then remove only what a previous run wrote."""
    if out.exists() and not out.is_dir():
        raise DataError(str(out), "--out", "exists and is not a folder; the mini world needs a folder")
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(p.name for p in out.iterdir())
    if not existing:
        return
    if not overwrite:
        raise FileExistsError(f"{out} is not empty ({', '.join(existing[:5])}...); pass overwrite=True to replace it")
    foreign = [n for n in existing if n not in _OWNED]
    if foreign:
        raise FileExistsError(
            f"{out} holds files a mini world does not write ({', '.join(foreign[:5])}); refusing to overwrite it"
        )
    (out / MANIFEST_FILE).unlink(missing_ok=True)  # first: an interrupted run must not look complete
    for name in existing:
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def _merge_training(parts: list[PartOutput]) -> PartOutput:
    merged = PartOutput(boxed_images=Counter(), boxed_instances=Counter())
    for p in parts:
        merged.train_images += p.train_images
        merged.boxed_images.update(p.boxed_images)
        merged.boxed_instances.update(p.boxed_instances)
    return merged


def _vocabulary(train: PartOutput, rule: FrequencyRule) -> MiniVocabulary:
    rare_max, common_max = rule.thresholds(train.train_images)
    entries = [
        VocabularyEntry(
            c.name,
            c.definition,
            c.group,
            list(c.synonyms),
            train.boxed_images[c.name],
            train.boxed_instances[c.name],
            frequency_of(train.boxed_images[c.name], train.train_images, rule),
        )
        for c in CONCEPTS
    ]
    odinw = {m.name: class_definitions(m) for m in ODINW13}
    return MiniVocabulary(entries, odinw, train.train_images, {"rare_max": rare_max, "common_max": common_max})


def generate(
    out_dir: str | os.PathLike,
    *,
    scale: float = 1.0,
    seed: int = 0,
    difficulty: Difficulty | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> dict:
    """Generate the mini world under ``out_dir`` and return its manifest (also in ``manifest.json``).

    Same ``(scale, seed, difficulty)`` → byte-identical files. ``scale`` multiplies every image
    count (with small per-split minimums so every part stays non-empty). ``out_dir`` must be
    empty or absent, or hold a previous mini world and ``overwrite=True``.
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    difficulty = difficulty or Difficulty()
    out = Path(out_dir)
    _prepare(out, overwrite)
    rule = FrequencyRule()
    steps = [
        ("o365", write_o365),
        ("goldg", write_goldg),
        ("cc", write_cc),
        ("imagenet", write_imagenet),
        ("odinw", write_odinw),
    ]
    outputs: list[PartOutput] = []
    t0 = time.perf_counter()
    bar = tqdm(total=len(steps) + 1, desc="mini world", disable=not progress, unit="part")
    for name, writer in steps:
        bar.set_postfix_str(name)
        outputs.append(writer(out, seed, scale, difficulty))
        bar.update()
    train = _merge_training(outputs[:2])
    bar.set_postfix_str("lvis")
    outputs.append(write_lvis(out, seed, scale, difficulty, train, rule))
    bar.update()
    bar.close()
    vocab = _vocabulary(train, rule)
    atomic_write_json(out / VOCABULARY_FILE, vocab.to_json())
    atomic_write_json(out / DICTIONARY_FILE, training_dictionary())
    counts: dict[str, int] = {"train_images": train.train_images}
    parts: list[dict] = []
    for o in outputs:
        counts.update(o.counts)
        parts.extend(o.parts)
    split = vocab.split()
    split["odinw"] = {m.name: list(m.classes) for m in ODINW13}
    manifest = {
        "version": MANIFEST_VERSION,
        "seed": seed,
        "scale": scale,
        "difficulty": asdict(difficulty),
        "counts": counts,
        "vocabulary_split": split,
        "vocabulary": VOCABULARY_FILE,
        "concept_dictionary": DICTIONARY_FILE,
        "parts": parts,
    }
    atomic_write_json(out / MANIFEST_FILE, manifest)
    if progress:
        tqdm.write(f"mini world: {len(parts)} parts in {time.perf_counter() - t0:.1f}s → {out}")
    return manifest
