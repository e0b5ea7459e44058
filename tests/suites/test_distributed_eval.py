"""`torchrun ... eval`: each rank predicts a strided shard, rank 0 scores the merged pool — exactly."""

import socket

import torch.multiprocessing as mp

from detclip_bench.suites import get_suite
from detclip_bench.suites.runner import evaluate_suite
from tests.suites.test_runner import _detector_from, _make_root


def _rank_worker(rank: int, world: int, port: int, root, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        import json

        gt = json.loads((root / "lvis" / "lvis_v1_val.json").read_text())
        det, _ = _detector_from(root, gt, noise_seed=3)
        result = evaluate_suite(det, get_suite("mini-lvis-val"), root, out_dir=root.parent / out_dir, progress=False)
        assert (result is None) == (rank != 0)  # only rank 0 reports
        assert det.calls >= 1  # every rank ran the model on its own shard
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_write_the_single_process_results(tmp_path):
    root, gt = _make_root(tmp_path, n_images=7)  # odd: the shards are uneven
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_rank_worker, args=(2, port, root, "two"), nprocs=2, join=True, start_method="spawn")
    evaluate_suite(
        _detector_from(root, gt, noise_seed=3)[0],
        get_suite("mini-lvis-val"),
        root,
        out_dir=tmp_path / "one",
        progress=False,
    )
    for name in ("results.json", "lvis-val-lvis-fixed.csv", "lvis-val-lvis-standard.csv"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name
