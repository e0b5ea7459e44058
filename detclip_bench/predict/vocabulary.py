"""What a model is asked for: prompts from the command line, vocabulary files and suites.

The bottom of prediction: :mod:`detclip_bench.suites` (a ``--dataset`` suite's ``prompts``), the ``predict`` and
``export`` verbs and the suite runner all take their prompts from here, so a vocabulary is read one way. It
imports no suite code: a suite and its targets come in as objects (``suite.prompt_style``, ``target.open()``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from detclip_bench.errors import DataError

if TYPE_CHECKING:
    from detclip_bench.schema import Concept
    from detclip_bench.suites.suite import Suite

__all__ = [
    "Vocabulary",
    "parse_prompts",
    "prompts_for",
    "read_vocab",
    "suite_union_vocabulary",
    "suite_vocabulary",
]


@dataclass(frozen=True)
class Vocabulary:
    """What the model is asked for: the texts it sees, the category id each maps to, and a display name."""

    prompts: tuple[str, ...]
    category_ids: tuple[int, ...]
    names: tuple[str, ...]  # for inputs.json and the drawn labels (a suite's "name", not "name, definition")
    source: str = "--prompts"

    def __post_init__(self) -> None:
        if not self.prompts:
            raise DataError(self.source, "-", "no prompts: give at least one category to detect")
        if not (len(self.prompts) == len(self.category_ids) == len(self.names)):
            raise ValueError("prompts, category ids and names must have the same length")
        dup = [i for i, n in Counter(self.category_ids).items() if n > 1]
        if dup:
            raise DataError(self.source, "categories", f"category id {dup[0]} is used twice")

    @classmethod
    def from_prompts(cls, prompts: Sequence[str], source: str = "--prompts") -> Vocabulary:
        """Free-text prompts: category ids ``1..K`` in prompt order (duplicates are an error)."""
        prompts = tuple(_check_unique([" ".join(str(p).split()) for p in prompts], source))
        return cls(prompts, tuple(range(1, len(prompts) + 1)), prompts, source)


def _check_unique(prompts: list[str], source: str) -> list[str]:
    seen: dict[str, str] = {}
    for p in prompts:
        key = p.casefold()
        if key in seen:
            same = f"{p!r}" if seen[key] == p else f"{seen[key]!r} and {p!r}"
            raise DataError(source, p, f"duplicate prompt {same}: each category must be asked for once")
        seen[key] = p
    return prompts


def parse_prompts(text: str) -> Vocabulary:
    """``"cat, red apple, ..."`` → a vocabulary: split on commas, whitespace stripped, empty items dropped;
    a prompt given twice (ignoring case) is a :class:`DataError`."""
    items = [" ".join(p.split()) for p in str(text).split(",")]
    return Vocabulary.from_prompts([p for p in items if p], "--prompts")


def read_vocab(path: str | os.PathLike) -> Vocabulary:
    """A vocabulary file: plain text (one prompt per line; blank lines and ``#`` comments ignored), a JSON
    list of prompts, or a COCO/LVIS json (its ``categories``, or a bare list of ``{id, name}``).

    From a json's categories: the ids are kept, categories in id order, Roboflow's root category (id 0,
    ``supercategory: "none"``, as ODinW exports carry) dropped, and the prompt is the category name —
    LVIS names with ``_`` as spaces (``bat_(animal)`` → ``"bat (animal)"``), the way the LVIS loader
    names concepts (use ``--suite`` for the suites' exact ``"name, definition"`` prompts).
    """
    from detclip_bench.io import read_json

    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            source, "-", f"cannot read the vocabulary file: {getattr(exc, 'strerror', None) or exc}"
        ) from exc
    if path.suffix.lower() != ".json" and text.lstrip()[:1] not in ("[", "{"):
        lines = [" ".join(line.split()) for line in text.splitlines()]
        return Vocabulary.from_prompts([ln for ln in lines if ln and not ln.startswith("#")], source)
    data = read_json(path)
    if isinstance(data, dict):
        if not isinstance(data.get("categories"), list):
            raise DataError(source, "-", "a JSON vocabulary must be a list of prompts or have a 'categories' list")
        return _from_categories(data["categories"], source)
    if isinstance(data, list) and data and all(isinstance(c, dict) for c in data):
        return _from_categories(data, source)
    if isinstance(data, list) and all(isinstance(p, str) for p in data):
        return Vocabulary.from_prompts([p for p in (" ".join(p.split()) for p in data) if p], source)
    raise DataError(
        source,
        "-",
        "a JSON vocabulary must be a list of strings, a list of {id, name} categories, "
        "or a COCO/LVIS json with 'categories'",
    )


def _from_categories(cats: list, source: str) -> Vocabulary:
    from detclip_bench.datasets.lvis import clean_lvis_name
    from detclip_bench.datasets.odinw import _is_root_category

    for j, c in enumerate(cats):
        if (
            not isinstance(c, dict)
            or not isinstance(c.get("id"), int)
            or isinstance(c.get("id"), bool)
            or not isinstance(c.get("name"), str)
        ):
            raise DataError(source, f"categories[{j}]", f"a category needs an integer 'id' and a string 'name': {c!r}")
    cats = sorted((c for c in cats if not _is_root_category(c, cats)), key=lambda c: c["id"])
    lvis = any(k in c for c in cats for k in ("def", "synset", "frequency"))
    prompts = [clean_lvis_name(c["name"]) if lvis else " ".join(c["name"].split()) for c in cats]
    _check_unique(prompts, source)
    return Vocabulary(tuple(prompts), tuple(int(c["id"]) for c in cats), tuple(str(c["name"]) for c in cats), source)


# ---- suites ------------------------------------------------------------------------------------------------


def prompts_for(suite: Suite, vocabulary: Sequence[Concept]) -> list[str]:
    """The exact texts the model sees: 'name, definition' for LVIS, the suite's names verbatim for ODinW."""
    if suite.prompt_style == "name-definition":
        return [c.prompt() for c in vocabulary]
    return [c.name for c in vocabulary]


def _member_concepts(suite: Suite, root, *, first_only: bool):
    """``(target, concepts, prompts)`` per member (or the first), read from each annotation file under ``root``."""
    targets = suite.targets(root)
    for target in targets[:1] if first_only else targets:
        if not target.annotations.is_file():
            hint = suite.download or "see README 'Data layout'"
            raise DataError(
                str(target.annotations),
                target.member,
                f"the suite's annotation file (its vocabulary) is missing; pass --data-root. How to get it: {hint}",
            )
        concepts = tuple(target.open().vocabulary())
        yield target, concepts, prompts_for(suite, concepts)


def suite_vocabulary(suite: Suite, root) -> Vocabulary:
    """A suite's vocabulary, exactly as its runner prompts it (:func:`prompts_for`), read from its first member's
    annotation file under the data root ``root`` (:func:`~detclip_bench.suites.resolve_data_root`)."""
    ((target, concepts, prompts),) = _member_concepts(suite, root, first_only=True)
    return Vocabulary(
        tuple(prompts),
        tuple(int(c.category_id) for c in concepts),
        tuple(c.name for c in concepts),
        f"suite {suite.name} ({target.annotations})",
    )


def suite_union_vocabulary(suite: Suite, root) -> tuple[Vocabulary, dict[str, list[str]]]:
    """The union of a suite's prompts over its members, first seen first, and each member's own prompt list.

    Category ids are the suite's own when it has one member, else 1..K over the union."""
    members: dict[str, list[str]] = {}
    union: dict[str, tuple[int, str]] = {}
    for target, concepts, prompts in _member_concepts(suite, root, first_only=False):
        members[target.member] = prompts
        for p, c in zip(prompts, concepts, strict=True):
            union.setdefault(p, (c.category_id, c.name))
    prompts = list(union)
    ids = [union[p][0] for p in prompts] if len(members) == 1 else list(range(1, len(prompts) + 1))
    vocab = Vocabulary(tuple(prompts), tuple(ids), tuple(union[p][1] for p in prompts), f"suite {suite.name} ({root})")
    return vocab, members
