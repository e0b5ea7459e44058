from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from detclip_bench.mini_world import Difficulty, generate
from detclip_bench.mini_world.odinw import ODINW13


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    a = generate(tmp_path / "a", scale=0.03, seed=7, progress=False)
    # a second process with another string-hash seed: no output may depend on set/dict hash order
    code = "import sys; from detclip_bench.mini_world import generate; generate(sys.argv[1], scale=0.03, seed=7, progress=False)"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "b")], check=True, env=env)
    b = json.loads((tmp_path / "b/manifest.json").read_text())
    c = generate(tmp_path / "c", scale=0.03, seed=8, progress=False)
    da, db, dc = (_tree_digest(tmp_path / k) for k in "abc")
    assert a == b and da == db
    assert any(name.endswith(".jpg") for name in da) and any(name.endswith(".tar") for name in da)
    assert set(da) != set(dc) or da != dc
    assert da["o365/annotations/zhiyuan_objv2_train.json"] != dc["o365/annotations/zhiyuan_objv2_train.json"]
    assert c["seed"] == 8


def test_manifest_names_every_part_with_registered_formats(world):
    from detclip_bench.datasets import DATASET_FORMATS

    root, manifest = world
    assert json.loads((root / "manifest.json").read_text()) == manifest
    assert manifest["version"] and manifest["seed"] == 0 and manifest["scale"] == 0.1
    known = set(DATASET_FORMATS.names())
    names = [p["name"] for p in manifest["parts"]]
    assert len(names) == len(set(names))
    for part in manifest["parts"]:
        assert part["format"] in known, part
        assert (root / part["path"]).exists(), part
        for key, value in part["options"].items():
            if key.endswith("root") or key == "synset_mapping":
                assert (root / value).exists(), (part, key)
    odinw_parts = {p["name"].split("-")[1] for p in manifest["parts"] if p["format"] == "odinw"}
    assert odinw_parts == {m.name for m in ODINW13}
    split = manifest["vocabulary_split"]
    assert set(split) == {"detection", "grounding", "caption", "lvis_eval", "odinw"}


def test_difficulty_controls_object_count_and_size(tmp_path):
    hard = Difficulty(min_objects=1, max_objects=2, min_size=20, max_size=30, clutter=0)
    generate(tmp_path, scale=0.02, seed=1, difficulty=hard, progress=False)
    doc = json.loads((tmp_path / "o365/annotations/zhiyuan_objv2_train.json").read_text())
    per_image: dict[int, int] = {}
    for a in doc["annotations"]:
        per_image[a["image_id"]] = per_image.get(a["image_id"], 0) + 1
        side = max(a["bbox"][2], a["bbox"][3])
        assert 18 <= side <= 30, a["bbox"]
    assert max(per_image.values()) <= 2
    for img in doc["images"]:
        assert 128 <= img["width"] <= 192 and 128 <= img["height"] <= 192


@pytest.mark.parametrize(
    "kwargs",
    [dict(min_objects=3, max_objects=2), dict(min_size=70, max_size=20), dict(max_occlusion=1.5), dict(clutter=-1)],
)
def test_bad_difficulty_is_refused(kwargs):
    with pytest.raises(ValueError):
        Difficulty(**kwargs)


def test_bad_scale_is_refused(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        generate(tmp_path, scale=0, progress=False)


def test_refuses_a_non_empty_folder_and_overwrite_leaves_no_stale_files(tmp_path):
    generate(tmp_path / "w", scale=0.03, seed=0, progress=False)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        generate(tmp_path / "w", scale=0.03, seed=0, progress=False)
    stale = tmp_path / "w/cc/wds/00009.tar"
    stale.write_bytes(b"old")
    generate(tmp_path / "w", scale=0.03, seed=1, progress=False, overwrite=True)
    assert not stale.exists() and json.loads((tmp_path / "w/manifest.json").read_text())["seed"] == 1
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="does not write"):
        generate(tmp_path / "mine", scale=0.03, progress=False, overwrite=True)
    assert (tmp_path / "mine/notes.txt").read_text() == "keep me"


def test_out_path_that_is_a_file_is_a_clear_error(tmp_path):
    from detclip_bench.cli.main import main

    target = tmp_path / "taken"
    target.write_text("x")
    assert main(["data", "make-mini", "--out", str(target)]) == 1  # `error: ...`, not a traceback
