"""Sharded / streamed accumulation equals one-shot exactly, in one process and across 2 gloo ranks."""

import pickle

import numpy as np
import pytest
import torch.multiprocessing as mp

from detclip_bench.metrics import CocoEvaluator, LvisEvaluator
from detclip_bench.metrics.topk import GroupTopK

from .conftest import feed_by_image


def _same_rows(a, b) -> None:
    np.testing.assert_array_equal(a.engine, b.engine)
    np.testing.assert_array_equal(a.seq, b.seq)


@pytest.mark.parametrize("protocol", ["fixed", "standard"])
def test_shards_merge_to_one_shot(lvis_case, protocol):
    gt, dets = lvis_case
    one = LvisEvaluator(gt, protocol=protocol, topk_per_category=40)
    one.update(dets.image_ids, dets.boxes_xyxy, dets.scores, dets.category_ids)
    cuts = np.searchsorted(dets.image_ids, [30, 75, 100])  # contiguous shards, as rank order concatenates them
    states = []
    for part in np.split(np.arange(len(dets)), cuts):
        shard = LvisEvaluator(gt, protocol=protocol, topk_per_category=40)
        feed_by_image(shard, dets.select(part))
        states.append(pickle.loads(pickle.dumps(shard.state_dict())))
    merged = LvisEvaluator(gt, protocol=protocol, topk_per_category=40)
    merged.merge(states)
    _same_rows(merged.pool.result(), one.pool.result())
    assert merged.compute().metrics == one.compute().metrics


@pytest.mark.parametrize("id_offset", [0, 10**9])  # counted groups / sorted groups (ids too large to count)
def test_compaction_keeps_exact_topk(monkeypatch, id_offset):
    """Force a compaction after every update: the held set must equal a one-shot stable top-K."""
    import detclip_bench.metrics.topk as topk

    monkeypatch.setattr(topk, "_MIN_BUFFER", 1)
    rng = np.random.default_rng(0)
    n = 5000
    cats = rng.integers(0, 7, n) + id_offset
    cats[cats == 6 + id_offset] = 5 + id_offset
    cats[:20] = 6 + id_offset  # one group never exceeds k: it must survive whole
    scores = np.round(rng.random(n), 1)
    boxes = np.zeros((n, 4))
    streamed = GroupTopK(25, "category")
    for a in range(0, n, 97):
        b = min(n, a + 97)
        streamed.add(np.arange(a, b), boxes[a:b], scores[a:b], cats[a:b])
    expect = []
    for c in range(id_offset, id_offset + 7):
        idx = [i for i in range(n) if cats[i] == c]
        expect += sorted(idx, key=lambda i: scores[i], reverse=True)[:25]
    assert sorted(streamed.result()["image_ids"].tolist()) == sorted(expect)


def _rank_worker(rank: int, world: int, port: int, gt, dets, out_path: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        half = np.array_split(np.arange(len(dets)), world)[rank]
        ev = LvisEvaluator(gt, protocol="fixed", topk_per_category=40)
        feed_by_image(ev, dets.select(half))
        ev.synchronize()
        if rank == 0:
            with open(out_path, "wb") as fh:
                pickle.dump(ev.compute().metrics, fh)
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_equal_one_process(lvis_case, tmp_path):
    import socket

    gt, dets = lvis_case
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "metrics.pkl"
    mp.start_processes(_rank_worker, args=(2, port, gt, dets, str(out)), nprocs=2, join=True, start_method="spawn")
    one = LvisEvaluator(gt, protocol="fixed", topk_per_category=40)
    one.update(dets.image_ids, dets.boxes_xyxy, dets.scores, dets.category_ids)
    assert pickle.loads(out.read_bytes()) == one.compute().metrics


def test_synchronize_is_noop_without_process_group(coco_case):
    gt, dets = coco_case
    ev = CocoEvaluator(gt)
    ev.update(dets.image_ids, dets.boxes_xyxy, dets.scores, dets.category_ids)
    before = ev.compute().metrics
    ev.synchronize()
    assert ev.compute().metrics == before


def _rows(rng, image, n):
    return (np.full(n, image, np.int64), rng.random((n, 4)), np.round(rng.random(n), 1), rng.integers(1, 4, n))


def test_per_image_fast_path_equals_exact_selection():
    """Images fed once with ≤ k rows skip the sort; a repeated image or a big chunk falls back to it."""
    rng = np.random.default_rng(0)
    chunks = [_rows(rng, i, n) for i, n in ((1, 3), (2, 2), (3, 3))]
    fast = GroupTopK(3, "image")
    for c in chunks:
        fast.add(*c)
    assert not fast._needs_select
    exact = GroupTopK(3, "image")
    exact._needs_select = True
    for c in chunks:
        exact.add(*c)
    for col in ("image_ids", "scores", "seq"):
        assert np.array_equal(fast.result()[col], exact.result()[col])
    fast.add(*_rows(rng, 2, 3))  # image 2 again: now 5 rows for it, only 3 may survive
    assert fast._needs_select
    kept = fast.result()
    assert (kept["image_ids"] == 2).sum() == 3 and len(kept["scores"]) == 9


def test_buffer_growth_keeps_every_row_in_engine_layout():
    """An uncapped pool grows past its first capacity many times; every row comes back, xyxy round-trips."""
    rng = np.random.default_rng(3)
    pool = GroupTopK(None, "image")
    chunks = [_rows(rng, i, int(rng.integers(0, 900))) for i in range(40)]
    for c in chunks:
        pool.add(*c)
    kept = pool.result()
    image_ids, boxes, scores, cats = (np.concatenate(col) for col in zip(*chunks, strict=True))
    assert len(kept) == len(scores) == pool.num_seen
    np.testing.assert_array_equal(kept["image_ids"], image_ids)
    np.testing.assert_array_equal(kept["scores"], scores)
    np.testing.assert_array_equal(kept["category_ids"], cats)
    np.testing.assert_array_equal(kept["seq"], np.arange(len(scores)))
    np.testing.assert_allclose(kept["boxes"], boxes, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(kept.engine[:, 3:5], boxes[:, 2:] - boxes[:, :2])  # w, h as the oracles get them


def test_reserved_pool_equals_unreserved(lvis_case):
    """Reserving capacity up front (what the evaluators do) changes nothing about what is kept."""
    _, dets = lvis_case
    pools = [GroupTopK(40, "category"), GroupTopK(40, "category")]
    pools[0].reserve_for(60)
    for pool in pools:
        for a in range(0, len(dets), 500):
            part = dets.select(np.arange(a, min(a + 500, len(dets))))
            pool.add(part.image_ids, part.boxes_xyxy, part.scores, part.category_ids)
    _same_rows(pools[0].result(), pools[1].result())


def test_ids_beyond_float64_exactness_are_refused():
    from detclip_bench.errors import DataError
    from detclip_bench.metrics.synthetic import make_coco_like

    gt = make_coco_like(3, 2, seed=1)
    gt["images"][0]["id"] = 2**53 + 1
    for ann in gt["annotations"]:
        if ann["image_id"] == 1:
            ann["image_id"] = 2**53 + 1
    with pytest.raises(DataError, match="2\\*\\*53"):
        CocoEvaluator(gt)


def test_ground_truth_is_loaded_once_per_file_version(tmp_path, monkeypatch, coco_case):
    """Fine-tuning scores the same val file every epoch: one load, until the file changes."""
    import copy
    import json
    import os

    from detclip_bench.metrics.gt import GroundTruth

    gt, dets = copy.deepcopy(coco_case)
    path = tmp_path / "val.json"
    path.write_text(json.dumps(gt))
    loads = []
    real = GroundTruth.load.__func__
    monkeypatch.setattr(
        GroundTruth, "load", classmethod(lambda cls, g, *, lvis: loads.append(g) or real(cls, g, lvis=lvis))
    )
    first = GroundTruth.cached(path, lvis=False)
    assert GroundTruth.cached(path, lvis=False) is first and len(loads) == 1
    scores = []
    for source in (first, first, gt):  # the shared GT twice (evaluation must not change it), then fresh
        ev = CocoEvaluator(source)
        ev.update(dets.image_ids, dets.boxes_xyxy, dets.scores, dets.category_ids)
        scores.append(ev.compute().metrics)
    assert scores[0] == scores[1] == scores[2]
    gt["annotations"] = gt["annotations"][:-1]
    path.write_text(json.dumps(gt))
    os.utime(path, ns=(first_ns := path.stat().st_mtime_ns + 10**9, first_ns))
    assert GroundTruth.cached(path, lvis=False).num_annotations == first.num_annotations - 1
    with pytest.raises(ValueError, match="COCO ground truth"):
        LvisEvaluator(first)


def test_cached_ground_truth_of_a_missing_file_is_a_data_error(tmp_path):
    from detclip_bench.errors import DataError
    from detclip_bench.metrics.gt import GroundTruth

    with pytest.raises(DataError, match="cannot read") as err:
        GroundTruth.cached(tmp_path / "absent.json", lvis=True)
    assert "absent.json" in str(err.value)
