"""The cross-rank loss helpers under a real 2-process gloo group (file store: no network).

``gather_with_grad`` is what makes the image-text loss see every rank's regions as negatives;
it must return all rows in rank order, let gradients reach only the local rows, and cope with
ranks holding different numbers of rows (and bool masks).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from reference_model.detclipv2.distributed import gather_strings, gather_with_grad, mean_over_ranks

WORLD = 2


def _worker(rank: int, store: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        x = torch.arange(3 * (rank + 1), dtype=torch.float32).reshape(rank + 1, 3).add(10 * rank).requires_grad_()
        gathered, offset = gather_with_grad(x)
        weights = torch.arange(gathered.numel(), dtype=torch.float32).reshape(gathered.shape)
        (gathered * weights).sum().backward()
        mask, _ = gather_with_grad(torch.tensor([rank == 0] * (rank + 2)))
        result = {
            "gathered": gathered.detach(),
            "offset": offset,
            "grad": x.grad,
            "weights": weights,
            "mask": mask,
            "strings": gather_strings([["cat", "dog"], ["dog", "zebra", "cat"]][rank]),
            "mean": mean_over_ranks(torch.tensor(float(rank + 1))),
        }
        torch.save(result, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_gather_with_grad_strings_and_mean_on_two_ranks(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD))
    expected = torch.cat([torch.arange(3.0).reshape(1, 3), torch.arange(6.0).reshape(2, 3) + 10])
    for r in (r0, r1):
        torch.testing.assert_close(r["gathered"], expected)  # rank order, unequal row counts
        assert r["strings"] == ["cat", "dog", "zebra"]  # union, rank-then-local order, same on every rank
        assert r["mean"].item() == 1.5
        assert r["mask"].dtype == torch.bool and r["mask"].tolist() == [True, True, False, False, False]
    assert (r0["offset"], r1["offset"]) == (0, 1)
    # the gradient of each rank's local rows is exactly its slice of the weights; other rows get none
    torch.testing.assert_close(r0["grad"], r0["weights"][0:1])
    torch.testing.assert_close(r1["grad"], r1["weights"][1:3])


def test_helpers_are_identities_without_a_process_group():
    x = torch.ones(2, 4, requires_grad=True)
    gathered, offset = gather_with_grad(x)
    assert gathered is x and offset == 0
    assert gather_strings(["a", "b", "a"]) == ["a", "b"]
    assert mean_over_ranks(torch.tensor(3.0)).item() == 3.0
