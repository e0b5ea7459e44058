"""The head's DCNv2 gather path against torchvision's deform_conv2d: values and all four gradients."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import deform_conv2d

from reference_model.detclipv2.atss_head import ATSSHead
from reference_model.detclipv2.deform import modulated_deform_conv3x3, uses_gather_path


def _inputs(shape, offset_scale, dtype=torch.float64, seed=0):
    batch, channels, height, width = shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, height, width, generator=g, dtype=dtype)
    offset = torch.randn(batch, 18, height, width, generator=g, dtype=dtype) * offset_scale
    mask = torch.rand(batch, 9, height, width, generator=g, dtype=dtype)
    weight = torch.randn(5, channels, 3, 3, generator=g, dtype=dtype) * 0.1
    upstream = torch.randn(batch, 5, height, width, generator=g, dtype=dtype)
    return [t.requires_grad_() for t in (x, offset, mask, weight)], upstream


def _value_and_grads(fn, tensors, upstream):
    for t in tensors:
        t.grad = None
    out = fn(*tensors)
    (out * upstream).sum().backward()
    return out.detach(), [t.grad.clone() for t in tensors]


def _torchvision(x, offset, mask, weight):
    return deform_conv2d(x, offset, weight, padding=(1, 1), mask=mask)


@pytest.mark.parametrize(
    "shape, offset_scale",
    [
        ((2, 3, 6, 7), 0.0),  # integer positions, the padding ring included: right-sided offset derivative
        ((2, 3, 6, 7), 2.5),  # samples cross every border
        ((1, 4, 1, 1), 1.5),  # a coarsest-level 1×1 map
        ((3, 2, 5, 4), 0.4),
    ],
)
def test_gather_path_equals_torchvision(shape, offset_scale):
    tensors, upstream = _inputs(shape, offset_scale)
    assert uses_gather_path(tensors[0])
    ref_out, ref_grads = _value_and_grads(_torchvision, tensors, upstream)
    out, grads = _value_and_grads(modulated_deform_conv3x3, tensors, upstream)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    for name, got, want in zip(("input", "offset", "mask", "weight"), grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-11, msg=f"d/d{name}")


def test_integer_and_edge_positions_match_torchvision():
    """Offsets that land exactly on −1, 0, H−1 and H: where the derivative is one-sided."""
    tensors, upstream = _inputs((1, 2, 4, 4), 0.0)
    with torch.no_grad():
        tensors[1].copy_(
            torch.tensor([-2.0, -1.0, 0.0, 1.0, 3.0, 4.0], dtype=torch.float64).repeat(3)[:18].view(1, 18, 1, 1)
        )
    ref_out, ref_grads = _value_and_grads(_torchvision, tensors, upstream)
    out, grads = _value_and_grads(modulated_deform_conv3x3, tensors, upstream)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-11)


def test_float32_within_rounding():
    tensors, upstream = _inputs((4, 16, 10, 12), 2.0, dtype=torch.float32)
    ref_out, ref_grads = _value_and_grads(_torchvision, tensors, upstream)
    out, grads = _value_and_grads(modulated_deform_conv3x3, tensors, upstream)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_inference_and_tracing_call_torchvision(monkeypatch):
    """No grad or a trace: torchvision's op itself, so inference numbers and the ONNX mapping are untouched."""
    calls = []
    import reference_model.detclipv2.deform as deform

    def spy(*args, **kwargs):
        calls.append(1)
        return deform_conv2d(*args, **kwargs)

    monkeypatch.setattr(deform, "deform_conv2d", spy)
    tensors, _ = _inputs((1, 2, 4, 4), 1.0)
    with torch.no_grad():
        modulated_deform_conv3x3(*tensors)
    assert calls == [1]
    torch.jit.trace(lambda x, o, m, w: modulated_deform_conv3x3(x, o, m, w), tuple(t.detach() for t in tensors))
    assert len(calls) >= 2
    modulated_deform_conv3x3(*tensors)  # training on the CPU: the gather path
    assert len(calls) >= 2 and uses_gather_path(tensors[0])
    n = len(calls)
    modulated_deform_conv3x3(*tensors)
    assert len(calls) == n


def test_autocast_runs_in_float32():
    tensors, _ = _inputs((2, 4, 5, 6), 1.0, dtype=torch.float32)
    ref = _torchvision(*tensors)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = modulated_deform_conv3x3(*tensors)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_head_training_step_matches_torchvision(monkeypatch):
    """The whole head: loss-free forward and parameter gradients agree with the torchvision kernel."""
    torch.manual_seed(0)
    head = ATSSHead(8, 2, 6, num_convs=1, gn_groups=4).double()
    with torch.no_grad():
        head.offset_mask.weight.normal_(std=0.05)  # non-zero offsets and masks
    feats = [torch.randn(2, 8, 6, 5, dtype=torch.float64), torch.randn(2, 8, 3, 3, dtype=torch.float64)]

    def grads():
        head.zero_grad()
        out = head(feats)
        (out.embeddings.square().sum() + out.deltas.sum()).backward()
        return {n: p.grad.clone() for n, p in head.named_parameters() if p.grad is not None}

    ours = grads()
    import reference_model.detclipv2.deform as deform

    monkeypatch.setattr(deform, "uses_gather_path", lambda x: False)
    theirs = grads()
    assert ours.keys() == theirs.keys() and "dcn.weight" in ours and "offset_mask.weight" in ours
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-9, atol=1e-11, msg=name)


def test_gather_path_is_bitwise_repeatable_with_threads():
    """Same inputs, same threads: bit-identical values and gradients (the mini runs' determinism rests on it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        tensors, upstream = _inputs((8, 16, 20, 24), 2.0, dtype=torch.float32)
        first = _value_and_grads(modulated_deform_conv3x3, tensors, upstream)
        second = _value_and_grads(modulated_deform_conv3x3, tensors, upstream)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(first[0], second[0])
    assert all(torch.equal(a, b) for a, b in zip(first[1], second[1], strict=True))
