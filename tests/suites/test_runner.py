"""End-to-end suite evaluation on a tiny LVIS-layout data root, checked against lvis-api."""

import hashlib
import json
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from detclip_bench.adapters.base import Prediction
from detclip_bench.compat import import_lvis
from detclip_bench.errors import DataError
from detclip_bench.suites import get_suite
from detclip_bench.suites.runner import evaluate_suite

CATS = [
    {
        "id": 1,
        "name": "red_disc",
        "def": "a red circle",
        "frequency": "f",
        "synset": "a.n.01",
        "synonyms": ["red_disc"],
        "image_count": 9,
        "instance_count": 9,
    },
    {
        "id": 2,
        "name": "bat_(animal)",
        "def": "a flying mammal",
        "frequency": "c",
        "synset": "b.n.01",
        "synonyms": ["bat"],
        "image_count": 5,
        "instance_count": 5,
    },
    {
        "id": 3,
        "name": "kazoo",
        "def": "a toy instrument",
        "frequency": "r",
        "synset": "c.n.01",
        "synonyms": ["kazoo"],
        "image_count": 1,
        "instance_count": 1,
    },
]


def _make_root(tmp_path, n_images=6):
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    (root / "coco" / "val2017").mkdir(parents=True)
    (root / "lvis").mkdir()
    images, anns = [], []
    for i in range(1, n_images + 1):
        w, h = 64 + 8 * i, 48 + 4 * i
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
            root / "coco" / "val2017" / f"{i:012d}.jpg", quality=95
        )
        images.append(
            {
                "id": i,
                "width": w,
                "height": h,
                "coco_url": f"http://images.cocodataset.org/val2017/{i:012d}.jpg",
                "neg_category_ids": [3] if i % 2 else [],
                "not_exhaustive_category_ids": [2] if i == 2 else [],
            }
        )
        for k in range(1 + i % 3):
            x, y = float(rng.integers(0, w - 20)), float(rng.integers(0, h - 20))
            bw, bh = float(rng.integers(6, 20)), float(rng.integers(6, 20))
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i,
                    "category_id": 1 + (i + k) % 2,
                    "bbox": [x, y, bw, bh],
                    "area": bw * bh,
                    "segmentation": [[x, y, x + bw, y, x + bw, y + bh, x, y + bh]],
                }
            )
    gt = {"images": images, "annotations": anns, "categories": CATS}
    for name in ("lvis_v1_minival.json", "lvis_v1_val.json"):
        (root / "lvis" / name).write_text(json.dumps(gt))
    return root, gt


class KeyedDetector:
    """Returns pre-set detections per image, found by pixel hash (tests never rely on call order)."""

    name = "keyed-test-detector"

    def __init__(self, by_hash):
        self.by_hash = by_hash
        self.calls = 0
        self.seen_prompts = None

    def identity(self):
        return "keyed-" + hashlib.sha256(repr(sorted(self.by_hash)).encode()).hexdigest()

    def predict(self, images, prompts, *, max_dets_per_image=100, score_thresh=None):
        self.calls += 1
        self.seen_prompts = list(prompts)
        return [self.by_hash[hashlib.sha256(im.tobytes()).hexdigest()] for im in images]


def _detector_from(root, gt, noise_seed=None):
    rng = np.random.default_rng(noise_seed)
    by_hash = {}
    dets = []
    for img in gt["images"]:
        im = Image.open(root / "coco" / "val2017" / f"{img['id']:012d}.jpg").convert("RGB")
        boxes, scores, labels = [], [], []
        for a in (a for a in gt["annotations"] if a["image_id"] == img["id"]):
            x, y, w, h = a["bbox"]
            jitter = rng.normal(0, 3, 4) if noise_seed is not None else np.zeros(4)
            box = [x + jitter[0], y + jitter[1], x + w + abs(jitter[2]), y + h + abs(jitter[3])]
            for label in range(3):  # every category, so unverified/negative ones are exercised
                s = (
                    float(rng.uniform(0.05, 1.0))
                    if noise_seed is not None
                    else (0.9 if label + 1 == a["category_id"] else 0.1)
                )
                boxes.append(box)
                scores.append(s)
                labels.append(label)
                dets.append(
                    {
                        "image_id": img["id"],
                        "category_id": label + 1,
                        "score": s,
                        "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                    }
                )
        by_hash[hashlib.sha256(im.tobytes()).hexdigest()] = Prediction(boxes, scores, labels)
    return KeyedDetector(by_hash), dets


def test_perfect_detector_scores_one_and_prompts_use_definitions(tmp_path):
    root, gt = _make_root(tmp_path)
    det, _ = _detector_from(root, gt)
    res = evaluate_suite(det, get_suite("mini-lvis"), root, out_dir=tmp_path / "out", progress=False)
    assert res.aggregate()["AP"] == pytest.approx(1.0)
    assert det.seen_prompts == ["red disc, a red circle", "bat (animal), a flying mammal", "kazoo, a toy instrument"]
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    assert written["suite"] == "mini-lvis" and written["metrics"] == ["lvis-fixed"]
    assert written["aggregate"]["protocol"] == "lvis-fixed"
    assert (tmp_path / "out" / "lvis-minival-lvis-fixed.csv").is_file()


def test_suite_numbers_equal_lvis_api_on_noisy_detections(tmp_path):
    lvis = import_lvis()
    root, gt = _make_root(tmp_path)
    det, dets = _detector_from(root, gt, noise_seed=3)
    res = evaluate_suite(det, get_suite("mini-lvis-val"), root, progress=False)
    api = lvis.LVIS(str(root / "lvis" / "lvis_v1_val.json"))
    for protocol, max_dets in (("lvis-fixed", -1), ("lvis-standard", 300)):
        ev = lvis.LVISEval(api, lvis.LVISResults(api, dets, max_dets=max_dets), "bbox")
        ev.run()
        ours = res.members["lvis-val"][protocol].metrics
        for key in ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf"):
            assert ours[key] == pytest.approx(ev.results[key], abs=1e-6), (protocol, key)


def test_cached_predictions_are_rescored_without_running_the_model(tmp_path):
    root, gt = _make_root(tmp_path)
    det, _ = _detector_from(root, gt, noise_seed=1)
    suite = get_suite("mini-lvis")
    first = evaluate_suite(det, suite, root, cache_dir=tmp_path / "cache", progress=False)
    calls = det.calls
    second = evaluate_suite(det, suite, root, cache_dir=tmp_path / "cache", progress=False)
    assert det.calls == calls  # no new forward pass
    assert second.aggregate() == first.aggregate()
    # a different detection budget invalidates the cache
    evaluate_suite(det, replace(suite, max_dets_per_image=5), root, cache_dir=tmp_path / "cache", progress=False)
    assert det.calls > calls
    # so does a change of what the detector says produced its predictions (library versions, processor
    # settings, the inference code's revision), with the same weights and identity
    calls = det.calls
    det.provenance = lambda: {"inference": 2}
    evaluate_suite(det, suite, root, cache_dir=tmp_path / "cache", progress=False)
    assert det.calls > calls
    calls = det.calls
    evaluate_suite(det, suite, root, cache_dir=tmp_path / "cache", progress=False)
    assert det.calls == calls


def test_missing_suite_data_lists_every_missing_path(tmp_path):
    with pytest.raises(DataError) as info:
        evaluate_suite(KeyedDetector({}), get_suite("lvis-minival"), tmp_path, progress=False)
    msg = str(info.value)
    assert "lvis/lvis_v1_minival.json" in msg and "coco" in msg and "How to get it" in msg


def test_the_same_evaluation_twice_writes_byte_identical_results(tmp_path):
    root, gt = _make_root(tmp_path)
    suite = get_suite("mini-lvis-val")
    for run in ("a", "b"):
        evaluate_suite(_detector_from(root, gt, noise_seed=3)[0], suite, root, out_dir=tmp_path / run, progress=False)
    for name in ("results.json", "results.md", "prompts.json", "lvis-val-lvis-fixed.csv", "lvis-val-lvis-standard.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    info = json.loads((tmp_path / "a" / "run_info.json").read_text())
    # the volatile fields, kept out of results.json, and how images were read (EXIF orientation applied)
    assert set(info) == {"git_hash", "date", "versions", "device", "exif_transpose"} and info["exif_transpose"] is True
    assert info["versions"]["numpy"] and "detclip-bench" in info["versions"]


def test_evaluator_notes_are_said_once_in_the_log_and_the_results(tmp_path, caplog):
    import logging
    import warnings

    root, gt = _make_root(tmp_path)
    det, _ = _detector_from(root, gt)
    suite = get_suite("mini-lvis")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, "detclip_bench.suites"):
        warnings.simplefilter("always")
        evaluate_suite(det, suite, root, out_dir=tmp_path / "mini", progress=False)
        evaluate_suite(det, replace(suite, mini=False), root, out_dir=tmp_path / "full", progress=False)
    assert not [w for w in caught if "fewer than K" in str(w.message)]  # no raw UserWarning trace
    notes = [(r.levelno, r.getMessage()) for r in caplog.records if "fewer than K" in r.getMessage()]
    # a 3-image mini split cannot fill the 10,000-per-category pool: said as info; on a real suite, a warning
    assert [level for level, _ in notes] == [logging.INFO, logging.WARNING]
    # the suite named beside its member (mini-lvis's member is called lvis-minival, like the real suite it mirrors)
    assert notes[0][1].startswith("mini-lvis lvis-minival [lvis-fixed]: 3 of 3 categories have fewer than K=10000")
    md = (tmp_path / "mini" / "results.md").read_text()
    assert "Notes from the evaluator:" in md and "- lvis-minival: 3 of 3 categories have fewer than K=10000" in md


def test_results_json_stamps_the_manifest_and_never_overwrites_it(tmp_path, monkeypatch):
    from detclip_bench.suites.suite import Suite

    root, gt = _make_root(tmp_path)
    det, _ = _detector_from(root, gt, noise_seed=2)
    suite = get_suite("mini-lvis-val")
    written = evaluate_suite(det, suite, root, progress=False).to_dict()
    manifest = suite.manifest()
    # every manifest key in its place, each with the manifest's value but "members", which holds the numbers
    assert list(written)[2 : 2 + len(manifest)] == list(manifest)
    assert {k: written[k] for k in manifest if k != "members"} == {k: v for k, v in manifest.items() if k != "members"}
    assert written["setting"] == "zero-shot" and set(written["members"]["lvis-val"]) == {"lvis-fixed", "lvis-standard"}
    # a fine-tuning suite scored as given is a zero-shot result, and its manifest says so
    ft = replace(suite, setting="fine-tuned")
    result = evaluate_suite(det, ft, root, progress=False)
    assert result.setting == "zero-shot" and result.to_dict()["setting"] == "zero-shot"
    # a key the result adds that the manifest already holds with another value is refused, not overwritten
    monkeypatch.setattr(Suite, "manifest", lambda self: {**manifest, "summary": "how it was produced"})
    with pytest.raises(ValueError, match=r"\['summary'\] would overwrite the suite manifest's"):
        result.to_dict()
    monkeypatch.setattr(Suite, "manifest", lambda self: {**manifest, "setting": "fine-tuned"})
    with pytest.raises(ValueError, match=r"\['setting'\].*'fine-tuned' vs 'zero-shot'"):
        result.to_dict()


def test_a_suite_setting_is_spelled_as_results_spell_it():
    with pytest.raises(ValueError, match=r"setting 'finetune' is not one of \['zero-shot', 'fine-tuned'\]"):
        replace(get_suite("mini-lvis"), setting="finetune")


def test_each_annotation_file_is_parsed_once_for_the_loader_and_the_scoring(tmp_path, monkeypatch):
    import detclip_bench.io as io

    root, gt = _make_root(tmp_path)
    parsed: list[str] = []
    parse = io._parse_json
    monkeypatch.setattr(io, "_parse_json", lambda path: parsed.append(path.name) or parse(path))
    ann = root / "lvis" / "lvis_v1_val.json"
    index = ann.with_name(ann.name + ".index.npz")
    # first run: the loader builds its index from the json and the two LVIS protocols' GT reads it, one parse
    res = evaluate_suite(_detector_from(root, gt, noise_seed=3)[0], get_suite("mini-lvis-val"), root, progress=False)
    assert index.is_file() and set(res.members["lvis-val"]) == {"lvis-fixed", "lvis-standard"}
    assert parsed == ["lvis_v1_val.json"]
    # a rewritten file (new mtime) is another version: parsed again, once, for both readers
    parsed.clear()
    ann.write_text(ann.read_text())
    index.unlink()
    again = evaluate_suite(_detector_from(root, gt, noise_seed=3)[0], get_suite("mini-lvis-val"), root, progress=False)
    assert parsed == ["lvis_v1_val.json"] and again.aggregate() == res.aggregate()
    # outside an evaluation nothing is shared: each read parses
    parsed.clear()
    io.read_json(ann), io.read_json(ann)
    assert parsed == ["lvis_v1_val.json"] * 2


def test_predictions_are_written_once_the_run_keeps_a_hard_link_to_the_cache(tmp_path, monkeypatch):
    from detclip_bench.predict.arrays import PredictionArrays
    from detclip_bench.suites.predictions import cache_path
    from detclip_bench.suites.runner import predictions_path

    root, gt = _make_root(tmp_path)
    det, _ = _detector_from(root, gt, noise_seed=1)
    suite = get_suite("mini-lvis")
    (target,) = suite.targets(root)
    saved: list[str] = []
    save = PredictionArrays.save
    monkeypatch.setattr(PredictionArrays, "save", lambda self, path, meta: saved.append(path) or save(self, path, meta))
    cache = cache_path(tmp_path / "cache", det.identity(), suite, target)
    for run in ("a", "b"):  # computed and cached, then read from the cache: one serialisation in all
        evaluate_suite(det, suite, root, out_dir=tmp_path / run, cache_dir=tmp_path / "cache", progress=False)
        kept = predictions_path(tmp_path / run, target)
        assert kept.stat().st_ino == cache.stat().st_ino and not kept.is_symlink()
    assert saved == [cache] and det.calls > 0
    _, meta = PredictionArrays.load(cache)
    assert (meta["suite"], meta["member"], meta["split"], meta["identity"]) == (
        "mini-lvis",
        "lvis-minival",
        "val",
        det.identity(),
    )
    # the run folder stays whole without the cache
    before = predictions_path(tmp_path / "a", target).read_bytes()
    cache.unlink()
    arrays, _ = PredictionArrays.load(predictions_path(tmp_path / "a", target))
    assert len(arrays) > 0 and predictions_path(tmp_path / "a", target).read_bytes() == before
    # without a cache, or with one holding another record (an older cache), the run's file is written
    saved.clear()
    evaluate_suite(det, suite, root, out_dir=tmp_path / "c", progress=False)
    assert saved == [predictions_path(tmp_path / "c", target)]
    assert predictions_path(tmp_path / "c", target).read_bytes() == before
    old_arrays, old_meta = PredictionArrays.load(predictions_path(tmp_path / "c", target))
    save(old_arrays, cache, {k: v for k, v in old_meta.items() if k not in ("suite", "version", "member", "split")})
    saved.clear()
    calls = det.calls
    evaluate_suite(det, suite, root, out_dir=tmp_path / "d", cache_dir=tmp_path / "cache", progress=False)
    assert det.calls == calls and saved == [predictions_path(tmp_path / "d", target)]
    assert predictions_path(tmp_path / "d", target).read_bytes() == before
