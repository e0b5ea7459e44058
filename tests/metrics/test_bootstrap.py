"""Bootstrap replicates are the evaluator itself: all-ones weights give its numbers bit for bit, integer
weights give what it computes on the physically duplicated image set, for COCO, LVIS standard and Fixed AP."""

import numpy as np
import pytest

from detclip_bench.metrics import CocoEvaluator, LvisEvaluator
from detclip_bench.metrics.bootstrap import BootstrapState, bootstrap_ap, paired_bootstrap, resample_weights
from detclip_bench.metrics.synthetic import Detections, duplicate_images

K_FIXED = 40  # the lvis_case's categories hold ~700 detections each: the Fixed-AP cut binds everywhere


def _evaluator(kind: str, gt, *, deep: bool = True):
    if kind == "coco":
        return CocoEvaluator(gt, max_dets_per_image=100)
    if kind == "coco-uncapped":  # pycocotools' own per-(image, category) caps 1/10/100 do the cutting
        return CocoEvaluator(gt, max_dets_per_image=None)
    if kind == "lvis-standard":
        return LvisEvaluator(gt, protocol="standard")
    return LvisEvaluator(
        gt, protocol="fixed", topk_per_category=K_FIXED, pool_per_category=4 * K_FIXED if deep else None
    )


def _fed(ev, dets: Detections):
    ev.update(dets.image_ids, dets.boxes_xyxy, dets.scores, dets.category_ids)
    return ev


def _case(kind, lvis_case, coco_case):
    return coco_case if kind.startswith("coco") else lvis_case


def _weights(n: int, seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).choice([0, 1, 2, 3], size=n, p=[0.3, 0.3, 0.25, 0.15])
    assert (w == 0).any() and (w >= 2).any()
    return w


def _straddles(dets: Detections, image_ids: np.ndarray, weights: np.ndarray, k: int) -> bool:
    """Whether in some category the K cut falls inside one detection's copies (independently of the code)."""
    w = weights[np.searchsorted(image_ids, dets.image_ids)]
    for c in np.unique(dets.category_ids):
        idx = np.flatnonzero(dets.category_ids == c)
        order = idx[np.lexsort((idx, -dets.scores[idx]))]
        before = np.cumsum(w[order]) - w[order]
        if ((before < k) & (before + w[order] > k) & (w[order] >= 2)).any():
            return True
    return False


@pytest.mark.parametrize("kind", ["coco", "coco-uncapped", "lvis-standard", "lvis-fixed"])
def test_all_ones_is_the_evaluator_bit_for_bit(kind, lvis_case, coco_case):
    gt, dets = _case(kind, lvis_case, coco_case)
    ev = _fed(_evaluator(kind, gt), dets)
    ref = ev.compute()
    state = BootstrapState(ev)
    ones = np.ones(len(state.image_ids), np.int64)
    got = state.replicate(ones)
    assert list(got) == list(ref.metrics)
    assert got == ref.metrics  # exact float equality, every key
    per_cat = state.replicate_per_category(ones)
    for row in ref.categories:
        assert (np.isnan(row.ap) and np.isnan(per_cat[row.id])) or per_cat[row.id] == row.ap
    # the vectorised path agrees to rounding
    fast = state.replicates(ones[None, :])
    assert max(abs(fast[k][0] - v) for k, v in ref.metrics.items()) < 1e-14


@pytest.mark.parametrize("kind", ["coco", "coco-uncapped", "lvis-standard", "lvis-fixed"])
@pytest.mark.parametrize("seed", [1, 2])
def test_integer_weights_equal_the_duplicated_image_set(kind, seed, lvis_case, coco_case):
    gt, dets = _case(kind, lvis_case, coco_case)
    state = BootstrapState(_fed(_evaluator(kind, gt), dets))
    w = _weights(len(state.image_ids), seed)
    dup_gt, dup_dets = duplicate_images(gt, dets, w)
    physical = _fed(_evaluator(kind, dup_gt, deep=False), dup_dets).compute()
    got = state.replicate(w)
    assert got == physical.metrics
    assert got != state.point  # the weights changed the numbers
    per_cat = state.replicate_per_category(w)
    for row in physical.categories:
        assert (np.isnan(row.ap) and np.isnan(per_cat[row.id])) or per_cat[row.id] == row.ap
    if kind == "lvis-fixed":
        assert _straddles(dets, state.image_ids, w, K_FIXED), "the test must exercise a cut inside a detection's copies"
        assert (physical.to_dataframe()["num_dets"] == K_FIXED).all()  # the cut binds in every category
    fast = state.replicates(w[None, :])
    assert max(abs(fast[k][0] - v) for k, v in physical.metrics.items()) < 1e-14


def test_federated_rules_are_exercised_under_weights(lvis_case):
    """The weighted images carry neg_category_ids and not_exhaustive_category_ids (the duplicated-set test
    above then covers them), and dropping an image can remove a category's only GT: -1 leaves the means."""
    gt, dets = lvis_case
    state = BootstrapState(_fed(_evaluator("lvis-standard", gt), dets))
    w = _weights(len(state.image_ids), 1)
    kept = {int(i) for i, n in zip(state.image_ids, w, strict=True) if n}
    images = [img for img in gt["images"] if img["id"] in kept]
    assert any(img["neg_category_ids"] for img in images)
    assert any(img["not_exhaustive_category_ids"] for img in images)
    # every GT of some category sits on dropped images in this replicate: it must drop out, not count as 0
    has_gt = {a["category_id"] for a in gt["annotations"]}
    left = {a["category_id"] for a in gt["annotations"] if a["image_id"] in kept}
    assert has_gt - left
    per_cat = state.replicate_per_category(w)
    assert all(np.isnan(per_cat[c]) for c in has_gt - left)


def test_fixed_ap_deeper_pool_scores_the_same(lvis_case):
    gt, dets = lvis_case
    plain = _fed(LvisEvaluator(gt, protocol="fixed", topk_per_category=K_FIXED), dets).compute()
    deep = _fed(LvisEvaluator(gt, protocol="fixed", topk_per_category=K_FIXED, pool_per_category=500), dets).compute()
    assert deep.metrics == plain.metrics
    assert deep.num_detections_evaluated == plain.num_detections_evaluated
    with pytest.raises(ValueError, match="pool_per_category"):
        LvisEvaluator(gt, protocol="fixed", topk_per_category=K_FIXED, pool_per_category=K_FIXED - 1)
    with pytest.raises(ValueError, match="fixed"):
        LvisEvaluator(gt, protocol="standard", pool_per_category=500)


def test_fixed_ap_refuses_a_replicate_beyond_the_held_pool(lvis_case):
    gt, dets = lvis_case
    state = BootstrapState(_fed(_evaluator("lvis-fixed", gt, deep=False), dets))
    assert state.replicate(np.ones(len(state.image_ids), int)) == state.point
    w = _weights(len(state.image_ids), 3)  # drops ~30% of images: the K-th moves past what was held
    with pytest.raises(ValueError, match="pool_per_category"):
        state.replicate(w)


@pytest.mark.parametrize(
    "weights, match",
    [
        (lambda n: np.ones(n - 1, int), "one multiplicity per image"),
        (lambda n: np.ones((2, n + 3), int), "one multiplicity per image"),
        (lambda n: np.r_[-1, np.ones(n - 1, int)], ">= 0"),
        (lambda n: np.full(n, 0.5), "whole numbers"),
        (lambda n: np.array(["1"] * n), "integers"),
    ],
)
def test_bad_weights_are_value_errors(lvis_case, weights, match):
    gt, dets = lvis_case
    state = BootstrapState(_fed(_evaluator("lvis-standard", gt), dets))
    with pytest.raises(ValueError, match=match):
        state.replicate(weights(len(state.image_ids)))
    with pytest.raises(ValueError, match=match):
        state.replicates(np.atleast_2d(weights(len(state.image_ids))))


def test_groups_follow_the_frequency_rule_and_per_category(lvis_case):
    gt, dets = lvis_case
    state = BootstrapState(_fed(_evaluator("lvis-fixed", gt), dets))
    rare = [c["id"] for c in gt["categories"] if c["frequency"] == "r"]
    groups = {"rare": rare, "first10": list(range(1, 11))}
    W = resample_weights(len(state.image_ids), 6, seed=4)
    fast = state.replicates(W, groups=groups, per_category=True)
    for r in range(len(W)):
        exact = state.replicate(W[r], groups=groups)
        assert exact["AP[rare]"] == exact["APr"]
        assert abs(fast["AP[rare]"][r] - exact["APr"]) < 1e-14
        assert abs(fast["AP[first10]"][r] - exact["AP[first10]"]) < 1e-14
        per_cat = state.replicate_per_category(W[r])
        got = fast["per_category"][r]
        ref = np.array([per_cat[int(c)] for c in state.category_ids])
        assert np.array_equal(np.isnan(got), np.isnan(ref))
        assert np.nanmax(np.abs(got - ref)) < 1e-14
    with pytest.raises(ValueError, match="not in the GT"):
        state.replicate(W[0], groups={"bad": [10**6]})


def test_bootstrap_ap_intervals(lvis_case):
    gt, dets = lvis_case
    ev = _fed(_evaluator("lvis-standard", gt), dets)
    ref = ev.compute().metrics
    out = bootstrap_ap(ev, n_replicates=40, seed=7, groups={"f": [1, 2, 3]}, return_replicates=True)
    assert set(out) == {*ref, "AP[f]"}
    for key, v in ref.items():
        e = out[key]
        assert e["point"] == v and e["seed"] == 7 and e["confidence"] == 0.95
        lo, hi = e["interval"]
        assert lo <= hi and e["se"] > 0 and e["n_replicates"] <= 40
        defined = e["replicates"][e["replicates"] > -1]
        assert lo <= np.median(defined) <= hi
        assert e["bias"] == pytest.approx(defined.mean() - v, abs=1e-12)
    assert out["AP"]["n_replicates"] == 40
    again = bootstrap_ap(ev, n_replicates=40, seed=7)
    assert again["AP"]["interval"] == out["AP"]["interval"]  # the seed fixes the draws
    other = bootstrap_ap(ev, n_replicates=40, seed=8)
    assert other["AP"]["interval"] != out["AP"]["interval"]
    # the replicates are the documented multinomial draws, through the exact path too
    W = resample_weights(len(ev.gt.image_ids), 3, seed=7)
    for r in range(3):
        assert abs(out["AP"]["replicates"][r] - BootstrapState(ev).replicate(W[r])["AP"]) < 1e-14
    with pytest.raises(ValueError, match="n_replicates"):
        bootstrap_ap(ev, n_replicates=0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ap(ev, n_replicates=5, confidence=1.5)


def test_resample_weights_are_image_draws():
    w = resample_weights(50, 200, seed=3)
    assert w.shape == (200, 50) and (w.sum(1) == 50).all() and (w >= 0).all()
    assert np.array_equal(w, resample_weights(50, 200, seed=3))
    assert abs(w.mean() - 1) < 0.05 and (w == 0).mean() > 0.3  # ~e^-1 of the images are left out


def test_paired_bootstrap(lvis_case):
    gt, dets = lvis_case
    a = BootstrapState(_fed(_evaluator("lvis-standard", gt), dets))
    same = paired_bootstrap(a, a, n_replicates=20, seed=1)
    assert all(e["delta"] == 0 and e["interval"] == [0.0, 0.0] for e in same.values() if e["delta"] is not None)
    assert same["AP"]["share_le_0"] == 1.0
    worse = dets.select(np.ones(len(dets), bool))
    worse.scores = np.where(np.random.default_rng(0).random(len(dets)) < 0.5, worse.scores, worse.scores[::-1])
    b = BootstrapState(_fed(_evaluator("lvis-standard", gt), worse))
    out = paired_bootstrap(b, a, n_replicates=30, seed=2, groups={"g": [1, 2]}, return_replicates=True)
    assert out["AP"]["delta"] == a.point["AP"] - b.point["AP"] > 0
    assert "AP[g]" in out
    lo, hi = out["AP"]["interval"]
    assert lo <= out["AP"]["delta"] <= hi
    assert out["AP"]["share_le_0"] == np.mean(out["AP"]["replicates"] <= 0)
    # pairing: the interval of the difference is narrower than either model's own interval
    own = bootstrap_ap(a, n_replicates=30, seed=2)["AP"]["interval"]
    assert hi - lo < own[1] - own[0]
    # A and B drawn with the same weights: B's replicate r minus A's replicate r
    W = resample_weights(len(a.image_ids), 2, seed=2)
    assert abs(out["AP"]["replicates"][1] - (a.replicate(W[1])["AP"] - b.replicate(W[1])["AP"])) < 1e-14


def test_paired_bootstrap_refuses_different_image_sets(lvis_case):
    gt, dets = lvis_case
    a = _fed(_evaluator("lvis-standard", gt), dets)
    fewer = {**gt, "images": gt["images"][:-1]}
    fewer["annotations"] = [x for x in gt["annotations"] if x["image_id"] != gt["images"][-1]["id"]]
    b = _fed(_evaluator("lvis-standard", fewer), dets.select(dets.image_ids != gt["images"][-1]["id"]))
    with pytest.raises(ValueError, match="same image set"):
        paired_bootstrap(a, b, n_replicates=5)


def test_fixed_ap_cut_pruning_is_a_true_bound(lvis_case):
    """Categories whose weighted count cannot reach K skip the cut: the bound (Cauchy-Schwarz over images)
    must hold for every replicate, and pruning must not change any multiplicity."""
    gt, dets = lvis_case
    k = 1200  # above every category's pool here: most are pruned, a few are still checked
    state = BootstrapState(
        _fed(LvisEvaluator(gt, protocol="fixed", topk_per_category=k, pool_per_category=2 * k), dets)
    )
    cats = state.category_ids
    img = np.searchsorted(state.image_ids, dets.image_ids)
    counts = np.zeros((len(cats), len(state.image_ids)))
    np.add.at(counts, (np.searchsorted(cats, dets.category_ids), img), 1)
    np.testing.assert_allclose(state._cut_norm, np.sqrt((counts**2).sum(1)))
    W = resample_weights(len(state.image_ids), 50, seed=9)
    totals = W @ counts.T  # (R, K): weighted count per category
    norms = np.sqrt((W.astype(float) ** 2).sum(1))
    assert (totals <= norms[:, None] * state._cut_norm[None, :] + 1e-9).all()
    pruned = state._cut_norm * norms.max() <= k
    assert pruned.any() and not pruned.all()
    got = state._multiplicity(W)
    state._cut_norm = np.full_like(state._cut_norm, np.inf)
    assert np.array_equal(got, state._multiplicity(W))
