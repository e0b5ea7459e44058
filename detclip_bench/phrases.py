"""The one set of phrase-cleaning rules: the dictionary writer, its reader, caption phrases and negatives.

``data make-dictionary`` writes keys with :func:`normalize_phrase`, :class:`ConceptDictionary` reads
them with :func:`clean_phrase` plus the same preposition cut, caption noun phrases are cleaned with
:func:`clean_phrase`, and grounding negatives avoid :func:`phrase_variants` of every positive. They
used to keep their own determiner lists (which drifted); a phrase now cleans the same way everywhere.

Rules [I] (docs/concept_dictionary.md):

* lower-case, ``_`` → space, punctuation other than ``-`` and ``'`` inside a word dropped;
* leading determiners, possessives and small number words removed (:data:`DETERMINERS`);
* the head phrase ends before the first preposition after the first word ("man in a blue shirt" → "man");
* the head noun is the last word of the head phrase, compared in a crude singular ("men" ~ "man").
"""

from __future__ import annotations

import functools
import re

__all__ = [
    "DETERMINERS",
    "PREPOSITIONS",
    "clean_phrase",
    "cut_at_preposition",
    "head_noun",
    "normalize_phrase",
    "phrase_variants",
    "singular",
    "swap_left_right",
]


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: words dropped from the start of a phrase ("the", "two", "their", "several", ...)
DETERMINERS = _word_set(
    "a an the this that these those my your his her its our their some any each every no another "
    "one two three four five six seven eight nine ten several many few all both"
)
#: a phrase's head part ends before the first of these after its first word
PREPOSITIONS = _word_set(
    "of in on at with without for from by near under over above below behind beside besides between "
    "inside outside into onto through across along around against among toward towards like"
)
_PUNCTUATION = re.compile(r"[^\w\s'-]")
_SIDES = re.compile(r"\b(left|right)(most)?\b", re.IGNORECASE)


def clean_phrase(text: str) -> str:
    """Lower-case, ``_`` → space, punctuation dropped, leading determiners removed (no preposition cut)."""
    text = _PUNCTUATION.sub(" ", text.lower().replace("_", " "))
    words = [w for w in (w.strip("'-") for w in text.split()) if w]
    while words and words[0] in DETERMINERS:
        words = words[1:]
    return " ".join(words)


def cut_at_preposition(words: list[str]) -> list[str]:
    """The words before the first preposition that is not the first word ("cup of coffee" → cup)."""
    cut = next((i for i, w in enumerate(words) if i > 0 and w in PREPOSITIONS), len(words))
    return words[:cut]


def normalize_phrase(text: str) -> str:
    """:func:`clean_phrase`, cut before its first preposition: the dictionary's key for a phrase."""
    return " ".join(cut_at_preposition(clean_phrase(text).split()))


def singular(word: str) -> str:
    """A crude English singular, used only to compare forms ("dogs" ~ "dog", "boxes" ~ "box", "men" ~ "man")."""
    if word.endswith("men"):
        return word[:-3] + "man"
    for suffix, base in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("xes", "x"), ("ses", "s")):
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            return word[: -len(suffix)] + base
    return word[:-1] if word.endswith("s") and not word.endswith("ss") and len(word) > 3 else word


def head_noun(text: str) -> str:
    """The last word of the head phrase ("" for a phrase of determiners only)."""
    words = normalize_phrase(text).split()
    return words[-1] if words else ""


@functools.lru_cache(maxsize=1 << 17)
def phrase_variants(text: str) -> frozenset[str]:
    """Forms that name the same thing as ``text``: its clean form, its head phrase (before a preposition)
    with the last word as written and singular, and the head noun in both numbers.

    "the man in a blue shirt" → {man in a blue shirt, man}; "The Red_Dogs" → {red dogs, red dog, dogs, dog}.
    Two phrases are variants of each other when their sets intersect.
    """
    key = clean_phrase(text)
    head = cut_at_preposition(key.split())
    if not head:
        return frozenset({key}) if key else frozenset()
    noun = head[-1]
    return frozenset({key, " ".join(head), " ".join([*head[:-1], singular(noun)]), noun, singular(noun)})


def swap_left_right(text: str) -> str:
    """Swap "left" and "right" (and "-most"), keeping the case, so a phrase still describes its flipped
    image (MDETR and GLIP swap them when they flip grounding images)."""

    def swap(m: re.Match) -> str:
        word = m.group(1)
        other = "right" if word.lower() == "left" else "left"
        if word.isupper():
            other = other.upper()
        elif word[0].isupper():
            other = other.capitalize()
        return other + (m.group(2) or "")

    return _SIDES.sub(swap, text)
