"""Concept enrichment: give every training concept its definition, so prompts read "name, definition".

DetCLIPv2 prompts with "name + definition" in training and testing [P] (DetCLIP's concept
dictionary [D]). Detection and grounding datasets ship bare names and captions ship bare noun
phrases, so the definitions come from a dictionary file. A noun phrase like "a green striped
watermelon" is matched by its longest dictionary suffix ("watermelon") [I]: the head noun of an
English noun phrase is its last word, and its modifiers stay in the prompt's name part.

Accepted files (json): a mini-world ``vocabulary.json`` (``{"concepts": [{name, definition,
synonyms}]}``), an LVIS json (``categories`` with ``def`` and ``synonyms``), or a flat
``{"name": "definition"}`` mapping (what ``detclip-bench data make-dictionary`` writes from WordNet).

Grounding negatives [A] are drawn from :meth:`ConceptDictionary.concepts`, but only for a flat
mapping (``can_sample_negatives``): the other two layouts are evaluation vocabularies (LVIS, or the
mini world's full concept list that its LVIS-like eval covers), and sampling them as training
negatives would put the zero-shot classes into training prompts. :func:`concept_variants` names the
forms of a positive that must not come back as its negative.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from detclip_bench.errors import DataError
from detclip_bench.io import read_json
from detclip_bench.phrases import clean_phrase, cut_at_preposition, phrase_variants, singular
from detclip_bench.schema import Concept

__all__ = ["ConceptDictionary", "concept_variants"]


def concept_variants(name: str) -> frozenset[str]:
    """The forms a concept's negatives must avoid (:func:`detclip_bench.phrases.phrase_variants`): the clean
    name, its head phrase (cut before a preposition, as :meth:`ConceptDictionary.lookup` cuts it) in both
    numbers, and its head noun in both numbers ("the red dogs" → red dogs, red dog, dogs, dog;
    "the man in a blue shirt" → man in a blue shirt, man)."""
    return phrase_variants(name)


class ConceptDictionary:
    """Lower-cased name (and synonym) → definition."""

    def __init__(self, definitions: Mapping[str, str], *, layout: str = "flat") -> None:
        self.definitions = {clean_phrase(k): v.strip() for k, v in definitions.items() if k.strip() and v and v.strip()}
        self.layout = layout  # "flat" | "lvis" | "vocabulary" (how from_file read it)
        self._concepts: tuple[Concept, ...] | None = None
        # every training batch asks for the same concept names; bounded, since caption phrases never repeat
        self.lookup = functools.lru_cache(maxsize=1 << 16)(self._lookup)

    def __len__(self) -> int:
        return len(self.definitions)

    @classmethod
    def from_file(cls, path: str | Path) -> ConceptDictionary:
        data = read_json(path)
        if isinstance(data, dict) and isinstance(data.get("concepts"), list):
            entries = data["concepts"]
            def_key = "definition"
        elif isinstance(data, dict) and isinstance(data.get("categories"), list):
            entries = data["categories"]
            def_key = "def"
        elif isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
            return cls(data, layout="flat")
        else:
            raise DataError(
                str(path),
                "-",
                "not a concept dictionary: expected {'concepts': [...]}, an LVIS json "
                "or a flat {name: definition} mapping",
            )
        out: dict[str, str] = {}
        for n, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise DataError(str(path), f"entry {n}", "expected an object with a string 'name'")
            definition = entry.get(def_key) or ""
            for name in (entry["name"], *entry.get("synonyms", ())):
                out.setdefault(str(name), str(definition))
        return cls(out, layout="vocabulary" if def_key == "definition" else "lvis")

    @property
    def can_sample_negatives(self) -> bool:
        """Whether :meth:`concepts` may serve as grounding negatives: only a flat (training) dictionary."""
        return self.layout == "flat"

    def concepts(self) -> tuple[Concept, ...]:
        """Every entry as a :class:`Concept` (the normalised name and its definition), in file order."""
        if self._concepts is None:
            self._concepts = tuple(Concept(name=k, definition=v) for k, v in self.definitions.items())
        return self._concepts

    def _lookup(self, phrase: str) -> str:
        """The definition of ``phrase``, else of the longest known suffix of its part before a preposition
        ("man in a blue shirt" → "man", as ``data make-dictionary`` resolves it), else of the longest
        known suffix of the whole phrase ("" if none); each part is tried as written, then with its last
        word singular."""
        key = clean_phrase(phrase)
        if key in self.definitions:
            return self.definitions[key]
        if not key:
            return ""
        words = key.split(" ")
        head = cut_at_preposition(words)
        heads = [head] if len(head) < len(words) else []
        # each part as written, then with its head noun singular ("red strawberries" -> "strawberry")
        forms = [f for ws in (*heads, words) for f in (ws, [*ws[:-1], singular(ws[-1])])]
        suffixes = (" ".join(ws[start:]) for ws in forms for start in range(len(ws)))
        return next((self.definitions[s] for s in suffixes if s in self.definitions), "")

    def enrich(self, concept: Concept) -> Concept:
        """``concept`` with a definition filled in (an existing one is kept)."""
        if concept.definition:
            return concept
        definition = self.lookup(concept.name)
        return replace(concept, definition=definition) if definition else concept

    def enrich_all(self, concepts: Iterable[Concept]) -> tuple[Concept, ...]:
        if concepts is self._concepts:  # the dictionary's own entries (grounding negatives): already enriched
            return concepts
        return tuple(self.enrich(c) for c in concepts)

    def phrase_prompt(self, phrase: str) -> str:
        """A caption noun phrase as a prompt: "phrase, definition" when the dictionary knows its head."""
        definition = self.lookup(phrase)
        return f"{phrase}, {definition}" if definition else phrase
