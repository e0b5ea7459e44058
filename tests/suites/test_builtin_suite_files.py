"""The built-in suites are data files read by the suite-file loader, and they define exactly what the Python
definitions they replaced did: the same fields, manifests and, evaluated, byte-identical results.

``data/builtin_suites_before_data_files.json`` was written from the Python definitions (``suites/lvis.py``,
``suites/odinw.py``) before they were deleted: every field of every suite, each member's candidate files for
every split, and ``Suite.manifest()``.
"""

from __future__ import annotations

import json
import zlib
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
import tomllib

from detclip_bench.adapters.base import Prediction
from detclip_bench.datasets.layouts import suite_candidates
from detclip_bench.datasets.odinw import ODINW13
from detclip_bench.errors import DataError
from detclip_bench.registry import Registry
from detclip_bench.suites import BUILTIN_DIR, SUITES, Suite, SuiteMember, load_suite_file
from detclip_bench.suites.runner import evaluate_suite

ROOT = Path(__file__).resolve().parents[2]
BEFORE = json.loads((Path(__file__).parent / "data" / "builtin_suites_before_data_files.json").read_text())
MINI = ("mini-lvis", "mini-lvis-val", "mini-odinw13", "mini-odinw13-finetune")
# the fixture predates the one spelling of a setting (results.json's "fine-tuned"): its suites said "finetune"
RESPELLED = {"finetune": "fine-tuned"}


# ... and the one spelling of the data-root flag in the download hints (`--root` is a hidden alias since then)
RESPELLED_HINT = ("--root <root>", "--data-root <root>")


def respelled(fields: dict) -> dict:
    out = {**fields, "setting": RESPELLED.get(fields["setting"], fields["setting"])}
    if "download" in out:
        out["download"] = out["download"].replace(*RESPELLED_HINT)
    return out


def python_definition(name: str) -> Suite:
    """The suite as the deleted Python code built it (from the fixture), its setting spelled as today."""
    d = respelled(BEFORE[name]["definition"])
    members = tuple(
        SuiteMember(
            name=m["name"],
            loader_format=m["loader_format"],
            eval_split=m["eval_split"],
            files={s: tuple(tuple(c) for c in cands) for s, cands in m["files"].items()},
            options=tuple((k, tuple(v)) for k, v in m["options"]),
        )
        for m in d.pop("members")
    )
    return Suite(**{**d, "metrics": tuple(d["metrics"])}, members=members)


@pytest.mark.parametrize("name", sorted(BEFORE))
def test_each_builtin_file_defines_what_the_python_code_did(name):
    suite = SUITES.get(name)
    assert suite == python_definition(name)  # every field, every member, every split's candidates
    assert suite.manifest() == respelled(BEFORE[name]["manifest"])
    assert suite.suite_file is None  # results name a built-in suite by its name alone, as before


def test_the_registry_lists_the_files_and_reads_each_on_first_use():
    assert SUITES.names() == sorted(BEFORE) == sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))
    read: list[str] = []
    registry: Registry[Suite] = Registry("suite", load_file=lambda p: read.append(p.stem) or load_suite_file(p))
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        registry.add(path.stem, path)
    assert registry.names() == SUITES.names() and read == []  # listing reads nothing
    assert registry.get("odinw13").name == "odinw13" and registry.get("odinw13") is registry.get("odinw13")
    assert read == ["odinw13"]
    with pytest.raises(TypeError, match="reads no files"):
        Registry("model").add("x", BUILTIN_DIR / "odinw13.yaml")


def test_the_files_are_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = patterns["detclip_bench"]
    for path in BUILTIN_DIR.glob("*.yaml"):
        rel = path.relative_to(ROOT / "detclip_bench").as_posix()
        assert any(fnmatch(rel, p) for p in shipped), rel


def test_the_files_list_the_layout_tables_candidates():
    """The LVIS candidates are datasets.layouts' (ours, GLIP's, mmdetection's); the ODinW folders and classes are
    datasets.odinw.ODINW13's. A change there fails here: change the files too, and bump their version."""
    for name, part in (("lvis-minival", "minival"), ("lvis-val", "val")):
        (member,) = SUITES.get(name).members
        assert member.files == {"val": suite_candidates("lvis", part), "train": suite_candidates("lvis", "train")}
    for suite_name, split in (("odinw13", "val"), ("odinw13-finetune", "test")):
        suite = SUITES.get(suite_name)
        assert [m.name for m in suite.members] == [f"odinw13/{m.name}" for m in ODINW13]
        for member, table in zip(suite.members, ODINW13, strict=True):
            assert member.eval_split == split and member.options == (("class_names", table.classes),)
            for s in ("train", "val", "test"):
                assert member.files[s] == tuple((f"odinw/{a}", f"odinw/{i}") for a, i in table.candidates(s))


class HashDetector:
    """Deterministic boxes, scores and labels from each image's pixels (no model)."""

    name = "hash-detector"

    def identity(self) -> str:
        return "hash-detector-v1"

    def predict(self, images, prompts, *, max_dets_per_image=100, score_thresh=None):
        out = []
        for im in images:
            rng = np.random.default_rng(zlib.crc32(im.tobytes()))
            n = min(max_dets_per_image, 3 * len(prompts))
            w, h = im.size
            xy = rng.uniform(0, 1, (n, 2)) * [w / 2, h / 2]
            wh = rng.uniform(0.1, 0.5, (n, 2)) * [w, h]
            boxes = np.concatenate([xy, xy + wh], 1)
            out.append(Prediction(boxes, rng.uniform(0, 1, n), rng.integers(0, len(prompts), n)))
        return out


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "run_info.json"  # run_info.json holds the date
    }


@pytest.mark.parametrize("name", MINI)
def test_mini_suite_results_are_byte_identical_to_the_python_definitions(name, small_world, tmp_path):
    old = evaluate_suite(HashDetector(), python_definition(name), small_world, out_dir=tmp_path / "old", progress=False)
    new = evaluate_suite(HashDetector(), SUITES.get(name), small_world, out_dir=tmp_path / "new", progress=False)
    assert old.aggregate()["AP"] > 0  # the comparison is over real numbers, not an empty run
    written = _files(tmp_path / "new")
    assert "results.json" in written and any(k.startswith("predictions/") for k in written)
    assert written == _files(tmp_path / "old")
    assert new.to_dict() == old.to_dict()


# ---- what the file schema gained for them -------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_suite_file_may_include_another_list_candidates_and_set_every_members_split(tmp_path):
    _write(
        tmp_path / "base.yaml",
        "name: base\nversion: '3'\neval_split: val\nmini: true\ndownload: ask Ann\nmembers:\n"
        "  - name: a\n    files:\n"
        "      val: [[a/valid/x.json, a/valid], [a/val/x.json, a/val]]\n"
        "      test: [a/test/x.json, a/test]\n"
        "  - name: b\n    eval_split: test\n    files: {val: [b/v.json, b], test: [b/t.json, b]}\n",
    )
    derived = load_suite_file(
        _write(tmp_path / "derived.yaml", "include: base.yaml\nname: derived\neval_split: test\n")
    )
    base = load_suite_file(tmp_path / "base.yaml")
    assert base.members[0].files["val"] == (("a/valid/x.json", "a/valid"), ("a/val/x.json", "a/val"))
    assert base.members[0].files["test"] == (("a/test/x.json", "a/test"),)
    assert [m.eval_split for m in base.members] == ["val", "test"]  # a member's own split wins
    assert [m.eval_split for m in derived.members] == ["test", "test"]
    assert (derived.name, derived.version, derived.mini, derived.download) == ("derived", "3", True, "ask Ann")
    assert derived.suite_file == str((tmp_path / "derived.yaml").resolve())
    assert derived.aggregate == "mean" and derived.members[1].files == base.members[1].files


def test_suite_file_include_and_candidate_errors_name_the_file(tmp_path):
    _write(tmp_path / "a.yaml", "include: b.yaml\nname: a\n")
    _write(tmp_path / "b.yaml", "include: a.yaml\nversion: '1'\n")
    with pytest.raises(DataError, match="includes itself"):
        load_suite_file(tmp_path / "a.yaml")
    with pytest.raises(DataError, match="no such suite file"):
        load_suite_file(_write(tmp_path / "c.yaml", "include: missing.yaml\nname: c\n"))
    bad = "name: d\nversion: '1'\nmembers:\n  - name: m\n    files: {val: [[x.json, x], [y.json]]}\n"
    with pytest.raises(DataError, match=r"members\[0\]\.files\.val.*list of such pairs"):
        load_suite_file(_write(tmp_path / "d.yaml", bad))
