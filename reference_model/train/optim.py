"""AdamW with the paper's parameter groups and the square-root LR scaling rule.

Groups: the *pretrained* text transformer trains at ``lr * text_lr_mult`` to keep its language
knowledge (appendix B); everything else at ``lr``, including the newly created text projection and a
tower that started from random weights (nothing to preserve there). A ``text_encoder`` module says
which of its parameters are pretrained through ``pretrained_prefixes``; one without that attribute
counts as pretrained as a whole. With ``no_decay_norm_bias`` every 1-D parameter (norm weights,
biases, logit scale/bias) is exempt from weight decay, the mmdet/timm habit, and so are the
parameters named in ``no_decay_names`` (Swin's relative-position bias tables and absolute position
embedding, as mmdetection's Swin configs do); this gives up to four groups, each tagged with its
``name`` so logs and tests can find it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from reference_model.train.config import OptimConfig

__all__ = ["TEXT_PREFIX", "build_optimizer", "param_groups", "peak_lrs", "sqrt_scaled_lr"]

TEXT_PREFIX = "text_encoder."


def sqrt_scaled_lr(base_lr: float, batch_size: int, reference_batch: int = 16) -> float:
    """``base_lr * sqrt(batch_size / reference_batch)`` (appendix B: 1e-4 → 2.8e-4 at 128, 4e-4 at 256)."""
    if batch_size <= 0 or reference_batch <= 0:
        raise ValueError("batch sizes must be positive")
    return base_lr * math.sqrt(batch_size / reference_batch)


def peak_lrs(cfg: OptimConfig, batch_size: int) -> tuple[float, float]:
    """(image/detector LR, text-encoder LR) at the end of warm-up."""
    lr = sqrt_scaled_lr(cfg.base_lr, batch_size, cfg.reference_batch) if cfg.lr_rule == "sqrt" else cfg.lr
    return lr, lr * cfg.text_lr_mult


def _strip_wrappers(name: str) -> str:
    for prefix in ("module.", "_orig_mod."):
        while name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def _unwrap(model: nn.Module) -> nn.Module:
    for attr in ("module", "_orig_mod"):  # DDP, torch.compile
        while isinstance(getattr(model, attr, None), nn.Module):
            model = getattr(model, attr)
    return model


def pretrained_text_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Full parameter-name prefixes (wrappers stripped) that train at the text LR."""
    encoder = getattr(_unwrap(model), TEXT_PREFIX.rstrip("."), None)
    own = getattr(encoder, "pretrained_prefixes", None)
    if own is None:
        return (TEXT_PREFIX,)
    return tuple(TEXT_PREFIX + p for p in own)


def param_groups(model: nn.Module, cfg: OptimConfig, batch_size: int) -> list[dict]:
    """Parameter groups with ``name``, ``lr`` and ``weight_decay`` set; frozen parameters are left out."""
    lr, text_lr = peak_lrs(cfg, batch_size)
    text_prefixes = pretrained_text_prefixes(model)
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        name = _strip_wrappers(name)
        is_text = bool(text_prefixes) and name.startswith(text_prefixes)
        no_decay = (cfg.no_decay_norm_bias and param.ndim <= 1) or name.rsplit(".", 1)[-1] in cfg.no_decay_names
        buckets.setdefault((is_text, no_decay), []).append(param)
    groups = []
    for (is_text, no_decay), params in sorted(buckets.items()):
        groups.append(
            {
                "name": f"{'text' if is_text else 'image'}{'_no_decay' if no_decay else ''}",
                "params": params,
                "lr": text_lr if is_text else lr,
                "weight_decay": 0.0 if no_decay else cfg.weight_decay,
            }
        )
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig, batch_size: int) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, cfg, batch_size), betas=cfg.betas, eps=cfg.eps)
