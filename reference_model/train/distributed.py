"""DDP wrapping for training. Process-group set-up (:func:`detclip_bench.dist.init_distributed`) is shared
with evaluation and lives in the benchmark core; streams are split by whole shards in
:mod:`reference_model.train.loader`.
"""

from __future__ import annotations

from torch import nn

from detclip_bench.dist import DistContext

__all__ = ["wrap_ddp"]


def wrap_ddp(model: nn.Module, ctx: DistContext, find_unused_parameters: bool = True) -> nn.Module:
    """DDP when distributed, with ``find_unused_parameters`` on by default because some parameters are unused.

    :meth:`DetCLIPv2.forward` adds the box and centerness outputs to every loss with weight 0, but
    image-text and classification steps never call the region-concept logits (``head.logits``: its
    logit scale and bias), so those parameters get no gradient in such a step.
    """
    if not ctx.distributed:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)
