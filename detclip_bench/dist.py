"""torch.distributed helpers that also work when no process group exists (one process)."""

from __future__ import annotations

from typing import Any

__all__ = ["all_gather_object", "barrier", "get_rank", "get_world_size", "is_distributed", "is_main_process"]


def is_distributed() -> bool:
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    if not is_distributed():
        return 0
    import torch.distributed as dist

    return dist.get_rank()


def get_world_size() -> int:
    if not is_distributed():
        return 1
    import torch.distributed as dist

    return dist.get_world_size()


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_distributed():
        import torch.distributed as dist

        dist.barrier()


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (a one-element list without a process group)."""
    if not is_distributed():
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
