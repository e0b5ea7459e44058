"""Cross-rank helpers for the losses; all are identities when no process group exists."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from detclip_bench.dist import all_gather_object, get_rank, get_world_size, is_distributed

__all__ = [
    "encode_once",
    "gather_named_strings",
    "gather_strings",
    "gather_with_grad",
    "mean_over_ranks",
    "row_counts",
]


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """All-reduce mean of a detached scalar (loss normalisers such as the positive count)."""
    if not is_distributed():
        return x
    import torch.distributed as dist

    x = x.detach().clone()
    dist.all_reduce(x)
    return x / get_world_size()


class _AllGatherRows(torch.autograd.Function):
    """all_gather of equally shaped tensors → (W, …), with the adjoint in backward.

    The gathered tensor feeds every rank's loss, so the gradient of rank r's input is the *sum*
    over ranks of the gradient each loss sends to slot r: all-reduce the incoming gradient, keep
    slot r. (All-reduce instead of reduce-scatter: one code path for gloo and NCCL.)
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        ctx.rank = get_rank()
        parts = [torch.empty_like(x) for _ in range(get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank]


def row_counts(n: int, device: torch.device) -> list[int]:
    """Every rank's row count, exchanged as a 1-element int64 tensor on ``device`` (NCCL-safe)."""
    import torch.distributed as dist

    mine = torch.tensor([n], dtype=torch.int64, device=device)
    parts = [torch.empty_like(mine) for _ in range(get_world_size())]
    dist.all_gather(parts, mine)
    return [int(p.item()) for p in parts]


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Concatenate ``x`` (N_r, …) from every rank along dim 0, differentiably for *every* row.

    Returns the gathered tensor and the offset of this rank's rows in it (FILIP's pattern: each
    rank scores its own captions against every rank's images). Ranks may hold different N_r
    (padded to the largest for the collective). When ``x`` requires grad, backward sends each
    rank the summed gradient of all ranks' losses w.r.t. its rows, so after DDP averages the
    parameter gradients they equal the single-process gradient of the mean of the ranks' losses
    (= the global-batch loss when ranks hold equal numbers of captions). Tensors that need no
    gradient (masks) take a plain all_gather.
    """
    if not is_distributed():
        return x, 0
    import torch.distributed as dist

    sizes = row_counts(x.shape[0], x.device)
    biggest = max(sizes)
    if x.shape[0] < biggest:
        x_pad = torch.cat([x, x.new_zeros((biggest - x.shape[0], *x.shape[1:]))])
    else:
        x_pad = x
    if x.requires_grad:
        stacked = _AllGatherRows.apply(x_pad)
    else:
        parts = [torch.empty_like(x_pad) for _ in sizes]
        dist.all_gather(parts, x_pad.contiguous())
        stacked = parts
    rank = get_rank()
    return torch.cat([stacked[r][:n] for r, n in enumerate(sizes)]), sum(sizes[:rank])


def gather_strings(strings: list[str]) -> list[str]:
    """The union of every rank's strings, de-duplicated, in rank-then-local order (same on all ranks)."""
    seen: dict[str, None] = {}
    for part in all_gather_object(list(strings)):
        for s in part:
            seen.setdefault(s, None)
    return list(seen)


def gather_named_strings(strings: list[str], names: list[str]) -> tuple[list[str], list[str]]:
    """:func:`gather_strings` of ``strings`` plus, for each, the name it came with (its first rank's)."""
    seen: dict[str, str] = {}
    for part in all_gather_object(list(zip(strings, names, strict=True))):
        for s, n in part:
            seen.setdefault(s, n)
    return list(seen), list(seen.values())


def encode_once(encode: Callable[[Sequence[str]], torch.Tensor], strings: list[str]) -> torch.Tensor:
    """``encode(strings)`` (M, D) for a list that is the same on every rank, each string encoded once per step.

    Rank r encodes the r-th contiguous share and the shares are gathered with gradient
    (:func:`gather_with_grad`), so the text tower's activations scale with M / W per rank instead of M.
    DDP's average of the parameter gradients equals the one-process gradient, as when every rank encoded
    everything: the gathered rows feed every rank's loss and their gradient is summed back to their owner.
    """
    world = get_world_size()
    if not is_distributed() or world == 1:
        return encode(strings)
    rank = get_rank()
    lo, hi = rank * len(strings) // world, (rank + 1) * len(strings) // world
    # an empty share still runs the tower on one string (and drops it), so every rank joins the
    # gradient collective in backward the same way
    local = encode(strings[lo:hi]) if hi > lo else encode(strings[:1])[:0]
    gathered, _ = gather_with_grad(local)
    return gathered
