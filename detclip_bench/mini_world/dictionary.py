"""The mini world's *training* concept dictionary (``concept_dictionary.json``, the flat ``{name: definition}``
layout that ``detclip-bench data make-dictionary`` writes for the full recipes).

It holds every mini-world concept (names and synonyms, with the vocabulary's definitions) and a hundred
everyday objects that no mini-world image draws, glossed in a line each, as WordNet would. So the mini
recipes use a dictionary exactly as the full ones do: grounding images sample their M = 100 negatives from
it, and caption noun phrases are kept only when it knows them (docs/concept_dictionary.md). The
evaluation vocabulary stays ``vocabulary.json``.
"""

from __future__ import annotations

from detclip_bench.mini_world.vocabulary import CONCEPTS

__all__ = ["DICTIONARY_FILE", "DISTRACTORS", "training_dictionary"]

DICTIONARY_FILE = "concept_dictionary.json"

#: objects absent from every mini-world image: name -> a one-line gloss
DISTRACTORS: dict[str, str] = {
    "apple": "a round fruit with red or green skin",
    "armchair": "a chair with supports for the arms",
    "axe": "a tool with a heavy bladed head on a handle",
    "backpack": "a bag carried on the back",
    "balloon": "a thin rubber bag filled with air",
    "barrel": "a round wooden container with flat ends",
    "basket": "a container woven from strips of cane",
    "bathtub": "a large open container for bathing",
    "bell": "a hollow metal device that rings when struck",
    "bench": "a long seat for several people",
    "bicycle": "a two-wheeled vehicle moved by pedals",
    "binoculars": "an optical instrument for both eyes",
    "blanket": "a large piece of woven cloth used as a cover",
    "boat": "a small vessel for travel on water",
    "book": "a written work bound between covers",
    "boot": "footwear that covers the foot and ankle",
    "bottle": "a glass or plastic vessel with a narrow neck",
    "bowl": "a round dish open at the top",
    "bucket": "a round open container with a handle",
    "butterfly": "an insect with large colourful wings",
    "cabbage": "a leafy green vegetable with a round head",
    "cactus": "a spiny plant of dry regions",
    "camera": "equipment for taking photographs",
    "candle": "a stick of wax with a central wick",
    "car": "a motor vehicle with four wheels",
    "carrot": "an orange root eaten as a vegetable",
    "cat": "a small domesticated feline",
    "chair": "a seat for one person, with a back",
    "clock": "an instrument that shows the time",
    "cow": "a mature female of domestic cattle",
    "crab": "a decapod with a broad flat shell",
    "cup": "a small open container for drinking",
    "curtain": "a piece of cloth hung at a window",
    "deer": "a hoofed grazing animal with antlers",
    "desk": "a piece of furniture with a writing surface",
    "dog": "a domesticated canine",
    "drum": "a percussion instrument with a stretched skin",
    "duck": "a small wild or domestic swimming bird",
    "elephant": "a very large mammal with a trunk",
    "envelope": "a flat paper container for a letter",
    "fan": "a device that moves air",
    "feather": "one of the light growths covering a bird",
    "fence": "a barrier that encloses an area",
    "fish": "a cold-blooded aquatic vertebrate",
    "flag": "a piece of cloth with an emblem",
    "flower pot": "a container in which plants are grown",
    "fork": "a utensil with prongs",
    "frog": "a tailless amphibian with long hind limbs",
    "glove": "a covering for the hand",
    "goat": "a horned ruminant mammal",
    "guitar": "a stringed instrument with a flat body",
    "hammer": "a hand tool with a heavy head",
    "hat": "a covering for the head",
    "helmet": "armour for the head",
    "horse": "a large hoofed mammal used for riding",
    "kettle": "a metal pot for boiling water",
    "key": "a metal device that opens a lock",
    "knife": "an edge tool used for cutting",
    "ladder": "steps between two long side pieces",
    "lamp": "a piece of furniture that gives light",
    "laptop": "a portable computer",
    "leaf": "the flat green part of a plant",
    "lemon": "a yellow oval citrus fruit",
    "lighthouse": "a tower with a light that guides ships",
    "lion": "a large tawny cat of Africa",
    "lock": "a fastener opened with a key",
    "mailbox": "a box for the delivery of letters",
    "mirror": "a polished surface that reflects images",
    "mushroom": "a fleshy fungus with a cap",
    "necklace": "jewellery worn around the neck",
    "onion": "a bulb with a pungent taste",
    "orange": "a round orange citrus fruit",
    "owl": "a nocturnal bird of prey",
    "paintbrush": "a brush used to apply paint",
    "pear": "a sweet fruit narrowing at the stalk",
    "pencil": "a thin writing tool with a graphite core",
    "piano": "a keyboard instrument with strings",
    "pillow": "a cushion to support the head",
    "pineapple": "a large tropical fruit with a spiky crown",
    "plate": "a flat dish for serving food",
    "potato": "an edible starchy tuber",
    "rabbit": "a burrowing mammal with long ears",
    "remote control": "a device that controls a machine from a distance",
    "ring": "jewellery worn on a finger",
    "rope": "a strong line of twisted fibres",
    "sandal": "a shoe held to the foot by straps",
    "saw": "a hand tool with a toothed blade",
    "scissors": "a cutting tool with two crossed blades",
    "sheep": "a woolly ruminant mammal",
    "shell": "the hard outer covering of a sea animal",
    "shoe": "footwear shaped to fit the foot",
    "snail": "a slow mollusc with a spiral shell",
    "sofa": "an upholstered seat for more than one person",
    "spoon": "a utensil with a shallow bowl",
    "suitcase": "a portable case for clothes",
    "sunflower": "a tall plant with a large yellow flower head",
    "teapot": "a pot for brewing tea",
    "telephone": "an instrument for talking at a distance",
    "toothbrush": "a small brush for cleaning teeth",
    "towel": "a piece of cloth for drying",
    "tractor": "a vehicle for pulling farm machinery",
    "train": "a line of connected railway carriages",
    "tree": "a tall perennial woody plant",
    "truck": "a motor vehicle for carrying goods",
    "umbrella": "a folding canopy against rain",
    "vase": "an open jar for flowers",
    "violin": "a bowed stringed instrument",
    "wallet": "a pocket case for money",
    "whistle": "a small device that makes a shrill sound",
    "zebra": "an African equine with black and white stripes",
}


def training_dictionary() -> dict[str, str]:
    """Every concept name and synonym with its definition, then the distractors (no name twice)."""
    out: dict[str, str] = {}
    for concept in CONCEPTS:
        for name in (concept.name, *concept.synonyms):
            out.setdefault(name, concept.definition)
    clash = sorted(set(out) & set(DISTRACTORS))
    if clash:  # a distractor that the world draws would be a false negative on every image that shows it
        raise ValueError(f"distractors name mini-world concepts: {clash}")
    out.update(DISTRACTORS)
    return out
