"""Cross-rank helpers for the losses; all are identities when no process group exists."""

from __future__ import annotations

import torch

from detclip_bench.dist import all_gather_object, get_rank, get_world_size, is_distributed

__all__ = ["gather_strings", "gather_with_grad", "mean_over_ranks"]


def mean_over_ranks(x: torch.Tensor) -> torch.Tensor:
    """All-reduce mean of a detached scalar (loss normalisers such as the positive count)."""
    if not is_distributed():
        return x
    import torch.distributed as dist

    x = x.detach().clone()
    dist.all_reduce(x)
    return x / get_world_size()


def gather_with_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Concatenate ``x`` (N_r, …) from every rank along dim 0; gradients flow to the local part.

    Returns the gathered tensor and the offset of this rank's rows in it (FILIP's pattern: each
    rank scores its own captions against every rank's images). Ranks may hold different N_r.
    """
    if not is_distributed():
        return x, 0
    import torch.distributed as dist

    sizes = [int(n) for n in all_gather_object(int(x.shape[0]))]
    biggest = max(sizes)
    padded = torch.zeros((biggest, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x.detach()
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    rank = get_rank()
    parts = [p[:n] for p, n in zip(parts, sizes, strict=True)]
    parts[rank] = x
    return torch.cat(parts), sum(sizes[:rank])


def gather_strings(strings: list[str]) -> list[str]:
    """The union of every rank's strings, de-duplicated, in rank-then-local order (same on all ranks)."""
    seen: dict[str, None] = {}
    for part in all_gather_object(list(strings)):
        for s in part:
            seen.setdefault(s, None)
    return list(seen)
