"""Backbones (Swin at any size, grad checkpointing, packaged EfficientNet weights) and variants."""

from __future__ import annotations

import pytest
import timm
import torch

from detclip_bench.errors import DataError
from reference_model.detclipv2 import DetCLIPv2, create_model, get_config, list_variants
from reference_model.detclipv2.backbone import TimmBackbone, load_efficientnet_lite0_package
from reference_model.detclipv2.fpn import FPN

from .conftest import tiny_config

TINY_SWIN = dict(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=7)


@pytest.mark.parametrize(("h", "w"), [(100, 150), (64, 64), (200, 133)])
def test_swin_accepts_any_size_and_returns_nchw_at_strides_8_16_32(h, w):
    torch.manual_seed(0)
    bb = TimmBackbone("swin_tiny_patch4_window7_224", drop_path=0.2, extra_kwargs=TINY_SWIN)
    feats = bb(torch.randn(1, 3, h, w))
    ph, pw = -(-h // 32) * 32, -(-w // 32) * 32  # padded to a multiple of 32
    assert [tuple(f.shape) for f in feats] == [
        (1, c, ph // s, pw // s) for c, s in zip(bb.out_channels, (8, 16, 32), strict=True)
    ]
    levels = FPN(bb.out_channels, 16, num_levels=5)(feats)
    assert [f.shape[-1] for f in levels] == [pw // 8, pw // 16, pw // 32, -(-pw // 64), -(-pw // 128)]


def test_grad_checkpointing_gives_same_loss_and_gradients():
    cfg = tiny_config(
        backbone="swin_tiny_patch4_window7_224", backbone_out_indices=(1, 2, 3), backbone_kwargs=TINY_SWIN
    )
    torch.manual_seed(0)
    model = DetCLIPv2(cfg).eval()  # eval: no drop path randomness
    x = torch.randn(1, 3, 64, 96)
    out_a = model.dense(x)[0].embeddings.sum()
    out_a.backward()
    grad_a = model.backbone.body.layers_0.blocks[0].attn.qkv.weight.grad.clone()
    model.zero_grad()
    model.set_grad_checkpointing(True)
    out_b = model.dense(x)[0].embeddings.sum()
    out_b.backward()
    grad_b = model.backbone.body.layers_0.blocks[0].attn.qkv.weight.grad
    torch.testing.assert_close(out_a, out_b)
    torch.testing.assert_close(grad_a, grad_b)


def test_packaged_efficientnet_weights_map_onto_timm():
    state = load_efficientnet_lite0_package()
    ref = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert list(state) == list(ref) and len(state) == 296
    assert all(state[k].shape == ref[k].shape for k in ref)
    bb = TimmBackbone("tf_efficientnet_lite0", (2, 3, 4), init="efficientnet-lite0-package")
    torch.testing.assert_close(bb.body.conv_stem.weight, state["conv_stem.weight"])


def test_backbone_weights_must_be_safetensors(tmp_path):
    bad = tmp_path / "w.pth"
    bad.write_bytes(b"not read")
    with pytest.raises(DataError, match="safetensors"):
        TimmBackbone("test_efficientnet", (2, 3, 4), init=str(bad))


def test_variants_registry_and_overrides():
    assert list_variants() == ["detclipv2-mini", "detclipv2-swin-l", "detclipv2-swin-t"]
    t = get_config("detclipv2-swin-t")
    assert (t.backbone, t.fpn_channels, t.num_levels, t.drop_path, t.max_text_tokens) == (
        "swin_tiny_patch4_window7_224",
        256,
        5,
        0.2,
        16,
    )
    assert get_config("detclipv2-swin-l").backbone.startswith("swin_large")
    assert get_config("detclipv2-mini", deformable=False).deformable is False
    with pytest.raises(TypeError, match="no_such"):
        create_model("detclipv2-mini", no_such=1)
    with pytest.raises(KeyError, match="detclipv2-mini"):
        create_model("detclipv2-huge")
    with pytest.raises(ValueError, match="num_levels"):
        get_config("detclipv2-swin-t", num_levels=7)
