"""Concept enrichment: give every training concept its definition, so prompts read "name, definition".

DetCLIPv2 prompts with "name + definition" in training and testing [P] (DetCLIP's concept
dictionary [D]). Detection and grounding datasets ship bare names and captions ship bare noun
phrases, so the definitions come from a dictionary file. A noun phrase like "a green striped
watermelon" is matched by its longest dictionary suffix ("watermelon") [I]: the head noun of an
English noun phrase is its last word, and its modifiers stay in the prompt's name part.

Accepted files (json): a mini-world ``vocabulary.json`` (``{"concepts": [{name, definition,
synonyms}]}``), an LVIS json (``categories`` with ``def`` and ``synonyms``), or a flat
``{"name": "definition"}`` mapping.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from detclip_bench.errors import DataError
from detclip_bench.io import read_json
from detclip_bench.schema import Concept

__all__ = ["ConceptDictionary"]

_ARTICLES = ("a ", "an ", "the ")


def _key(text: str) -> str:
    text = re.sub(r"[_\s]+", " ", text.strip().lower())
    for article in _ARTICLES:
        if text.startswith(article):
            return text[len(article):]
    return text


class ConceptDictionary:
    """Lower-cased name (and synonym) → definition."""

    def __init__(self, definitions: Mapping[str, str]) -> None:
        self.definitions = {_key(k): v.strip() for k, v in definitions.items() if k.strip() and v and v.strip()}
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
            return cls(data)
        else:
            raise DataError(str(path), "-", "not a concept dictionary: expected {'concepts': [...]}, an LVIS json "
                                            "or a flat {name: definition} mapping")
        out: dict[str, str] = {}
        for n, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise DataError(str(path), f"entry {n}", "expected an object with a string 'name'")
            definition = entry.get(def_key) or ""
            for name in (entry["name"], *entry.get("synonyms", ())):
                out.setdefault(str(name), str(definition))
        return cls(out)

    def _lookup(self, phrase: str) -> str:
        """The definition of ``phrase`` or of its longest suffix in the dictionary ("" if none)."""
        words = _key(phrase).split(" ")
        suffixes = (" ".join(words[start:]) for start in range(len(words)))
        return next((self.definitions[s] for s in suffixes if s in self.definitions), "")

    def enrich(self, concept: Concept) -> Concept:
        """``concept`` with a definition filled in (an existing one is kept)."""
        if concept.definition:
            return concept
        definition = self.lookup(concept.name)
        return replace(concept, definition=definition) if definition else concept

    def enrich_all(self, concepts: Iterable[Concept]) -> tuple[Concept, ...]:
        return tuple(self.enrich(c) for c in concepts)

    def phrase_prompt(self, phrase: str) -> str:
        """A caption noun phrase as a prompt: "phrase, definition" when the dictionary knows its head."""
        definition = self.lookup(phrase)
        return f"{phrase}, {definition}" if definition else phrase
