"""torch.distributed set-up and helpers that also work when no process group exists (one process).

One process without ``WORLD_SIZE`` in the environment runs undistributed; under ``torchrun`` (or any
launcher exporting ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT``) :func:`init_distributed`
creates the process group, NCCL on GPU and gloo on CPU. Evaluation shards images over ranks with
these helpers; the trainer uses the same :class:`DistContext`. torch is imported inside the functions
so that importing this module (every CLI verb does) stays cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "DistContext",
    "all_gather_object",
    "barrier",
    "cleanup",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "resolve_device",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: its rank among ``world_size`` processes and the device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(device: str) -> str:
    """``--device`` as torch takes it: ``auto`` is ``cuda`` when torch sees a GPU, else ``cpu``; others as given."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def init_distributed(device: str = "auto") -> DistContext:
    """Create the process group if the environment asks for one; pick the device (``auto``: CUDA when present).

    Under a launcher each rank takes GPU ``LOCAL_RANK``; one process given ``cuda:N`` takes GPU N."""
    import torch
    import torch.distributed as tdist

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if use_cuda:
        index = local_rank
        if world_size == 1 and device.startswith("cuda:"):
            index = torch.device(device).index
        torch.cuda.set_device(index)
        dev = torch.device("cuda", index)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    return DistContext(rank, world_size, local_rank, dev)


def cleanup() -> None:
    """Destroy the process group, if one exists."""
    if is_distributed():
        import torch.distributed as tdist

        tdist.destroy_process_group()


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
