"""The head's modulated deformable 3×3 conv (DCNv2), with a faster CPU training path.

torchvision's ``deform_conv2d`` is the reference. Its CPU backward walks every sample position in
scalar code: on the mini model it was 43 % of a training step's CPU time (0.18 s per call at
8 × 64 × 20 × 24, about 0.6 s of a 1.2 s step). :func:`modulated_deform_conv3x3` computes the same function
as bilinear gathers plus one matmul, so autograd's backward is a few vectorised scatter-adds: several
times faster on those shapes (``benchmarks/deform_bench.py``, results in ``benchmarks/results/``).
It follows torchvision's sampling exactly: per-corner zero padding, and at integer positions the
right-sided derivative for the offsets (floor of the coordinate), so values and all four gradients agree
with torchvision to float rounding (``tests/reference_model/test_deform.py``).

The gather path is used only where it pays and cannot change a graph someone exports: a CPU tensor,
autograd recording, and no tracing, ONNX export or ``torch.compile``. Inference, CUDA and export call
torchvision's op, so inference numbers, the ONNX ``DeformConv`` mapping and GPU kernels are unchanged.
"""

from __future__ import annotations

import torch
from torchvision.ops import deform_conv2d

__all__ = ["modulated_deform_conv3x3", "uses_gather_path"]

_K = 3  # kernel side; the head's DCN is 3×3, stride 1, dilation 1, one offset group


def uses_gather_path(x: torch.Tensor) -> bool:
    """True where :func:`modulated_deform_conv3x3` takes the gather path (CPU training)."""
    if x.device.type != "cpu" or not torch.is_grad_enabled():
        return False
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
        return False
    return not torch.compiler.is_compiling()


def modulated_deform_conv3x3(
    x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, *, padding: int = 1
) -> torch.Tensor:
    """DCNv2 with a 3×3 kernel, stride 1, dilation 1, one offset group, no bias.

    Args:
        x: (B, C, H, W) input.
        offset: (B, 18, H', W') offsets in torchvision's layout, (Δy, Δx) per kernel point, row-major.
        mask: (B, 9, H', W') modulation scalars.
        weight: (C_out, C, 3, 3).
        padding: zero padding on each side (1 keeps H' = H, W' = W).

    Returns:
        (B, C_out, H', W'), equal to ``torchvision.ops.deform_conv2d(x, offset, weight, padding=padding,
        mask=mask)`` to float rounding, gradients included.
    """
    if not uses_gather_path(x):
        return deform_conv2d(x, offset, weight, padding=(padding, padding), mask=mask)
    if torch.is_autocast_enabled("cpu"):  # fp32 under autocast, as torchvision's CUDA autocast runs it
        with torch.autocast("cpu", enabled=False):
            fp32 = (t.float() for t in (x, offset, mask, weight))
            return _gather_deform_conv(*fp32, padding).to(x.dtype)
    return _gather_deform_conv(x, offset, mask, weight, padding)


def _gather_deform_conv(
    x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor, padding: int
) -> torch.Tensor:
    batch, channels, height, width = x.shape
    out_h, out_w = offset.shape[-2:]
    if offset.shape[1] != 2 * _K * _K or mask.shape[1] != _K * _K or tuple(weight.shape[1:]) != (channels, _K, _K):
        raise ValueError(
            f"expected a 3×3 DCN with one offset group: offset {tuple(offset.shape)}, mask {tuple(mask.shape)}, "
            f"weight {tuple(weight.shape)} for {channels} input channels"
        )
    points = _K * _K
    positions = out_h * out_w
    dtype, device = x.dtype, x.device
    kernel_y = torch.arange(_K, dtype=dtype, device=device).repeat_interleave(_K).view(1, points, 1, 1)
    kernel_x = torch.arange(_K, dtype=dtype, device=device).repeat(_K).view(1, points, 1, 1)
    delta = offset.view(batch, points, 2, out_h, out_w)
    # the order of the additions is torchvision's: (out · stride − pad) + k · dilation + Δ
    grid_y = torch.arange(out_h, dtype=dtype, device=device).view(1, 1, out_h, 1) - padding
    grid_x = torch.arange(out_w, dtype=dtype, device=device).view(1, 1, 1, out_w) - padding
    sample_y = grid_y + kernel_y + delta[:, :, 0]
    sample_x = grid_x + kernel_x + delta[:, :, 1]

    top = sample_y.detach().floor()
    left = sample_x.detach().floor()
    frac_y = sample_y - top  # carries the offset gradient; floor is constant almost everywhere
    frac_x = sample_x - left
    top, left = top.long(), left.long()

    flat = x.flatten(2)  # (B, C, H·W)
    sampled = None
    for dy, dx, corner_weight in (
        (0, 0, (1 - frac_y) * (1 - frac_x)),
        (0, 1, (1 - frac_y) * frac_x),
        (1, 0, frac_y * (1 - frac_x)),
        (1, 1, frac_y * frac_x),
    ):
        row, col = top + dy, left + dx
        inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)  # zero padding per corner
        index = (row.clamp(0, height - 1) * width + col.clamp(0, width - 1)).view(batch, 1, points * positions)
        value = flat.gather(2, index.expand(batch, channels, points * positions))
        term = value * (corner_weight * inside).view(batch, 1, points * positions)
        sampled = term if sampled is None else sampled + term
    columns = (sampled * mask.reshape(batch, 1, points * positions)).view(batch, channels * points, positions)
    out = weight.reshape(weight.shape[0], channels * points) @ columns
    return out.view(batch, weight.shape[0], out_h, out_w)
