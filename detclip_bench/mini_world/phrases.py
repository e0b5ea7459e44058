"""Caption text with exact character spans: alt-text (CC), GQA-style and Flickr-style sentences.

Text is built piece by piece by :class:`SpanText`, so every phrase span is exact by construction
(``caption[start:end]`` is the phrase), never found again by string search.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from detclip_bench.mini_world.scenes import SceneObject
from detclip_bench.mini_world.vocabulary import TEXTURE_WORDS, ConceptSpec

__all__ = [
    "SpanText",
    "alt_text",
    "distinct_concepts",
    "flickr_sentence",
    "gqa_caption",
    "group_by_concept",
    "noun_phrase",
]

_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
_COLOUR_WORDS = {"darkgreen": "dark green"}
_PREFIXES = (
    "",
    "",
    "stock photo of ",
    "close up of ",
    "a photo of ",
    "vector illustration of ",
    "picture of ",
    "macro shot of ",
    "royalty free image of ",
    "photograph of ",
)
_SUFFIXES = (
    "",
    "",
    " on a table",
    " on a wooden background",
    " isolated on white",
    " in the kitchen",
    " on the floor",
    " at home",
    " against a grey wall",
    " - stock image",
    " for sale",
    " | free download",
    " in the garden",
    ", close up",
    " on a plate",
    " on a sunny day",
)
_PLACES = ("on a table", "on the floor", "on a blanket", "near the wall", "in a pile", "on the ground")
_VERBS_ONE = ("lies", "sits", "rests", "is shown")
_VERBS_MANY = ("lie", "sit", "rest", "are shown")


@dataclass
class SpanText:
    """A string under construction that remembers where each phrase went."""

    parts: list[str] = field(default_factory=list)
    length: int = 0

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)

    def add_phrase(self, text: str) -> tuple[int, int]:
        start = self.length
        self.add(text)
        return (start, self.length)

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _attribute(rng: np.random.Generator, spec: ConceptSpec, objs: list[SceneObject], img_side: int) -> str:
    kind = rng.choice(4)
    if kind == 0:
        return _COLOUR_WORDS.get(spec.colour, spec.colour)
    if kind == 1 and TEXTURE_WORDS[spec.texture]:
        return TEXTURE_WORDS[spec.texture]
    if kind == 2 and len(objs) == 1:
        x0, y0, x1, y1 = objs[0].box
        side = max(x1 - x0, y1 - y0)
        return "small" if side < img_side * 0.2 else "big" if side > img_side * 0.32 else ""
    return ""


def noun_phrase(
    rng: np.random.Generator, spec: ConceptSpec, objs: list[SceneObject], img_side: int, definite: bool = False
) -> tuple[str, str]:
    """(determiner, core) for all instances of ``spec`` in the image, e.g. ("two", "striped bagels")."""
    attr = _attribute(rng, spec, objs, img_side)
    if len(objs) == 1:
        noun = spec.name
        det = "the" if definite else ("an" if (attr or noun)[0] in "aeiou" else "a")
    else:
        noun = spec.plural
        det = ("the " if definite else "") + (_NUMBERS.get(len(objs), "many") if rng.random() < 0.7 else "some")
        if definite and det.endswith("some"):
            det = "the"
    return det, f"{attr} {noun}" if attr else noun


def group_by_concept(objects: list[SceneObject]) -> dict[str, list[SceneObject]]:
    groups: dict[str, list[SceneObject]] = {}
    for o in objects:
        groups.setdefault(o.concept.name, []).append(o)
    return groups


def _join(out: SpanText, pieces: list[tuple[str, str]], include_det: bool) -> list[tuple[int, int]]:
    """Write ``pieces`` as "A, B and C"; return each phrase's span (with or without determiner)."""
    spans = []
    for i, (det, core) in enumerate(pieces):
        if i:
            out.add(" and " if i == len(pieces) - 1 else ", ")
        if include_det:
            spans.append(out.add_phrase(f"{det} {core}"))
        else:
            out.add(det + " ")
            spans.append(out.add_phrase(core))
    return spans


def alt_text(rng: np.random.Generator, objects: list[SceneObject], mention: list[str], img_side: int) -> str:
    """CC-style alt-text naming ``mention`` (some, never all, of the concepts present) plus clutter words."""
    groups = group_by_concept(objects)
    out = SpanText()
    out.add(str(rng.choice(_PREFIXES)))
    pieces = [noun_phrase(rng, groups[n][0].concept, groups[n], img_side) for n in mention]
    if len(pieces) == 2 and rng.random() < 0.4:
        out.add(
            f"{pieces[0][0]} {pieces[0][1]} {rng.choice(['with', 'next to', 'beside'])} {pieces[1][0]} {pieces[1][1]}"
        )
    else:
        _join(out, pieces, include_det=True)
    out.add(str(rng.choice(_SUFFIXES)))
    text = out.text.strip()
    return text[0].upper() + text[1:] if rng.random() < 0.5 else text


def _relation(a: SceneObject, b: SceneObject) -> str:
    ax, ay = (a.box[0] + a.box[2]) / 2, (a.box[1] + a.box[3]) / 2
    bx, by = (b.box[0] + b.box[2]) / 2, (b.box[1] + b.box[3]) / 2
    if abs(ax - bx) >= abs(ay - by):
        return "to the left of" if ax < bx else "to the right of"
    return "above" if ay < by else "below"


def gqa_caption(
    rng: np.random.Generator, objects: list[SceneObject], mention: list[str], img_side: int
) -> tuple[str, dict[str, list[tuple[int, int]]]]:
    """GQA-style: 1–3 short sentences/questions; a concept may be referred to more than once.

    Returns the caption and, per mentioned concept, every span that refers to it (spans exclude
    the determiner, as MDETR's GQA phrases do).
    """
    groups = group_by_concept(objects)
    out = SpanText()
    spans: dict[str, list[tuple[int, int]]] = {n: [] for n in mention}
    order = list(mention)
    while order:
        if out.length:
            out.add(" ")
        a = order.pop(0)
        det_a, core_a = noun_phrase(rng, groups[a][0].concept, groups[a], img_side, definite=True)
        if order and len(groups[a]) == 1 and len(groups[order[0]]) == 1 and rng.random() < 0.6:
            b = order.pop(0)
            _, core_b = noun_phrase(rng, groups[b][0].concept, groups[b], img_side, definite=True)
            out.add(det_a.capitalize() + " ")
            spans[a].append(out.add_phrase(core_a))
            out.add(f" is {_relation(groups[a][0], groups[b][0])} the ")
            spans[b].append(out.add_phrase(core_b))
            out.add(".")
            if rng.random() < 0.4:  # refer back to the first object: a second span for the same box
                out.add(" The ")
                spans[a].append(out.add_phrase(groups[a][0].concept.name))
                out.add(" is " + str(rng.choice(["clearly visible", "in the picture", "not small"])) + ".")
            continue
        single = len(groups[a]) == 1
        det_i, core_i = noun_phrase(rng, groups[a][0].concept, groups[a], img_side)
        if rng.random() < 0.3:
            out.add(f"Is there {det_i} " if single else "Are there ")
            spans[a].append(out.add_phrase(core_i))
            out.add("?")
        else:
            out.add(f"There {'is' if single else 'are'} {det_i} ")
            spans[a].append(out.add_phrase(core_i))
            out.add(" in the image.")
    return out.text, spans


def flickr_sentence(
    rng: np.random.Generator, objects: list[SceneObject], mention: list[str], img_side: int
) -> tuple[str, list[tuple[str, tuple[int, int]]]]:
    """Flickr30k-style sentence ending in " ." with one phrase (determiner included) per entity."""
    groups = group_by_concept(objects)
    out = SpanText()
    pieces = [noun_phrase(rng, groups[n][0].concept, groups[n], img_side) for n in mention]
    pieces[0] = (pieces[0][0].capitalize(), pieces[0][1])
    spans = _join(out, pieces, include_det=True)
    many = len(mention) > 1 or len(groups[mention[0]]) > 1
    out.add(f" {rng.choice(_VERBS_MANY if many else _VERBS_ONE)} {rng.choice(_PLACES)} .")
    return out.text, list(zip(mention, spans, strict=True))


def distinct_concepts(objects: list[SceneObject]) -> list[str]:
    return list(Counter(o.concept.name for o in objects))
