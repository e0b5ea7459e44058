"""mmdetection 3.3.0's ODinW13 configs (GLIP, Grounding DINO, MM-Grounding-DINO) against our ODinW13 manifest.

The configs are read as text: each file is parsed with ``ast`` and its top-level assignments are
evaluated in order with a tiny interpreter (string/tuple/list literals, ``+`` on strings, ``dict(...)``,
names assigned earlier); nothing of mmdet is imported or executed. Where mmdetection and GLIP's own
``configs/odinw_13`` (which our manifest follows) disagree, the test pins exactly those differences.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from detclip_bench.datasets.odinw import ODINW13
from detclip_bench.suites import get_suite
from tests.reality.artefacts import package_dir

ODINW_CONFIGS = {
    "GLIP-T (A)": "glip/odinw/glip_atss_swin-t_a_fpn_dyhead_pretrain_odinw13.py",
    "Grounding DINO-T": "grounding_dino/odinw/grounding_dino_swin-t_pretrain_odinw13.py",
    "Grounding DINO-B": "grounding_dino/odinw/grounding_dino_swin-b_pretrain_odinw13.py",
    "MM-Grounding-DINO-T": "mm_grounding_dino/odinw/grounding_dino_swin-t_pretrain_odinw13.py",
}
# every way mmdetection's ODinW13 evaluation differs from GLIP's odinw_13 configs (= our manifest):
# EgoHands and Vehicles are scored on valid/ instead of GLIP's mini_val/ (a different, larger image set)
KNOWN_SPLIT_DIFFERENCES = {"EgoHands": ("mini_val", "valid"), "VehiclesOpenImages": ("mini_val", "valid")}
# MM-Grounding-DINO's odinw13 config switches on caption prompts that the GLIP / Grounding DINO configs leave
# commented out; our suites prompt the class names verbatim. (It also sets one for pothole, "there are some holes
# on the road", but its dataset_pothole never passes caption_prompt=..., so pothole is prompted plainly.)
KNOWN_CAPTION_PROMPTS = {
    "MM-Grounding-DINO-T": {
        "CottontailRabbits": {"Cottontail-Rabbit": {"name": "rabbit"}},
        "EgoHands": {"hand": {"suffix": " of a person"}},
        "NorthAmericaMushrooms": {"CoW": {"name": "flat mushroom"}, "chanterelle": {"name": "yellow mushroom"}},
        "Packages": {"package": {"prefix": "there is a ", "suffix": " on the porch"}},
    },
}


class _Opaque:
    """A value the interpreter does not model (``_base_.test_pipeline`` and what is built from it)."""


def _value(node: ast.AST, env: dict):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple | ast.List):
        return [_value(e, env) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {_value(k, env): _value(v, env) for k, v in zip(node.keys, node.values, strict=True)}
    if isinstance(node, ast.Name):
        return env.get(node.id, _Opaque())
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _value(node.left, env), _value(node.right, env)
        return left + right if isinstance(left, str) and isinstance(right, str) else _Opaque()
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
        return {kw.arg: _value(kw.value, env) for kw in node.keywords}
    return _Opaque()


def read_config(path: Path) -> dict:
    """Top-level names of an mmengine config, evaluated in order as far as plain data goes."""
    env: dict = {}
    for stmt in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            env[stmt.targets[0].id] = _value(stmt.value, env)
    return env


def odinw13_datasets(path: Path) -> dict[str, dict]:
    """Dataset name → classes, folder under the odinw root, annotation file and image folder under it, caption prompt."""
    env = read_config(path)
    root = env["data_root"]
    out = {}
    for name in env["dataset_prefixes"]:
        ds, metric = env[f"dataset_{name}"], env[f"val_evaluator_{name}"]
        assert ds["data_root"].startswith(root) and ds["data_root"].endswith("/"), ds["data_root"]
        assert metric["ann_file"] == ds["data_root"] + ds["ann_file"], name  # the metric scores the file it loads
        out[name] = {
            "classes": tuple(ds["metainfo"]["classes"]),
            "folder": ds["data_root"][len(root) : -1],
            "ann_file": ds["ann_file"],
            "img": ds["data_prefix"]["img"].rstrip("/"),
            "caption_prompt": ds.get("caption_prompt"),
        }
    return out


def _configs() -> dict[str, dict]:
    base = package_dir("mmdet") / ".mim" / "configs"
    missing = [rel for rel in ODINW_CONFIGS.values() if not (base / rel).is_file()]
    if missing:
        pytest.skip(f"mmdet without the ODinW configs {missing}: pip install --no-deps mmdet==3.3.0")
    return {label: odinw13_datasets(base / rel) for label, rel in ODINW_CONFIGS.items()}


@pytest.fixture(scope="module")
def configs():
    return _configs()


def _ours(split_folder: str | None = None) -> dict[str, dict]:
    """Our manifest, as the zero-shot suite scores it: first candidate (annotation file, image dir) of the val split."""
    suite = get_suite("odinw13")
    out = {}
    for member, manifest in zip(suite.members, ODINW13, strict=True):
        ann, img = member.files[member.eval_split][0]
        assert ann.startswith("odinw/") and img.startswith("odinw/")
        out[manifest.name] = {
            "classes": dict(member.options)["class_names"],
            "folder": manifest.subdir,
            "ann": ann.removeprefix("odinw/"),
            "img": img.removeprefix("odinw/"),
        }
    return out


def test_the_interpreter_reads_what_the_file_says(configs):
    glip = configs["GLIP-T (A)"]
    assert glip["Aquarium"]["folder"] == "Aquarium/Aquarium Combined.v2-raw-1024.coco"
    assert glip["pistols"] == {
        "classes": ("pistol",),
        "folder": "pistols/export",
        "ann_file": "val_annotations_without_background.json",
        "img": "",
        "caption_prompt": None,
    }


@pytest.mark.parametrize("label", list(ODINW_CONFIGS))
def test_same_13_datasets_classes_and_folders(configs, label):
    theirs, ours = configs[label], _ours()
    assert list(theirs) == list(ours)  # the same 13, in the same order
    for name in ours:
        assert theirs[name]["classes"] == ours[name]["classes"], name  # GLIP's OVERRIDE_CATEGORY names, verbatim
        assert theirs[name]["folder"] == ours[name]["folder"], name


@pytest.mark.parametrize("label", list(ODINW_CONFIGS))
def test_scored_files_agree_except_the_known_splits(configs, label):
    """The annotation file and image folder each config scores, against the one our zero-shot suite scores."""
    theirs, ours = configs[label], _ours()
    differ = {}
    for name, mine in ours.items():
        their_ann = f"{theirs[name]['folder']}/{theirs[name]['ann_file']}"
        their_img = "/".join(p for p in (theirs[name]["folder"], theirs[name]["img"]) if p)
        if (their_ann, their_img) != (mine["ann"], mine["img"]):
            ours_split = mine["img"].removeprefix(mine["folder"] + "/")
            their_split = theirs[name]["img"]
            differ[name] = (ours_split, their_split)
            # only the split folder differs, never the dataset variant or the file name
            assert their_ann == mine["ann"].replace(f"/{ours_split}/", f"/{their_split}/"), name
    assert differ == KNOWN_SPLIT_DIFFERENCES


def test_pistols_is_flat_in_mmdetection_too(configs):
    """GLIP's flat pistols layout ({split}_annotations_without_background.json beside the images) is also mmdet's."""
    for label, theirs in configs.items():
        assert theirs["pistols"]["ann_file"] == "val_annotations_without_background.json", label
        assert _ours()["pistols"]["ann"] == "pistols/export/val_annotations_without_background.json"


def test_caption_prompts_only_where_known(configs):
    found = {
        label: {name: d["caption_prompt"] for name, d in theirs.items() if d["caption_prompt"]}
        for label, theirs in configs.items()
    }
    assert found == {label: KNOWN_CAPTION_PROMPTS.get(label, {}) for label in ODINW_CONFIGS}
    assert get_suite("odinw13").prompt_style == "verbatim"


def test_odinw35_category_overrides_rename_two_of_our_datasets():
    """mmdet's override_category.py (GLIP's odinw_35 names) rewrites the category names of two ODinW13 datasets
    into new_annotations_without_background.json, which the odinw35 configs score; odinw13 configs and ours do not."""
    base = package_dir("mmdet") / ".mim" / "configs"
    script = base / "glip" / "odinw" / "override_category.py"
    odinw35 = base / "glip" / "odinw" / "glip_atss_swin-t_a_fpn_dyhead_pretrain_odinw35.py"
    if not script.is_file() or not odinw35.is_file():
        pytest.skip("mmdet without override_category.py / odinw35 config: pip install --no-deps mmdet==3.3.0")
    overrides = {}
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List) and isinstance(node.targets[0], ast.Name):
            overrides[node.targets[0].id] = tuple(c["name"] for c in ast.literal_eval(node.value))
    ours = _ours()
    renamed = {name: (ours[name]["classes"], names) for name, names in overrides.items() if name in ours}
    assert renamed == {
        "CottontailRabbits": (("Cottontail-Rabbit",), ("rabbit",)),
        "NorthAmericaMushrooms": (("CoW", "chanterelle"), ("flat mushroom", "yellow mushroom")),
    }
    env = read_config(odinw35)
    for name, (_, new_names) in renamed.items():
        ds = env[f"dataset_{name}"]
        assert ds["ann_file"] == "valid/new_annotations_without_background.json"
        assert tuple(ds["metainfo"]["classes"]) == new_names
