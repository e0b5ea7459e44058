"""The mini world: a seeded, generated universe of small datasets in the *real* on-disk formats.

O365 v2, MDETR GoldG, CC TSV + img2dataset (webdataset and parquet), ImageNet class folders,
LVIS v1 (val + minival) and the 13 ODinW13 Roboflow exports — rendered scenes a tiny detector can
learn on a CPU, with a vocabulary split that makes the paper's data ablations measurable.
See ``docs/mini_world.md``.
"""

from detclip_bench.mini_world.generate import MANIFEST_FILE, generate
from detclip_bench.mini_world.render import Difficulty
from detclip_bench.mini_world.vocabulary import (
    CONCEPTS,
    FrequencyRule,
    MiniVocabulary,
    frequency_of,
    load_vocabulary,
    vocabulary_split,
)

__all__ = [
    "CONCEPTS",
    "MANIFEST_FILE",
    "Difficulty",
    "FrequencyRule",
    "MiniVocabulary",
    "frequency_of",
    "generate",
    "load_vocabulary",
    "vocabulary_split",
]
