import json
import logging

import numpy as np
import pytest

from detclip_bench.compat import import_lvis
from detclip_bench.errors import DataError, SkipLog, UnknownNameError
from detclip_bench.io import atomic_path, atomic_write_json, read_json
from detclip_bench.registry import Registry


def test_registry_lazy_target_and_helpful_error():
    reg: Registry = Registry("dataset format")
    reg.add("json-loads", "json:loads")
    reg.add("decoder-decode", "json:JSONDecoder.decode")  # a dotted attribute: a class's method
    reg.register("double")(lambda x: 2 * x)
    assert reg.get("json-loads") is json.loads
    assert reg.get("decoder-decode") is json.JSONDecoder.decode
    assert reg.get("double")(3) == 6
    assert reg.names() == ["decoder-decode", "double", "json-loads"]
    with pytest.raises(
        UnknownNameError, match="unknown dataset format 'nope'; known: decoder-decode, double, json-loads"
    ) as info:
        reg.get("nope")
    assert isinstance(info.value, KeyError) and str(info.value) == info.value.args[0]  # not KeyError's quoted repr
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("double", print)


def test_cli_answers_an_unknown_name_by_its_type_not_its_text(capsys, tmp_path, monkeypatch):
    """A registry miss is a usage error (exit 2, the known names on stderr); any other KeyError is a bug."""
    from detclip_bench.cli import main as cli
    from detclip_bench.datasets import download

    assert cli.main(["data", "download", "nope", "--root", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: unknown download target nope; known: odinw13")

    def plain_key_error(*args, **kwargs):
        raise KeyError("unknown but untyped")

    monkeypatch.setattr(download, "download", plain_key_error)
    with pytest.raises(KeyError, match="unknown but untyped"):
        cli.main(["data", "download", "odinw13", "--root", str(tmp_path)])


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "ckpt.json"
    atomic_write_json(target, {"step": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half written")
        raise RuntimeError("crash mid-write")
    assert read_json(target) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.json"]  # no temp file left behind


def test_read_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "truncated.json"
    bad.write_text('{"images": [1, 2')
    with pytest.raises(DataError, match="malformed JSON") as info:
        read_json(bad)
    assert str(bad) in str(info.value)
    with pytest.raises(DataError, match="cannot read"):
        read_json(tmp_path / "absent.json")


def test_read_json_leaves_the_garbage_collector_as_it_found_it(tmp_path):
    """The collector is paused while parsing (a speed-up), and restored afterwards, on errors too."""
    import gc

    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"a": [1, 2]}')
    bad.write_text('{"a": [1,')
    assert gc.isenabled()
    read_json(good)
    with pytest.raises(DataError):
        read_json(bad)
    assert gc.isenabled()
    gc.disable()
    try:
        read_json(good)
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_skiplog_counts_and_reports(caplog):
    log = SkipLog("o365", max_logged=1)
    with caplog.at_level(logging.WARNING):
        log.skip("a.json", 1, "image missing on disk")
        log.skip("a.json", 2, "image missing on disk")
        log.skip("a.json", 3, "no valid box")
    assert log.total == 3
    assert log.report() == "o365: skipped 3 records (2 × image missing on disk, 1 × no valid box)"
    assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == 1


def test_lvis_shim_makes_accumulate_work_on_modern_numpy(tmp_path):
    lvis = import_lvis()
    assert np.float is float  # the alias lvis 0.5.3 needs, and nothing more
    gt = {
        "images": [{"id": 1, "width": 100, "height": 100, "neg_category_ids": [], "not_exhaustive_category_ids": []}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "bbox": [10, 10, 20, 20],
                "area": 400.0,
                "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]],
            }
        ],
        "categories": [{"id": 1, "name": "a", "frequency": "f", "image_count": 1, "instance_count": 1}],
    }
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    api = lvis.LVIS(str(path))
    res = lvis.LVISResults(api, [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9}])
    evaluator = lvis.LVISEval(api, res, "bbox")
    evaluator.run()  # accumulate uses np.float: raises AttributeError without the shim
    assert evaluator.results["AP"] == pytest.approx(1.0)
