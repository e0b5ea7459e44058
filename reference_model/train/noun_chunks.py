"""Noun chunks of a stream's captions, attached to its records before collation.

Parsing captions with spaCy is the costliest text step of image-text training. A record gets
``meta[NOUN_CHUNKS_META]`` from its shard's sidecar (written once by ``detclip-bench data parse-captions``)
when the sidecar is current for this run's spaCy model; the other records are parsed together, one
``nlp.pipe`` per block of :data:`PARSE_BLOCK` records read ahead, in the DataLoader worker that reads the
shard. The collator turns the chunks into phrases exactly as parsing the caption alone would
(:func:`~reference_model.detclipv2.noun_phrases.phrases_from_chunks`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from detclip_bench.datasets.noun_chunks import NOUN_CHUNKS_META, NounChunkSidecar, open_sidecar
from detclip_bench.schema import Sample

if TYPE_CHECKING:
    from reference_model.detclipv2.noun_phrases import NounPhraseExtractor

__all__ = ["PARSE_BLOCK", "with_noun_chunks"]

log = logging.getLogger("detclip_bench.train")

# records read ahead per batched parse, whatever the micro-batch: alone, 64 captions per nlp.pipe cost ~15% less
# CPU each than 16 (256: no less than 64); in the whole input path the difference is within noise
PARSE_BLOCK = 64

_warned_missing: set[str] = set()


def with_noun_chunks(
    pairs: Iterable[tuple[str | None, Sample]],
    extractor: NounPhraseExtractor,
    folder: str = "",
    block: int = PARSE_BLOCK,
) -> Iterator[Sample]:
    """``(shard, sample)`` pairs → the samples, in order, each with its caption's raw noun chunks in its meta.

    ``extractor`` must have a spaCy model (``identity`` is not None). Sidecars are looked for in ``folder``
    when given, then beside the shard; a shard of None (a plain iterable) has none."""
    identity = extractor.identity
    current: tuple[str | None, NounChunkSidecar | None] = (None, None)
    it = iter(pairs)
    while chunk := list(itertools.islice(it, block)):
        todo: list[Sample] = []
        for shard, sample in chunk:
            if shard is not None and shard != current[0]:
                current = (shard, open_sidecar(shard, identity, folder or None))
            sidecar = current[1] if shard is not None else None
            found = sidecar.lookup(sample.record_id, sample.caption) if sidecar is not None else None
            if found is not None:
                sample.meta[NOUN_CHUNKS_META] = found
                continue
            if sidecar is not None and str(sidecar.path) not in _warned_missing:
                _warned_missing.add(str(sidecar.path))
                log.warning(
                    "noun-chunk sidecar %s has no entry for record %r with its caption (the shard changed since the "
                    "sidecar was written?): such records are parsed; rewrite it with `detclip-bench data parse-captions`",
                    sidecar.path,
                    sample.record_id,
                )
            todo.append(sample)
        if todo:
            unique = list(dict.fromkeys(s.caption for s in todo))
            parsed = dict(zip(unique, extractor.noun_chunks_many(unique, batch_size=block), strict=True))
            for sample in todo:
                sample.meta[NOUN_CHUNKS_META] = list(parsed[sample.caption])
        yield from (sample for _, sample in chunk)
