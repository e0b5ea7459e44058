"""ODinW: Roboflow COCO exports, and the ODinW13 manifest (GLIP ``configs/odinw_13``; eval.md §3.1).

Roboflow prepends a synthetic root category ``{"id": 0, "name": <project>, "supercategory":
"none"}``; GLIP's ``annotations_without_background.json`` is the same file with it deleted. The
loader accepts both (the root is dropped when present; an annotation that uses it is a
DataError). ``path`` may be the json or a split folder holding one of those files.

:data:`ODINW13` is the single source of truth for the 13 datasets (folder variants with spaces,
class names verbatim as GLIP's OVERRIDE_CATEGORY, ``mini_val`` for EgoHands/Vehicles,
PascalVOC test = valid, pistols' flat layout); the suites layer imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from detclip_bench.datasets.coco import CocoDetection
from detclip_bench.errors import DataError, UnknownNameError
from detclip_bench.schema import Concept

__all__ = ["EXPORT_SPLIT_FOLDERS", "ODINW13", "ODINW13_BY_NAME", "OdinwMember", "RoboflowCoco", "export_splits"]

ANNOTATION_NAMES = ("annotations_without_background.json", "_annotations.coco.json")
# One export folder's rules, shared by `eval --dataset` and `data validate` so both accept the same folders:
# split -> the folder names Roboflow, GLIP and hand-made exports use for it (preferred first), and the
# annotation file names (Roboflow's own first: a folder holding both is read as Roboflow exported it).
EXPORT_SPLIT_FOLDERS = {"train": ("train",), "val": ("valid", "val", "mini_val"), "test": ("test",)}
EXPORT_ANNOTATION_NAMES = ("_annotations.coco.json", "annotations_without_background.json")


def export_splits(root) -> dict[str, tuple[Path, Path]]:
    """``split -> (annotation json, image folder)`` of a Roboflow/COCO export folder (empty: not one)."""
    root = Path(root)
    files = {}
    for split, folders in EXPORT_SPLIT_FOLDERS.items():
        for folder in folders:
            found = [root / folder / n for n in EXPORT_ANNOTATION_NAMES if (root / folder / n).is_file()]
            if found:
                files[split] = (found[0], root / folder)
                break
    return files


def _is_root_category(cat: dict, cats: list[dict]) -> bool:
    if int(cat["id"]) != 0:
        return False
    return cat.get("supercategory") == "none" or any(c.get("supercategory") == cat.get("name") for c in cats)


class RoboflowCoco(CocoDetection):
    """A Roboflow COCO export, as ODinW ships it (format ``odinw``) → DETECTION samples.

    On disk: ``_annotations.coco.json`` (with Roboflow's synthetic root category id 0) or GLIP's
    ``annotations_without_background.json`` (without it), images beside it in the split folder.
    ``path`` may be the json or that split folder. The root category is dropped; an annotation
    using it is a :class:`~detclip_bench.errors.DataError`.

    Samples are filled as by :class:`CocoDetection`. With ``class_names`` (GLIP's override, as the
    ODinW13 suites pass it), ``Concept.name`` is the given name of each category in id order, while
    ``key`` and ``category_id`` stay the file's.

    Args:
        path: the annotation json, or a split folder holding one of the two file names.
        class_names: the category names to prompt with, one per non-root category in id order
            (a count mismatch is a DataError); None keeps the file's names.
        image_root, cache, check_images, skip_log: as for :class:`CocoDetection` (``image_root``
            defaults to the json's folder).
    """

    format_name = "odinw"

    def __init__(self, path, *, class_names: tuple[str, ...] | None = None, **options) -> None:
        path = Path(path)
        if path.is_dir():
            found = [path / n for n in ANNOTATION_NAMES if (path / n).is_file()]
            if not found:
                raise DataError(
                    str(path), "-", f"no ODinW annotation file here (looked for {', '.join(ANNOTATION_NAMES)})"
                )
            path = found[0]
        self.class_names = tuple(class_names) if class_names else None
        super().__init__(path, **options)

    def filter_categories(self, cats: list[dict]) -> list[dict]:
        roots = [c for c in cats if _is_root_category(c, cats)]
        if roots:
            used = self.index.a["ann_cat"] == 0
            if used.any():
                j = int(self.index.a["ann_id"][used.argmax()])
                raise DataError(str(self.path), f"annotation {j}", "uses the Roboflow super-category id 0")
        kept = [c for c in cats if not _is_root_category(c, cats)]
        if self.class_names is not None and len(self.class_names) != len(kept):
            raise DataError(
                str(self.path),
                "categories",
                f"{len(kept)} categories in the file but {len(self.class_names)} expected: {self.class_names}",
            )
        return kept

    def make_concept(self, cat: dict) -> Concept:
        concept = super().make_concept(cat)
        if self.class_names is None:
            return concept
        # GLIP OVERRIDE_CATEGORY: names from the config (in id order), ids and raw key from the file
        pos = [int(c["id"]) for c in self.categories].index(int(cat["id"]))
        return Concept(name=self.class_names[pos], key=concept.key, category_id=concept.category_id)


@dataclass(frozen=True)
class OdinwMember:
    """One ODinW13 dataset: where its files are under an ``odinw/`` root and what its classes are."""

    name: str
    subdir: str  # under the odinw root, exactly GLIP's folder (spaces included)
    classes: tuple[str, ...]
    val_split: str = "valid"  # folder evaluated during training (GLIP DATASETS.TEST)
    test_split: str = "test"  # folder of the reported test number
    flat: bool = False  # pistols: {train,val,test}_annotations_without_background.json in subdir

    def _folder(self, split: str) -> str:
        folders = {"train": "train", "val": self.val_split, "test": self.test_split}
        if split not in folders:
            raise UnknownNameError("ODinW split", repr(split), ("train", "val", "test"))
        return folders[split]

    def candidates(self, split: str) -> list[tuple[str, str]]:
        """(annotation file, image dir) pairs relative to the root, in order of preference."""
        folder = self._folder(split)
        base = self.subdir
        out = []
        if self.flat:  # GLIP's pistols, also mmdetection 3.3.0's configs; split folders (below) as a fallback
            out.append((f"{base}/{split}_annotations_without_background.json", base))
        out += [(f"{base}/{folder}/{n}", f"{base}/{folder}") for n in ANNOTATION_NAMES]
        return out

    def resolve(self, root, split: str) -> tuple[Path, Path]:
        """The annotation json and image folder of ``split``; DataError listing what was tried."""
        root = Path(root)
        for ann, img in self.candidates(split):
            if (root / ann).is_file() and (root / img).is_dir():
                return root / ann, root / img
        tried = "\n".join(f"  {root / a}" for a, _ in self.candidates(split))
        raise DataError(
            str(root),
            f"{self.name} [{split}]",
            f"ODinW files missing; looked for:\n{tried}\nGet them with `detclip-bench data download odinw13 --data-root DATA_ROOT` "
            "(GLIP's odinw_35 zips, unzipped into DATA_ROOT/odinw/).",
        )

    def open(self, root, split: str, **options) -> RoboflowCoco:
        ann, img = self.resolve(root, split)
        return RoboflowCoco(ann, image_root=img, class_names=self.classes, **options)


_VOC = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)

ODINW13: tuple[OdinwMember, ...] = (
    OdinwMember("AerialMaritimeDrone", "AerialMaritimeDrone/large", ("boat", "car", "dock", "jetski", "lift")),
    OdinwMember(
        "Aquarium",
        "Aquarium/Aquarium Combined.v2-raw-1024.coco",
        ("fish", "jellyfish", "penguin", "puffin", "shark", "starfish", "stingray"),
    ),
    OdinwMember("CottontailRabbits", "CottontailRabbits", ("Cottontail-Rabbit",)),
    OdinwMember("EgoHands", "EgoHands/generic", ("hand",), val_split="mini_val"),
    OdinwMember(
        "NorthAmericaMushrooms",
        "NorthAmericaMushrooms/North American Mushrooms.v1-416x416.coco",
        ("CoW", "chanterelle"),
    ),
    OdinwMember("Packages", "Packages/Raw", ("package",)),
    OdinwMember("PascalVOC", "PascalVOC", _VOC, test_split="valid"),
    OdinwMember("pistols", "pistols/export", ("pistol",), flat=True),
    OdinwMember("pothole", "pothole", ("pothole",)),
    OdinwMember("Raccoon", "Raccoon/Raccoon.v2-raw.coco", ("raccoon",)),
    OdinwMember("ShellfishOpenImages", "ShellfishOpenImages/raw", ("Crab", "Lobster", "Shrimp")),
    OdinwMember("thermalDogsAndPeople", "thermalDogsAndPeople", ("dog", "person")),
    OdinwMember(
        "VehiclesOpenImages",
        "VehiclesOpenImages/416x416",
        ("Ambulance", "Bus", "Car", "Motorcycle", "Truck"),
        val_split="mini_val",
    ),
)
ODINW13_BY_NAME: dict[str, OdinwMember] = {m.name: m for m in ODINW13}
