"""Caption → concepts for image-text pairs: spaCy noun chunks [P], with a heuristic fallback.

The spaCy model name is a setting (the default is the PyPI re-upload of ``en_core_web_sm``;
users with internet may prefer the official ``en_core_web_sm``). When no model loads, a
stop-word splitter finds maximal runs of content words, which still yields multi-word noun
phrases ("flower pot", "white background") from short alt-text captions.
Phrases are cleaned by :func:`detclip_bench.phrases.clean_phrase` (the rules the dictionary shares:
lower-cased, punctuation dropped, leading determiners/possessives/number words removed) and
de-duplicated [I].
"""

from __future__ import annotations

import functools
import logging
import re

from detclip_bench.datasets.noun_chunks import DEFAULT_SPACY_MODEL, doc_chunks, load_spacy, parser_identity
from detclip_bench.dictionary import is_image_meta
from detclip_bench.phrases import DETERMINERS, clean_phrase

__all__ = ["NounPhraseExtractor", "caption_concepts", "heuristic_noun_phrases", "phrases_from_chunks"]

log = logging.getLogger(__name__)

_PRONOUNS = frozenset(
    [
        "i",
        "me",
        "you",
        "he",
        "him",
        "she",
        "it",
        "we",
        "us",
        "they",
        "them",
        "who",
        "what",
        "which",
        "there",
        "here",
        "something",
        "someone",
    ]
)
_BREAKERS = (
    frozenset(
        [
            "and",
            "or",
            "but",
            "nor",
            "so",
            "yet",
            "with",
            "without",
            "in",
            "on",
            "at",
            "of",
            "for",
            "from",
            "to",
            "into",
            "onto",
            "over",
            "under",
            "above",
            "below",
            "between",
            "through",
            "during",
            "before",
            "after",
            "near",
            "by",
            "about",
            "against",
            "along",
            "across",
            "around",
            "behind",
            "beside",
            "beyond",
            "inside",
            "outside",
            "up",
            "down",
            "off",
            "out",
            "as",
            "while",
            "than",
            "like",
            "is",
            "are",
            "was",
            "were",
            "be",
            "been",
            "being",
            "am",
            "has",
            "have",
            "had",
            "do",
            "does",
            "did",
            "will",
            "would",
            "can",
            "could",
            "should",
            "may",
            "might",
            "must",
            "not",
            "very",
            "just",
            "also",
            "then",
        ]
    )
    | DETERMINERS
    | _PRONOUNS
)
_SEPARATORS = re.compile(r"\s+[-–—]\s+|\s*\|\s*")  # alt-text joins its pieces with " - " and " | "
_WORD = re.compile(r"[a-z0-9]+(?:['’-][a-z0-9]+)*")
_VERB_SUFFIXES = ("ing", "ed")


def heuristic_noun_phrases(caption: str) -> list[str]:
    """Maximal runs of content words between stop words and punctuation.

    An -ing/-ed word right after a content word and before a stop word is read as a verb
    ("kitten inspecting a toad", "bus parked near"); elsewhere it stays a modifier or noun
    ("a smiling woman", "studio lighting").
    """
    phrases: list[str] = []
    for clause in re.split(r"[,.;:!?()\"/|]+|\s+[-–—]\s+", caption.lower()):
        words = _WORD.findall(clause)
        run: list[str] = []
        for i, word in enumerate(words):
            nxt = words[i + 1] if i + 1 < len(words) else None
            verbal = run and len(word) > 4 and word.endswith(_VERB_SUFFIXES) and nxt in _BREAKERS
            if word in _BREAKERS or verbal:
                if run:
                    phrases.append(" ".join(run))
                run = []
            else:
                run.append(word)
        if run:
            phrases.append(" ".join(run))
    return list(dict.fromkeys(phrases))


@functools.lru_cache(maxsize=4)  # one load (and one warning) per model and process
def _load_spacy(model_name: str):
    try:
        return load_spacy(model_name)
    except (ImportError, OSError) as exc:
        log.warning("spaCy model %r unavailable (%s); using the heuristic noun-phrase fallback", model_name, exc)
        return None


class NounPhraseExtractor:
    """``extract(caption)`` → noun phrases; ``backend`` says which path is active.

    With spaCy, the phrases are :func:`phrases_from_chunks` of the caption's raw noun chunks, so chunks parsed
    earlier (a shard's sidecar, see :mod:`detclip_bench.datasets.noun_chunks`) give the same phrases as parsing
    now, provided ``identity`` matches the one they were parsed with.
    """

    def __init__(self, model_name: str = DEFAULT_SPACY_MODEL) -> None:
        self.model_name = model_name
        self._nlp = _load_spacy(model_name) if model_name else None
        self.identity: dict | None = parser_identity(self._nlp) if self._nlp is not None else None

    @property
    def backend(self) -> str:
        return f"spacy:{self.model_name}" if self._nlp is not None else "heuristic"

    def extract(self, caption: str) -> list[str]:
        if self._nlp is None:
            return heuristic_noun_phrases(caption)
        return phrases_from_chunks(doc_chunks(self._nlp(caption)))

    def noun_chunks_many(self, captions: list[str], batch_size: int = 64) -> list[list[str]]:
        """Raw spaCy noun chunks of every caption, parsed together (``nlp.pipe``); spaCy backend only."""
        if self._nlp is None:
            raise RuntimeError("noun_chunks_many needs a spaCy model; the heuristic backend has no chunks")
        return [doc_chunks(doc) for doc in self._nlp.pipe(captions, batch_size=batch_size, n_process=1)]

    def extract_many(self, captions: list[str], batch_size: int = 64) -> list[list[str]]:
        """``extract`` of every caption; spaCy parses them together (``nlp.pipe``), 2-3× faster per caption."""
        if self._nlp is None:
            return [heuristic_noun_phrases(c) for c in captions]
        return [phrases_from_chunks(c) for c in self.noun_chunks_many(captions, batch_size)]

    def batch(self, captions: list[str], chunks: dict[str, list[str]] | None = None) -> _Parsed:
        """An extractor answering for ``captions`` from ``chunks`` (caption → raw noun chunks parsed earlier, used
        with the spaCy backend only) and one batched parse of the rest (others are parsed on demand)."""
        known = {c: phrases_from_chunks(ch) for c, ch in (chunks or {}).items()} if self._nlp is not None else {}
        unique = [c for c in dict.fromkeys(captions) if c not in known]
        parsed = dict(zip(unique, self.extract_many(unique), strict=True)) if unique else {}
        return _Parsed(self, {**known, **parsed})


def phrases_from_chunks(chunks: list[str]) -> list[str]:
    """Raw noun-chunk texts → phrases: cleaned, pronouns and empties dropped, de-duplicated in order."""
    cleaned = (clean_phrase(c) for c in chunks)
    return list(dict.fromkeys(c for c in cleaned if c and c not in _PRONOUNS))


class _Parsed:
    def __init__(self, extractor: NounPhraseExtractor, phrases: dict[str, list[str]]) -> None:
        self.extractor, self.phrases = extractor, phrases

    def extract(self, caption: str) -> list[str]:
        found = self.phrases.get(caption)
        return list(found) if found is not None else self.extractor.extract(caption)


def caption_concepts(caption: str, extractor, dictionary=None) -> list[str]:
    """The noun phrases of ``caption`` that image-text training uses, as DetCLIP filters them [D][I].

    Candidates are ``extractor``'s phrases (spaCy noun chunks), then the content-word runs of
    :func:`heuristic_noun_phrases` that are not among them (the small spaCy model tags "nut" in "a grey hex
    nut" as a verb and loses the object). Phrases about the picture rather than in it ("stock photo",
    "sale", see :data:`detclip_bench.dictionary.META_NOUNS`) are dropped, and with a concept ``dictionary``
    only phrases whose head it knows (``dictionary.lookup`` finds a definition) are kept. Order: first seen.
    """
    found = [*extractor.extract(caption), *heuristic_noun_phrases(caption)]
    parts = (clean_phrase(part) for phrase in found for part in _SEPARATORS.split(phrase))  # "moon | free download"
    candidates = list(dict.fromkeys(p for p in parts if p))
    kept = [p for p in candidates if not is_image_meta(p)]
    if dictionary is not None:
        kept = [p for p in kept if dictionary.lookup(p)]
    return kept
