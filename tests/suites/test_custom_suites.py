"""Your own dataset as a suite (``--dataset``) and a lab's own suite file, against the registered ODinW member."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest

from detclip_bench.analysis.run_dir import load_run
from detclip_bench.cli.main import main
from detclip_bench.errors import DataError
from detclip_bench.suites import dataset_suite, get_suite
from detclip_bench.suites.custom import load_suite_file, parse_dataset_spec, parse_prompts
from detclip_bench.suites.runner import evaluate_suite
from tests.suites.detectors import JitteredGtDetector

EXPORT = "odinw/Aquarium/Aquarium Combined.v2-raw-1024.coco"  # a Roboflow export as downloaded


def HashDetector(targets):
    """GT-derived detections keyed by pixel hash: any suite that shows it the same images gets the same boxes."""
    return JitteredGtDetector(targets, noise=0.1, name="hash-test")


@pytest.fixture(scope="module")
def world(small_world):
    return small_world


@pytest.fixture(scope="module")
def odinw_aquarium(world):
    suite = get_suite("mini-odinw13-finetune")
    member = next(m for m in suite.members if m.name.endswith("/Aquarium"))
    return type(suite)(**{**suite.__dict__, "members": (member,), "aggregate": "single"})


def test_an_export_folder_scores_as_the_registered_odinw_member(world, odinw_aquarium, tmp_path):
    ours = dataset_suite(str(world / EXPORT), finetune=True)
    (member,) = ours.members
    assert member.eval_split == "test" and set(member.files) == {"train", "val", "test"}
    assert ours.version.startswith("sha256-") and ours.setting == "fine-tuned"
    detector = HashDetector(odinw_aquarium.targets(world, "test"))
    got = evaluate_suite(detector, ours, world, out_dir=tmp_path / "run", progress=False)
    want = evaluate_suite(detector, odinw_aquarium, world, progress=False)
    (g,), (w,) = got.members.values(), want.members.values()
    assert g["coco"].metrics == w["coco"].metrics and 0 < g["coco"].metrics["AP"] < 1
    loaded = load_run(tmp_path / "run", data_root=world)  # analyze rebuilds the suite from results.json
    assert loaded.suite == ours and len(loaded.members[0].predictions) > 0


def test_split_pairs_with_image_folders_and_prompts(world, tmp_path):
    export = world / EXPORT
    anns = tmp_path / "anns"
    anns.mkdir()
    for split, folder in (("train", "train"), ("val", "valid"), ("test", "test")):
        shutil.copy(export / folder / "_annotations.coco.json", anns / f"{split}.json")
    spec = ",".join(
        f"{s}={anns / f'{s}.json'}@{export / f}" for s, f in (("train", "train"), ("val", "valid"), ("test", "test"))
    )
    files = parse_dataset_spec(spec)
    assert files["val"] == (anns / "val.json", export / "valid")
    n = len(json.loads((anns / "test.json").read_text())["categories"]) - 1  # without Roboflow's root
    prompts = tuple(f"thing {k}" for k in range(n))
    suite = dataset_suite(spec, finetune=False, prompts=prompts)
    ds = suite.targets(world)[0].open()
    assert [c.name for c in ds.vocabulary()] == list(prompts)
    with pytest.raises(DataError, match="duplicate prompt"):
        parse_prompts("cat, cat")
    with pytest.raises(DataError, match="an empty prompt"):
        parse_prompts("cat,, dog")


def test_bad_datasets_are_named(world, tmp_path):
    export = world / EXPORT
    bad = tmp_path / "bad"
    shutil.copytree(export, bad)
    test_json = bad / "test" / "_annotations.coco.json"
    data = json.loads(test_json.read_text())
    data["categories"][1]["id"] = 99
    test_json.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"_annotations.coco.json.*category ids/names differ") as exc:
        dataset_suite(str(bad), finetune=False)
    name = data["categories"][1]["name"]
    assert f"only train has id 1 {name!r}; train lacks id 99 {name!r}" in str(exc.value)
    data["categories"][1] |= {"id": 1, "name": "renamed"}  # same ids, one name differs: that id and both names
    test_json.write_text(json.dumps(data))
    with pytest.raises(DataError, match=rf"id 1 is {name!r} in train but 'renamed' in test; every split"):
        dataset_suite(str(bad), finetune=False)
    shutil.rmtree(bad)
    shutil.copytree(export, bad)
    next((bad / "valid").glob("*.jpg")).unlink()
    with pytest.raises(DataError, match=r"valid/_annotations.coco.json.*1 of \d+ images are missing"):
        dataset_suite(str(bad), finetune=False)
    empty = json.loads((export / "test" / "_annotations.coco.json").read_text()) | {"images": [], "annotations": []}
    (tmp_path / "empty.json").write_text(json.dumps(empty))
    with pytest.raises(DataError, match="empty split"):
        dataset_suite(f"test={tmp_path / 'empty.json'}", finetune=False)
    with pytest.raises(DataError, match="fine-tuning needs a train split"):
        dataset_suite(f"test={export / 'test' / '_annotations.coco.json'}", finetune=True)
    with pytest.raises(DataError, match="no Roboflow/COCO export here"):
        dataset_suite(str(tmp_path), finetune=False)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_a_suite_file_runs_like_a_registered_suite(world, tmp_path, monkeypatch, fmt):
    import yaml

    from detclip_bench.adapters import models

    members = []
    for name in ("Aquarium", "pothole"):
        m = next(m for m in get_suite("mini-odinw13").members if m.name.endswith(f"/{name}"))
        target = m.target(world, "val")
        files = [str(target.annotations.relative_to(world)), str(target.images.relative_to(world))]
        members.append({"name": name, "format": "odinw", "eval_split": "val", "files": {"val": files}})
    spec = {
        "name": "lab-suite",
        "version": "3",
        "description": "two datasets",
        "members": members,
        "metrics": ["coco"],
        "aggregate": "mean",
    }
    path = tmp_path / f"lab.{fmt}"
    path.write_text(json.dumps(spec) if fmt == "json" else yaml.safe_dump(spec))
    suite = load_suite_file(path)
    assert suite.name == "lab-suite" and suite.version == "3" and len(suite.members) == 2
    detector = HashDetector(suite.targets(world))
    monkeypatch.setattr(models, "_FAMILIES", (*models._FAMILIES, "hashfam"))
    monkeypatch.setitem(models.MODELS._entries, "hashfam", lambda source, device: detector)
    out = tmp_path / "ev"
    assert (
        main(
            [
                "eval",
                "--model",
                "hashfam:x",
                "--suite",
                str(path),
                "--data-root",
                str(world),
                "--out",
                str(out),
                "--no-cache",
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["suite"] == "lab-suite" and results["version"] == "3"
    aps = [r["coco"]["metrics"]["AP"] for r in results["members"].values()]
    assert results["aggregate"]["metrics"]["AP"] == pytest.approx(sum(aps) / 2)
    assert results["suite_file"] == str(path.resolve()) and len(load_run(out, data_root=world).members) == 2
    # a run never overwrites another: a given --out holding files is refused unless --exist-ok ...
    again = ["eval", "--model", "hashfam:x", "--suite", str(path), "--data-root", str(world)]
    before = (out / "results.json").read_bytes()
    assert main([*again, "--out", str(out)]) == 2 and (out / "results.json").read_bytes() == before
    assert main([*again, "--out", str(out), "--exist-ok"]) == 0
    # ... and without --out each run gets the next free folder, all sharing one prediction cache
    monkeypatch.chdir(tmp_path)
    assert main(again) == 0 and main(again) == 0
    assert sorted(p.name for p in (tmp_path / "runs" / "eval").iterdir()) == ["cache", "lab-suite", "lab-suite2"]
    assert (tmp_path / "runs/eval/lab-suite/results.json").read_bytes() == before
    (tmp_path / "broken.yaml").write_text("name: x\nversion: 1\nmembers:\n  - name: a\n")
    with pytest.raises(DataError, match=r"broken.yaml.*members\[0\]"):
        load_suite_file(tmp_path / "broken.yaml")


def test_the_old_setting_spelling_in_a_suite_file_is_read_with_a_note(world, tmp_path):
    member = next(m for m in get_suite("mini-odinw13-finetune").members if m.name.endswith("/Aquarium"))
    files = {s: [str(a), str(i)] for s, ((a, i), *_) in member.files.items()}
    body = {"name": "lab", "version": "1", "members": [{"name": "Aquarium", "files": files}]}
    for setting, note in (("fine-tuned", False), ("finetune", True)):
        path = tmp_path / f"{setting}.json"
        path.write_text(json.dumps({**body, "setting": setting}))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            suite = load_suite_file(path)
        assert suite.setting == "fine-tuned" and suite.manifest()["setting"] == "fine-tuned"
        said = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
        assert said == (
            [
                f"{path}: 'setting: finetune' is the old spelling of 'setting: fine-tuned' (what results "
                "and leaderboards say); it is still read, but will not be in a later release: change the file"
            ]
            if note
            else []
        )
    (tmp_path / "bad.json").write_text(json.dumps({**body, "setting": "few-shot"}))
    with pytest.raises(DataError, match=r"bad.json.*setting 'few-shot' is not one of \['zero-shot', 'fine-tuned'\]"):
        load_suite_file(tmp_path / "bad.json")
