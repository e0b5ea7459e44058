"""ODinW13-like suite: 13 tiny Roboflow COCO exports with GLIP's exact folder layout.

Each member keeps the real dataset's sub-path (spaces included) and class names (eval.md §3.1) but
is its own visual domain (palette, background pattern, image size; thermal colour map for
``thermalDogsAndPeople``). Per split folder: Roboflow's ``_annotations.coco.json`` (with the id-0
supercategory class) and GLIP's ``annotations_without_background.json`` beside the images.
Variants: ``mini_val/`` for EgoHands and Vehicles; PascalVOC has no ``test/`` (GLIP evaluates
test on the valid file); pistols is GLIP's flat ``export/`` with
``{train,val,test}_annotations_without_background.json``. Folders, classes and variants come from the
loader's table (:data:`detclip_bench.datasets.odinw.ODINW13`); this module adds only how each one looks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from detclip_bench.datasets.odinw import ODINW13 as DATASET_ODINW13
from detclip_bench.datasets.odinw import OdinwMember
from detclip_bench.io import atomic_write_json
from detclip_bench.mini_world.render import COLOURS, SHAPES, TEXTURES, Difficulty, Domain, Look, render_scene
from detclip_bench.mini_world.scenes import PartOutput, coco_box, part_rng, scaled, write_jpeg
from detclip_bench.mini_world.vocabulary import TEXTURE_WORDS

__all__ = ["ODINW13", "MiniOdinwMember", "class_looks", "write_odinw"]

BASE_SPLIT_SIZES = {"train": 24, "valid": 8, "test": 8}


@dataclass(frozen=True)
class MiniOdinwMember:
    """An ODinW13 dataset of :data:`detclip_bench.datasets.odinw.ODINW13` (folder, classes, split variants: the
    one table) with the look the mini world renders it in."""

    member: OdinwMember
    domain: Domain
    colours: tuple[str, ...]  # object palette of the domain
    size: tuple[int, int]  # (min side, max side) of images
    max_objects: int = 4

    @property
    def name(self) -> str:
        return self.member.name

    @property
    def sub_path(self) -> str:
        return self.member.subdir

    @property
    def classes(self) -> tuple[str, ...]:
        return self.member.classes

    @property
    def layout(self) -> str:
        """``roboflow``; ``no_test`` (PascalVOC: test is the valid file); ``flat`` (GLIP's pistols)."""
        return "flat" if self.member.flat else "no_test" if self.member.test_split == "valid" else "roboflow"

    @property
    def mini_val(self) -> bool:
        return self.member.val_split == "mini_val"

    @property
    def project(self) -> str:
        return self.name.lower()


def _d(name, bg, pattern="grain", thermal=False):
    return Domain(name, background=bg, pattern=pattern, thermal=thermal)


# name -> (domain, object palette, (min side, max side), max objects per image)
_LOOKS: dict[str, tuple[Domain, tuple[str, ...], tuple[int, int], int]] = {
    "AerialMaritimeDrone": (
        _d("sea", ("#2f6f8f", "#3d8a9e", "#276076"), "waves"),
        ("white", "red", "brown", "yellow", "grey"),
        (160, 192),
        6,
    ),
    "Aquarium": (
        _d("aquarium", ("#0d3b66", "#145c8a", "#0b2e4f"), "waves"),
        ("orange", "pink", "black", "white", "grey", "red", "brown"),
        (128, 160),
        6,
    ),
    "CottontailRabbits": (_d("meadow", ("#5d8c3a", "#79a64d", "#4a7330")), ("brown",), (128, 128), 2),
    "EgoHands": (_d("tabletop", ("#8a7560", "#a38d74", "#6e5d4c"), "planks"), ("pink",), (160, 160), 4),
    "NorthAmericaMushrooms": (
        _d("forest floor", ("#4b3621", "#5e4630", "#3a2a1a")),
        ("white", "orange"),
        (128, 128),
        4,
    ),
    "Packages": (_d("doorstep", ("#9a9a96", "#b0afa8", "#85847f"), "tiles"), ("brown",), (144, 144), 2),
    "PascalVOC": (
        _d("everyday", ("#d7d0c0", "#a9b8c6", "#c3cfae", "#d9c2b5")),
        ("red", "blue", "green", "yellow", "purple", "orange", "black", "white", "brown", "cyan"),
        (160, 192),
        5,
    ),
    "pistols": (_d("studio", ("#e6e6e6", "#d0d0d0", "#f2f2f2")), ("black",), (128, 128), 2),
    "pothole": (_d("asphalt", ("#3c3c3c", "#4a4a48", "#2e2e2e")), ("black",), (160, 160), 3),
    "Raccoon": (_d("woods", ("#2f4f2f", "#3e5e35", "#253d25")), ("grey",), (128, 128), 2),
    "ShellfishOpenImages": (_d("sand", ("#d8c39a", "#c9b084", "#e3d2ad")), ("red", "orange", "pink"), (128, 160), 4),
    "thermalDogsAndPeople": (
        _d("thermal", ("#202020", "#303030", "#181818"), thermal=True),
        ("white", "grey"),
        (96, 128),
        4,
    ),
    "VehiclesOpenImages": (
        _d("road", ("#5a5a5a", "#6b6b68", "#4d4d4b"), "tiles"),
        ("white", "yellow", "blue", "red", "green"),
        (96, 96),
        4,
    ),
}

#: the 13 datasets in the loader's order (the order seeds each member's random stream)
ODINW13: tuple[MiniOdinwMember, ...] = tuple(MiniOdinwMember(m, *_LOOKS[m.name]) for m in DATASET_ODINW13)


def class_looks(member: MiniOdinwMember) -> list[Look]:
    """Distinct looks within a member: shapes cycle first, then textures, colours from the palette."""
    offset = sum(map(ord, member.name)) % len(SHAPES)
    looks = []
    for j, _ in enumerate(member.classes):
        shape = SHAPES[(offset + j) % len(SHAPES)]
        texture = TEXTURES[(j // len(SHAPES) + offset) % len(TEXTURES)]
        colour = member.colours[j % len(member.colours)]
        secondary = "black" if colour != "black" else "white"
        looks.append(Look(shape, colour, secondary, texture))
    return looks


def class_definitions(member: MiniOdinwMember) -> list[dict]:
    out = []
    for name, look in zip(member.classes, class_looks(member), strict=True):
        tex = TEXTURE_WORDS[look.texture]
        words = " ".join(w for w in (look.colour if look.colour in COLOURS else "", tex, look.shape) if w)
        out.append({"name": name, "definition": f"a {words} shape in {member.domain.name} scenes"})
    return out


def _roboflow_doc(member: MiniOdinwMember, images: list[dict], anns: list[dict], with_background: bool) -> dict:
    cats = [{"id": j + 1, "name": n, "supercategory": member.project} for j, n in enumerate(member.classes)]
    if with_background:
        cats.insert(0, {"id": 0, "name": member.project, "supercategory": "none"})
    info = {
        "year": "2020",
        "version": "1",
        "description": "Exported from roboflow.ai",
        "contributor": "",
        "url": f"https://public.roboflow.ai/object-detection/{member.project}",
        "date_created": "2020-06-17T00:00:00",
    }
    licenses = [{"id": 1, "url": "https://creativecommons.org/publicdomain/zero/1.0/", "name": "Public Domain"}]
    return {"info": info, "licenses": licenses, "categories": cats, "images": images, "annotations": anns}


def _render_split(member: MiniOdinwMember, n: int, img_dir: Path, rng, difficulty: Difficulty) -> tuple[list, list]:
    looks = class_looks(member)
    images, anns = [], []
    lo_side, hi_side = member.size
    for i in range(n):
        w, h = (int(v) for v in rng.integers(lo_side // 8, hi_side // 8 + 1, size=2) * 8)
        k = int(rng.integers(1, member.max_objects + 1))
        labels = [int(v) for v in rng.integers(0, len(looks), size=k)]
        hi = max(difficulty.min_size, min(difficulty.max_size, min(w, h) // 2))
        img, placed = render_scene(
            rng,
            w,
            h,
            [looks[j] for j in labels],
            difficulty,
            member.domain,
            size_ranges=[(difficulty.min_size, hi)] * k,
        )
        file_name = f"img_{i:04d}_jpg.rf.{rng.bytes(16).hex()}.jpg"
        write_jpeg(img_dir / file_name, img)
        images.append(
            {
                "id": i,
                "license": 1,
                "file_name": file_name,
                "height": h,
                "width": w,
                "date_captured": "2020-06-17T00:00:00+00:00",
            }
        )
        for p in placed:
            bbox, area = coco_box(p.box)
            anns.append(
                {
                    "id": len(anns),
                    "image_id": i,
                    "category_id": labels[p.index] + 1,
                    "bbox": bbox,
                    "area": area,
                    "segmentation": [],
                    "iscrowd": 0,
                }
            )
    return images, anns


def _write_member(
    root: Path, member: MiniOdinwMember, index: int, seed: int, scale: float, difficulty: Difficulty, out: PartOutput
) -> None:
    base = root / member.sub_path
    splits = dict(BASE_SPLIT_SIZES)
    if member.layout == "no_test":
        del splits["test"]
    for s_index, (split, base_n) in enumerate(splits.items()):
        n = scaled(base_n, scale, minimum=2)
        rng = part_rng(seed, "odinw", 100 * index + s_index)
        out.counts[f"odinw_images_{member.name}"] = out.counts.get(f"odinw_images_{member.name}", 0) + n
        if member.layout == "flat":
            flat_split = "val" if split == "valid" else split
            images, anns = _render_split(member, n, base, rng, difficulty)
            rel = f"{flat_split}_annotations_without_background.json"
            atomic_write_json(base / rel, _roboflow_doc(member, images, anns, False), indent=None)
            out.add_part(f"odinw-{member.name}-{flat_split}", "odinw", f"odinw/{member.sub_path}/{rel}")
            continue
        images, anns = _render_split(member, n, base / split, rng, difficulty)
        _write_pair(base / split, member, images, anns)
        out.add_part(
            f"odinw-{member.name}-{split}",
            "odinw",
            f"odinw/{member.sub_path}/{split}/annotations_without_background.json",
        )
        if split == "valid" and member.mini_val:
            k = max(1, len(images) // 2)  # GLIP's mini_val: a subset of valid
            for im in images[:k]:
                _copy_file(base / split / im["file_name"], base / "mini_val" / im["file_name"])
            ids = {im["id"] for im in images[:k]}
            _write_pair(base / "mini_val", member, images[:k], [a for a in anns if a["image_id"] in ids])
            out.add_part(
                f"odinw-{member.name}-mini_val",
                "odinw",
                f"odinw/{member.sub_path}/mini_val/annotations_without_background.json",
            )


def _write_pair(folder: Path, member: MiniOdinwMember, images: list[dict], anns: list[dict]) -> None:
    atomic_write_json(folder / "_annotations.coco.json", _roboflow_doc(member, images, anns, True), indent=None)
    atomic_write_json(
        folder / "annotations_without_background.json", _roboflow_doc(member, images, anns, False), indent=None
    )


def _copy_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(src.read_bytes())


def write_odinw(out_dir: Path, seed: int, scale: float, difficulty: Difficulty) -> PartOutput:
    out = PartOutput()
    for index, member in enumerate(ODINW13):
        _write_member(out_dir / "odinw", member, index, seed, scale, difficulty, out)
    return out
