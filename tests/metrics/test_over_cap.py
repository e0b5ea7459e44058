"""Results files with more detections than the protocol keeps (no top-K at export, GLIP-style chunks).

A large block is cut before it is written (``GroupTopK.batch_keep``): it must keep exactly the rows, with the
same arrival numbers, and give exactly the numbers that writing every row and selecting afterwards gives, and
that the oracles' stable sort keeps, with ties in score across the cap, for every protocol's cap.
"""

import json

import numpy as np
import pytest

from detclip_bench.errors import DataError
from detclip_bench.metrics import fastjson, make_evaluator, score_files, streaming
from detclip_bench.metrics.kbest import first_k_per_group
from detclip_bench.metrics.score import read_results
from detclip_bench.metrics.synthetic import make_coco_like, make_detections, make_lvis_like
from detclip_bench.metrics.topk import GroupTopK

from .oracles import assert_same, devil_fixed_ap, limit_per_image, lvis_standard, pycocotools_bbox

# protocol, make_evaluator budgets, the kept rows' group ("image" / "category") and their cap
CASES = {
    "lvis-standard": ("lvis", {}, "image", 300),
    "lvis-standard-50": ("lvis", {"max_dets_per_image": 50}, "image", 50),
    "lvis-fixed": ("lvis-fixed", {"topk_per_category": 60}, "category", 60),
    "lvis-fixed-bootstrap-pool": ("lvis-fixed", {"topk_per_category": 60, "pool_per_category": 120}, "category", 120),
    "coco-glip": ("coco", {"max_dets_per_image": 100}, "image", 100),
}


def _stable_cut(groups: list[int], scores: list[float], k: int) -> list[int]:
    """Positions kept by Python's stable ``sorted(..., reverse=True)[:k]`` per group (the oracles' cut)."""
    by_group: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    return sorted(i for rows in by_group.values() for i in sorted(rows, key=lambda i: scores[i], reverse=True)[:k])


def _layout(results: list[dict], layout: str) -> list[dict]:
    """The records as a writer may order them: image by image, each image in two chunks far apart (GLIP's
    category chunks), or shuffled."""
    if layout == "grouped":
        return results
    if layout == "chunked":
        by_image: dict[int, list[dict]] = {}
        for r in results:
            by_image.setdefault(r["image_id"], []).append(r)
        halves = [(rows[: len(rows) // 2], rows[len(rows) // 2 :]) for rows in by_image.values()]
        return [r for part in (0, 1) for h in halves for r in h[part]]
    order = np.random.default_rng(5).permutation(len(results))
    return [results[i] for i in order]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """GT and over-cap results files (scores of one decimal: ties everywhere, across every cap too)."""
    tmp = tmp_path_factory.mktemp("over_cap")
    out = {}
    for name, gt, per_image in (
        ("lvis", make_lvis_like(40, 25, gt_per_image=6, seed=3), 420),
        ("coco", make_coco_like(30, 4, gt_per_image=5, seed=6), 250),
    ):
        (tmp / f"{name}_gt.json").write_text(json.dumps(gt))
        results = make_detections(gt, per_image, seed=4, score_decimals=1).to_results()
        for layout in ("grouped", "chunked", "shuffled"):
            res = _layout(results, layout)
            (tmp / f"{name}_{layout}.json").write_text(json.dumps(res))
            out[name, layout] = (tmp / f"{name}_gt.json", tmp / f"{name}_{layout}.json", gt, res)
    return out


def _evaluate(gt_path, pred_path, protocol: str, budgets: dict, *, cut_early: bool, monkeypatch, parts: int = 1):
    """(kept rows, result, rows the early cut dropped) of the evaluator fed the file's columns in one update, as
    ``score_files`` feeds them (or in ``parts`` updates), with the early cut forced on or off."""
    monkeypatch.setattr(streaming, "_CUT_EARLY_FROM", 0 if cut_early else 1 << 62)
    dropped = []
    batch_keep = GroupTopK.batch_keep

    def spy(self, image_ids, scores, cats):
        keep = batch_keep(self, image_ids, scores, cats)
        dropped.append(0 if keep is None else len(scores) - len(keep))
        return keep

    monkeypatch.setattr(GroupTopK, "batch_keep", spy)
    ev = make_evaluator(gt_path, protocol, **budgets)
    columns = read_results(pred_path)
    for part in np.array_split(np.arange(len(columns[0])), parts):
        ev.update(*(col[part] for col in columns))
    rows = ev.pool.result()
    return rows, ev.compute(), sum(dropped)


@pytest.mark.parametrize("reader", ["compiled", "msgspec"])
@pytest.mark.parametrize("layout", ["grouped", "chunked", "shuffled"])
@pytest.mark.parametrize("case", list(CASES))
def test_early_cut_keeps_the_same_rows_and_numbers(files, case, layout, reader, monkeypatch):
    protocol, budgets, group, cap = CASES[case]
    if reader == "msgspec":
        monkeypatch.setattr(fastjson, "_fastjson", None)
    gt_path, pred_path, _, res = files["coco" if protocol == "coco" else "lvis", layout]
    early, early_result, dropped = _evaluate(
        gt_path, pred_path, protocol, budgets, cut_early=True, monkeypatch=monkeypatch
    )
    late, late_result, none = _evaluate(gt_path, pred_path, protocol, budgets, cut_early=False, monkeypatch=monkeypatch)
    assert dropped > 0 and none == 0  # the early cut did drop rows, and only when forced on

    np.testing.assert_array_equal(early.engine, late.engine)
    np.testing.assert_array_equal(early.seq, late.seq)
    key = "image_id" if group == "image" else "category_id"
    groups, scores = [r[key] for r in res], [r["score"] for r in res]
    expect = _stable_cut(groups, scores, cap)
    assert early.seq.tolist() == expect
    by_group = {}
    for g, s in zip(groups, scores, strict=True):
        by_group.setdefault(g, []).append(s)
    cut_ties = [g for g, s in by_group.items() if len(s) > cap and sorted(s)[-cap] == sorted(s)[-cap - 1]]
    assert cut_ties, "the files must tie in score across the cap"

    assert early_result.metrics == late_result.metrics  # bit-identical
    for column in ("id", "ap", "num_dets"):  # (NaN AP where a category has no GT: equal here too)
        np.testing.assert_array_equal(
            [getattr(c, column) for c in early_result.categories], [getattr(c, column) for c in late_result.categories]
        )
    assert early_result.num_detections_received == len(res)


@pytest.mark.parametrize("case", list(CASES))
def test_cut_batches_then_more_batches(files, case, monkeypatch):
    """Batches cut one after another (a model handing over large batches): every kept row keeps its arrival
    number in the whole stream, and a later batch still competes with the rows held from earlier ones (an
    image straddling two batches; every category)."""
    protocol, budgets, group, cap = CASES[case]
    gt_path, pred_path, _, res = files["coco" if protocol == "coco" else "lvis", "grouped"]
    early, early_result, dropped = _evaluate(
        gt_path, pred_path, protocol, budgets, cut_early=True, monkeypatch=monkeypatch, parts=3
    )
    assert dropped > 0
    late, late_result, _ = _evaluate(gt_path, pred_path, protocol, budgets, cut_early=False, monkeypatch=monkeypatch)
    np.testing.assert_array_equal(early.engine, late.engine)
    np.testing.assert_array_equal(early.seq, late.seq)
    key = "image_id" if group == "image" else "category_id"
    assert early.seq.tolist() == _stable_cut([r[key] for r in res], [r["score"] for r in res], cap)
    assert early_result.metrics == late_result.metrics


@pytest.mark.parametrize("case", ["lvis-standard", "lvis-fixed", "coco-glip"])
def test_early_cut_score_equals_the_oracles(files, case, monkeypatch):
    """``score_files`` with the cut made early: the reference tools' numbers on the same file."""
    monkeypatch.setattr(streaming, "_CUT_EARLY_FROM", 0)
    protocol, budgets, _, cap = CASES[case]
    gt_path, pred_path, gt, res = files["coco" if protocol == "coco" else "lvis", "chunked"]
    got = score_files(gt_path, pred_path, protocol, **budgets).metrics
    if protocol == "lvis":
        ref, _ = lvis_standard(gt, res)
    elif protocol == "lvis-fixed":
        ref, _ = devil_fixed_ap(gt, res, cap)
    else:
        ref, _ = pycocotools_bbox(gt, limit_per_image(res, cap))
    assert_same(got, ref)


def test_a_bad_row_the_cap_would_drop_is_still_reported(files, tmp_path, monkeypatch):
    """The cut is made only on a block found clean: a bad value in a row it would drop raises as before."""
    gt_path, _, _, res = files["lvis", "grouped"]
    bad = [dict(r) for r in res]
    first_image = [i for i, r in enumerate(bad) if r["image_id"] == bad[0]["image_id"]]
    lowest = max(first_image, key=lambda i: (-bad[i]["score"], i))  # the last of the lowest: always cut
    bad[lowest]["category_id"] = 999  # not a GT category, on a detection the 300 cap drops
    assert lowest not in _stable_cut([r["image_id"] for r in res], [r["score"] for r in res], 300)
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    messages = []
    for threshold in (0, 1 << 62):
        monkeypatch.setattr(streaming, "_CUT_EARLY_FROM", threshold)
        with pytest.raises(DataError, match="category_id is not a GT category") as err:
            score_files(gt_path, tmp_path / "bad.json", "lvis")
        messages.append(str(err.value))
    assert messages[0] == messages[1] and f"detection {lowest} " in messages[0]


def _zipf_groups(rng, n: int, m: int, ids: np.ndarray) -> np.ndarray:
    weights = 1.0 / np.arange(1, m + 1)
    return ids[rng.choice(m, n, p=weights / weights.sum())]


@pytest.mark.parametrize("ids", ["small", "huge"])  # counted groups / groups found by sorting (ids beyond a table)
@pytest.mark.parametrize("order", ["grouped", "scattered"])
def test_first_k_per_group_is_the_stable_sort_cut(ids, order):
    """Every size class (padded matrices), uneven and even groups, -0.0 tying 0.0, k from 0 to beyond every group."""
    rng = np.random.default_rng(7)
    for _ in range(300):
        n, m, k = int(rng.integers(0, 400)), int(rng.integers(1, 15)), int(rng.integers(0, 40))
        values = np.arange(m) * (10**12 if ids == "huge" else 3) + (10**15 if ids == "huge" else 0)
        groups = _zipf_groups(rng, n, m, values)
        if order == "grouped":
            groups = np.sort(groups)
        scores = np.round(rng.random(n), int(rng.integers(0, 3)))
        scores[rng.random(n) < 0.1] *= -1  # includes -0.0
        expect = _stable_cut(groups.tolist(), scores.tolist(), k) if k > 0 else []
        assert first_k_per_group(groups, scores, k).tolist() == expect
        assert first_k_per_group(groups.astype(np.float64), scores, k).tolist() == expect  # the engine's column
