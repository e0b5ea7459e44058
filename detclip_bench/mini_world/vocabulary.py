"""The mini world's vocabulary: which concepts exist, what they look like, and who may box them.

Every concept is one visual signature (shape × colour × texture) with an English name and a
one-line definition of its appearance, so a sentence encoder prompted with ``"name, definition"``
has something meaningful to embed. The split into groups is what makes DetCLIPv2's data-ablation
claims (Tables 4–5) measurable on a CPU:

* ``detection``     — boxed in the O365-like detection set (and may appear in grounding data);
* ``grounding``     — boxed only in the GoldG-like grounding set, never in detection data;
* ``caption``       — never boxed anywhere in training; seen only in CC-like captions and as
                      IN1k-like class folders. LVIS-like eval covers them, so their zero-shot AP
                      can only rise through image-text / classification data.

The LVIS-like eval covers all three groups; r/c/f is *derived* from the generated training files
(see :func:`frequency_of`), so caption-only concepts always end up rare.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from detclip_bench.errors import DataError

__all__ = [
    "CONCEPTS",
    "GROUPS",
    "TEXTURE_WORDS",
    "VOCABULARY_FILE",
    "ConceptSpec",
    "FrequencyRule",
    "MiniVocabulary",
    "VocabularyEntry",
    "concepts_in",
    "frequency_of",
    "load_vocabulary",
    "vocabulary_split",
]

GROUPS = ("detection", "grounding", "caption")

# How a texture is said in a caption ("" = not mentioned).
TEXTURE_WORDS = {"solid": "", "stripes": "striped", "dots": "dotted", "checker": "checkered"}


@dataclass(frozen=True)
class ConceptSpec:
    """One concept: its look (shape, colours, texture), its words, and its training group."""

    name: str
    plural: str
    definition: str
    group: str
    shape: str
    colour: str
    secondary: str
    texture: str
    synonyms: tuple[str, ...] = ()
    o365_key: str = ""  # raw O365-style category string (with real-style quirks) for detection concepts
    weight: float = 1.0  # sampling weight: gives the long tail that r/c/f is derived from

    @property
    def signature(self) -> tuple[str, str, str]:
        return (self.shape, self.colour, self.texture)


def _c(name, plural, definition, group, shape, colour, secondary, texture, synonyms=(), key="", weight=1.0):
    return ConceptSpec(name, plural, definition, group, shape, colour, secondary, texture, tuple(synonyms), key, weight)


CONCEPTS: tuple[ConceptSpec, ...] = (
    # --- (a) boxed in detection data (O365-like); weights give a long tail -----------------------------
    _c(
        "tomato",
        "tomatoes",
        "a round ripe red fruit, drawn as a plain red disk",
        "detection",
        "disk",
        "red",
        "red",
        "solid",
        ["red tomato"],
        "Tomato",
        1.0,
    ),
    _c(
        "lime",
        "limes",
        "a small round green citrus fruit, a plain green disk",
        "detection",
        "disk",
        "green",
        "green",
        "solid",
        ["green lemon"],
        "Lime",
        0.9,
    ),
    _c(
        "tennis ball",
        "tennis balls",
        "a yellow ball covered with thin white stripes",
        "detection",
        "disk",
        "yellow",
        "white",
        "stripes",
        ["ball"],
        "Tennis",
        0.8,
    ),
    _c(
        "stop sign",
        "stop signs",
        "an eight-sided red traffic sign",
        "detection",
        "octagon",
        "red",
        "red",
        "solid",
        ["octagonal sign"],
        "Stop Sign",
        1.0,
    ),
    _c(
        "traffic cone",
        "traffic cones",
        "an orange cone striped with white bands",
        "detection",
        "triangle",
        "orange",
        "white",
        "stripes",
        ["pylon"],
        "Traffic cone/Pylon",
        1.0,
    ),
    _c(
        "dice",
        "dice",
        "a white cube marked with black dots",
        "detection",
        "square",
        "white",
        "black",
        "dots",
        ["die"],
        "Dice",
        0.7,
    ),
    _c(
        "chessboard",
        "chessboards",
        "a square board of black and white checks",
        "detection",
        "square",
        "black",
        "white",
        "checker",
        ["checkerboard"],
        "Chessboard ",
        0.6,
    ),
    _c(
        "brick",
        "bricks",
        "a long rectangular block of plain brown clay",
        "detection",
        "bar",
        "brown",
        "brown",
        "solid",
        ["clay brick"],
        "Brick",
        0.9,
    ),
    _c(
        "donut",
        "donuts",
        "a pink ring-shaped fried pastry with a hole in the middle",
        "detection",
        "ring",
        "pink",
        "pink",
        "solid",
        ["doughnut"],
        "Donnut",
        0.8,
    ),
    _c(
        "tire",
        "tires",
        "a black rubber ring, the wheel of a car",
        "detection",
        "ring",
        "black",
        "black",
        "solid",
        ["tyre", "wheel"],
        "Tire",
        0.7,
    ),
    _c(
        "sheriff badge",
        "sheriff badges",
        "a yellow five-pointed star badge",
        "detection",
        "star",
        "yellow",
        "yellow",
        "solid",
        ["star badge"],
        "Sheriff Badge",
        0.3,
    ),
    _c(
        "banana",
        "bananas",
        "a curved yellow fruit shaped like a crescent",
        "detection",
        "crescent",
        "yellow",
        "yellow",
        "solid",
        [],
        "Banana",
        1.0,
    ),
    _c("egg", "eggs", "a plain white oval egg", "detection", "ellipse", "white", "white", "solid", [], "Egg", 0.6),
    _c(
        "first aid sign",
        "first aid signs",
        "a red plus-shaped cross on a sign",
        "detection",
        "cross",
        "red",
        "red",
        "solid",
        ["red cross"],
        "First aid sign",
        0.3,
    ),
    _c(
        "honeycomb",
        "honeycombs",
        "a six-sided golden wax cell dotted with brown specks",
        "detection",
        "hexagon",
        "yellow",
        "brown",
        "dots",
        ["bee comb"],
        "Honeycomb",
        0.25,
    ),
    _c(
        "kite",
        "kites",
        "a diamond-shaped flying toy with red and yellow stripes",
        "detection",
        "diamond",
        "red",
        "yellow",
        "stripes",
        [],
        "Kite",
        0.35,
    ),
    # --- (b) boxed only in grounding data (GoldG-like) ------------------------------------------------
    _c(
        "beach ball",
        "beach balls",
        "a round inflatable ball with blue and white stripes",
        "grounding",
        "disk",
        "blue",
        "white",
        "stripes",
        ["inflatable ball"],
        weight=1.0,
    ),
    _c(
        "bumblebee",
        "bumblebees",
        "a plump oval insect with yellow and black stripes",
        "grounding",
        "ellipse",
        "yellow",
        "black",
        "stripes",
        ["bee"],
        weight=1.0,
    ),
    _c(
        "snowflake",
        "snowflakes",
        "a pale cyan star-shaped crystal of ice",
        "grounding",
        "star",
        "cyan",
        "cyan",
        "solid",
        ["ice crystal"],
        weight=0.1,
    ),
    _c(
        "gift box",
        "gift boxes",
        "a square present wrapped in purple and yellow striped paper",
        "grounding",
        "square",
        "purple",
        "yellow",
        "stripes",
        ["present"],
        weight=0.8,
    ),
    _c(
        "bagel",
        "bagels",
        "a brown bread ring dotted with white sesame seeds",
        "grounding",
        "ring",
        "brown",
        "white",
        "dots",
        [],
        weight=0.9,
    ),
    _c(
        "warning sign",
        "warning signs",
        "a yellow diamond-shaped road sign",
        "grounding",
        "diamond",
        "yellow",
        "yellow",
        "solid",
        ["road sign"],
        weight=0.7,
    ),
    _c(
        "chocolate bar",
        "chocolate bars",
        "a long brown bar divided into darker checked squares",
        "grounding",
        "bar",
        "brown",
        "black",
        "checker",
        ["candy bar"],
        weight=0.6,
    ),
    _c(
        "ladybug",
        "ladybugs",
        "a small red oval beetle with black spots",
        "grounding",
        "ellipse",
        "red",
        "black",
        "dots",
        ["ladybird"],
        weight=0.5,
    ),
    # --- (c) caption-only: never boxed in training; in CC captions and IN1k-like class folders --------
    _c(
        "watermelon",
        "watermelons",
        "a large round green melon with dark green stripes",
        "caption",
        "disk",
        "green",
        "darkgreen",
        "stripes",
        ["melon"],
    ),
    _c(
        "strawberry",
        "strawberries",
        "a red triangular berry dotted with yellow seeds",
        "caption",
        "triangle",
        "red",
        "yellow",
        "dots",
        ["berry"],
    ),
    _c(
        "pizza slice",
        "pizza slices",
        "an orange triangular slice of pizza with red pepperoni spots",
        "caption",
        "triangle",
        "orange",
        "red",
        "dots",
        ["slice of pizza"],
    ),
    _c(
        "crescent moon",
        "crescent moons",
        "a thin pale white crescent of the moon",
        "caption",
        "crescent",
        "white",
        "white",
        "solid",
        ["moon"],
    ),
    _c(
        "cookie",
        "cookies",
        "a round brown biscuit dotted with dark chocolate chips",
        "caption",
        "disk",
        "brown",
        "black",
        "dots",
        ["biscuit"],
    ),
    _c(
        "ruler",
        "rulers",
        "a long flat yellow strip marked with black lines",
        "caption",
        "bar",
        "yellow",
        "black",
        "stripes",
        ["measuring stick"],
    ),
    _c(
        "blueberry",
        "blueberries",
        "a small round plain dark blue berry",
        "caption",
        "disk",
        "blue",
        "blue",
        "solid",
        ["bilberry"],
    ),
    _c(
        "hex nut",
        "hex nuts",
        "a six-sided plain grey metal nut",
        "caption",
        "hexagon",
        "grey",
        "grey",
        "solid",
        ["nut"],
    ),
)


def concepts_in(group: str) -> tuple[ConceptSpec, ...]:
    if group not in GROUPS:
        raise ValueError(f"unknown concept group {group!r}; known: {', '.join(GROUPS)}")
    return tuple(c for c in CONCEPTS if c.group == group)


def vocabulary_split() -> dict[str, list[str]]:
    """Concept names per group, plus the LVIS-like eval vocabulary (all groups)."""
    split = {g: [c.name for c in concepts_in(g)] for g in GROUPS}
    split["lvis_eval"] = [c.name for c in CONCEPTS]
    return split


@dataclass(frozen=True)
class FrequencyRule:
    """LVIS's r/c/f rule, scaled to the mini world's size.

    LVIS: rare = 1–10 training images, common = 11–100, frequent = >100, out of ~100k images.
    The mini world has ~10³ training images, so the cut-offs are fractions of the training-image
    count: rare ≤ 1 %, common ≤ 10 %, frequent above. Zero images is rare (caption-only concepts).
    """

    rare_fraction: float = 0.01
    common_fraction: float = 0.10

    def thresholds(self, n_train_images: int) -> tuple[int, int]:
        return int(self.rare_fraction * n_train_images), int(self.common_fraction * n_train_images)


def frequency_of(image_count: int, n_train_images: int, rule: FrequencyRule = FrequencyRule()) -> str:
    rare_max, common_max = rule.thresholds(n_train_images)
    if image_count <= rare_max:
        return "r"
    return "c" if image_count <= common_max else "f"


@dataclass(frozen=True)
class VocabularyEntry:
    """A concept as written to ``vocabulary.json``, with the counts measured on the generated files."""

    name: str
    definition: str
    group: str
    synonyms: list[str]
    train_image_count: int
    train_instance_count: int
    frequency: str

    def prompt(self) -> str:
        return f"{self.name}, {self.definition}"


@dataclass(frozen=True)
class MiniVocabulary:
    concepts: list[VocabularyEntry]
    odinw: dict[str, list[dict]]
    n_train_images: int
    thresholds: dict[str, int]

    def names(self, group: str | None = None) -> list[str]:
        return [c.name for c in self.concepts if group is None or c.group == group]

    def split(self) -> dict[str, list[str]]:
        out = {g: self.names(g) for g in GROUPS}
        out["lvis_eval"] = self.names()
        return out

    def to_json(self) -> dict:
        return {
            "n_train_images": self.n_train_images,
            "frequency_thresholds": self.thresholds,
            "concepts": [asdict(c) for c in self.concepts],
            "odinw": self.odinw,
        }


VOCABULARY_FILE = "vocabulary.json"


def load_vocabulary(out_dir: str | os.PathLike) -> MiniVocabulary:
    """Read the vocabulary (with measured counts and r/c/f) that :func:`generate` wrote."""
    path = Path(out_dir) / VOCABULARY_FILE
    if not path.is_file():
        raise DataError(str(path), "-", "no vocabulary.json: is this a mini world made by `data make-mini`?")
    try:
        raw = json.loads(path.read_text())
        entries = [VocabularyEntry(**c) for c in raw["concepts"]]
        return MiniVocabulary(entries, raw["odinw"], raw["n_train_images"], raw["frequency_thresholds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(str(path), "-", f"malformed vocabulary file: {exc}") from exc


def concept_groups(root: str | os.PathLike) -> dict[str, str]:
    """A mini world's category name as its suites spell it (``_`` for spaces) -> its concept group
    (detection / grounding / caption-only); {} for a folder that is not a mini world."""
    path = Path(root) / VOCABULARY_FILE
    if not path.is_file():
        return {}
    return {c["name"].replace(" ", "_"): c["group"] for c in json.loads(path.read_text()).get("concepts", [])}


def category_groups(root: str | os.PathLike, category_names: dict[int, str]) -> dict[str, list[int]]:
    """Concept group -> the category ids (of ``category_names``, id -> name) in it; {} outside a mini world."""
    group = concept_groups(root)
    out: dict[str, list[int]] = {}
    for cid, name in category_names.items():
        if name in group:
            out.setdefault(group[name], []).append(int(cid))
    return out
