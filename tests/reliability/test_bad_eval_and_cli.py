"""Bad-input corpus, evaluators and CLI: a DataError naming file and record, or a clean ``error:``
line with a non-zero exit — never a traceback, never a silently coerced number."""

from __future__ import annotations

import json

import numpy as np
import pytest

from detclip_bench.cli.main import main
from detclip_bench.metrics import CocoEvaluator, LvisEvaluator, score_files
from detclip_bench.metrics.synthetic import make_coco_like, make_lvis_like

from .corpus import Case, assert_data_error, dump, params

GOOD = {"image_id": 1, "category_id": 1, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.9}


def _score(records=None, raw=None, protocol="coco"):
    def build(tmp):
        gt = dump(tmp / "gt.json", make_coco_like(4, 3, seed=3) if protocol == "coco" else make_lvis_like(4, 5, seed=3))
        pred = tmp / "pred.json"
        pred.write_text(raw if raw is not None else json.dumps(records))
        return lambda: score_files(gt, pred, protocol)

    return build


def _gt(mutate, lvis=False):
    def build(tmp):
        gt = make_lvis_like(4, 5, seed=4) if lvis else make_coco_like(4, 3, seed=4)
        mutate(gt)
        path = dump(tmp / "gt.json", gt)
        return lambda: (LvisEvaluator if lvis else CocoEvaluator)(path)

    return build


def _stream(boxes, scores, cats, image_id=1):
    def build(tmp):
        ev = CocoEvaluator(make_coco_like(4, 3, seed=5))

        def feed_then_score():  # values are checked per block of detections, at the latest by compute()
            ev.update(image_id, np.asarray(boxes, float), scores, cats)
            return ev.compute()

        return feed_then_score

    return build


def _ann(k, key, value):
    def mutate(gt):
        gt["annotations"][k][key] = value

    return mutate


CASES = [
    Case("pred_truncated_json", _score(raw=json.dumps([GOOD, GOOD])[:-12]), ("pred.json", "malformed JSON")),
    Case("pred_top_level_object", _score({"annotations": [GOOD]}), ("pred.json", "must be a JSON list")),
    Case(
        "pred_nan_score_literal",
        _score(raw='[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":NaN}]'),
        ("pred.json", "malformed JSON"),
    ),
    Case(
        "pred_score_overflows_to_inf",
        _score(raw='[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":1e400}]'),
        ("pred.json", "infinity"),
    ),
    Case(
        "pred_score_is_a_string", _score([GOOD, {**GOOD, "score": "0.5"}]), ("pred.json", "record 1", '"score": "0.5"')
    ),
    Case(
        "pred_image_id_is_fractional", _score([GOOD, GOOD, {**GOOD, "image_id": 1.5}]), ("pred.json", "record 2", "1.5")
    ),
    Case(
        "pred_image_id_is_a_string", _score([{**GOOD, "image_id": "1"}]), ("pred.json", "record 0", '"image_id": "1"')
    ),
    Case("pred_category_id_is_a_bool", _score([GOOD, {**GOOD, "category_id": True}]), ("pred.json", "record 1")),
    Case("pred_bbox_is_nested", _score([GOOD, {**GOOD, "bbox": [[1, 2], [3, 4]]}]), ("pred.json", "record 1")),
    Case("pred_bbox_has_a_string", _score([GOOD, {**GOOD, "bbox": [1, 2, "3", 4]}]), ("pred.json", "record 1")),
    Case(
        "pred_unknown_category_id",
        _score([GOOD, {**GOOD, "category_id": 99}]),
        ("pred.json", "detection 1", "category_id is not a GT category"),
    ),
    Case(
        "pred_unknown_category_lvis",
        _score([GOOD, {**GOOD, "category_id": 42}], protocol="lvis-fixed"),
        ("pred.json", "detection 1", "category_id 42"),
    ),
    Case("stream_boxes_wrong_shape", _stream(np.zeros((2, 3)), [0.1, 0.2], [1, 1]), ("image 1", "(N, 4)")),
    Case("stream_negative_inf_score", _stream([[0, 0, 5, 5]], [-np.inf], [1]), ("detection 0", "NaN or infinite")),
    Case("stream_zero_size_box_nan_corner", _stream([[0, 0, np.nan, 5]], [0.3], [1]), ("detection 0", "NaN")),
    Case("gt_area_missing", _gt(_ann(2, "area", None)), ("gt.json", "annotations[2]", "'area'")),
    Case("gt_negative_box", _gt(_ann(1, "bbox", [1, 1, -2, 3])), ("gt.json", "annotations[1]", "negative box")),
    Case("gt_annotation_unknown_image", _gt(_ann(0, "image_id", 999)), ("gt.json", "annotations[0]", "image_id 999")),
    Case(
        "gt_duplicate_category_id",
        _gt(lambda g: g["categories"].append(dict(g["categories"][0]))),
        ("gt.json", "categories[3]", "duplicate categories id"),
    ),
    Case(
        "gt_top_level_list",
        lambda tmp: lambda p=dump(tmp / "gt.json", [1]): CocoEvaluator(p),
        ("gt.json", "JSON object"),
    ),
    Case(
        "lvis_gt_without_frequency",
        _gt(lambda g: g["categories"][2].pop("frequency"), lvis=True),
        ("gt.json", "categories[2]", "frequency"),
    ),
    Case(
        "lvis_gt_neg_ids_are_strings",
        _gt(lambda g: g["images"][1].update(neg_category_ids=["3"]), lvis=True),
        ("gt.json", "images[1]", "neg_category_ids"),
    ),
]


@pytest.mark.parametrize("case", params(CASES))
def test_bad_eval_input_is_a_data_error(tmp_path, case):
    assert_data_error(case.build(tmp_path), *case.needles)


@pytest.fixture
def files(tmp_path):
    gt = dump(tmp_path / "gt.json", make_lvis_like(4, 5, seed=6))
    pred = dump(tmp_path / "pred.json", [GOOD])
    return tmp_path, gt, pred


CLI_CASES = [  # (name, argv template, exit code, needles in the error line)
    (
        "score_gt_missing",
        ["score", "--gt", "{tmp}/nope.json", "--pred", "{pred}", "--protocol", "lvis"],
        1,
        ["error:", "nope.json", "cannot read"],
    ),
    (
        "score_gt_is_a_folder",
        ["score", "--gt", "{tmp}", "--pred", "{pred}", "--protocol", "lvis"],
        1,
        ["error:", "cannot read"],
    ),
    (
        "score_topk_negative",
        ["score", "--gt", "{gt}", "--pred", "{pred}", "--protocol", "lvis-fixed", "--topk", "-5"],
        2,
        ["error:", "topk_per_category must be >= 1"],
    ),
    (
        "score_fixed_with_per_image_cap",
        ["score", "--gt", "{gt}", "--pred", "{pred}", "--protocol", "lvis-fixed", "--max-dets", "5"],
        2,
        ["error:", "no per-image cap"],
    ),
    (
        "score_coco_cap_zero",
        ["score", "--gt", "{gt}", "--pred", "{pred}", "--protocol", "coco", "--max-dets", "0"],
        2,
        ["error:", "max_dets_per_image"],
    ),
    (
        "data_inspect_unknown_format",
        ["data", "inspect", "{gt}", "--format", "coco-v9"],
        1,
        ["error:", "gt.json", "unknown dataset format 'coco-v9'"],
    ),
    (
        "data_inspect_unknown_option",
        ["data", "inspect", "{gt}", "--format", "lvis", "-o", "colour=red"],
        1,
        ["error:", "gt.json", "no option 'colour'"],
    ),
    ("data_inspect_missing_root", ["data", "inspect", "{tmp}/no_such_root"], 1, ["error:", "no_such_root"]),
]


@pytest.mark.parametrize(("name", "argv", "code", "needles"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_arguments_give_an_error_line_and_exit_code(files, capsys, name, argv, code, needles):
    tmp, gt, pred = files
    assert main([a.format(tmp=tmp, gt=gt, pred=pred) for a in argv]) == code
    out = capsys.readouterr()
    text = out.err + out.out
    assert all(n in text for n in needles), text
    assert "Traceback" not in text


@pytest.mark.parametrize(
    "argv",
    [
        ["score", "--gt", "{gt}", "--pred", "{pred}", "--protocol", "voc"],
        ["data", "inspect", "{gt}", "--format", "lvis", "-o", "no_equals_sign"],
    ],
)
def test_cli_usage_errors_exit_non_zero(files, capsys, argv):
    _, gt, pred = files
    with pytest.raises(SystemExit) as exit_:
        main([a.format(gt=gt, pred=pred) for a in argv])
    code = exit_.value.code  # argparse exits 2; _options raises SystemExit("error: ...") (printed, exit 1)
    assert code not in (0, None)
    assert "error" in capsys.readouterr().err + str(code)


def test_cli_score_out_that_cannot_be_written_is_an_error_line(files):
    tmp, gt, pred = files
    (tmp / "score.json").mkdir()  # --out is a folder (issue 27 point 8): score.json in it, here a folder itself
    assert main(["score", "--gt", str(gt), "--pred", str(pred), "--protocol", "lvis", "--out", str(tmp)]) == 1


def test_cli_unknown_suite_is_an_error_line():
    assert main(["eval", "--model", "x", "--suite", "no-such-suite"]) == 2
