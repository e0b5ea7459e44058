"""Prompt caching (encode once per vocabulary), frozen-tower caching and the 16-token cap."""

from __future__ import annotations

import torch

from reference_model.detclipv2 import DetCLIPv2

from .conftest import tiny_config

PROMPTS = ["red box, a red rectangle", "zebra, a striped horse", "violin, a string instrument"]


def test_vocabulary_encoded_once_until_weights_change(tiny_model):
    enc = tiny_model.text_encoder
    first = enc.encode_cached(PROMPTS)
    assert enc.num_encoded_texts == 3
    again = enc.encode_cached(list(PROMPTS))
    assert enc.num_encoded_texts == 3 and again is first
    tiny_model.predict([], PROMPTS)  # predict goes through the same cache
    assert enc.num_encoded_texts == 3
    with torch.no_grad():
        enc.proj.bias.add_(1.0)  # an optimiser step changes the weights → cache is stale
    changed = enc.encode_cached(PROMPTS)
    assert enc.num_encoded_texts == 6
    torch.testing.assert_close(changed, first + 1.0)


def test_frozen_tower_encodes_each_string_once_and_projection_still_learns():
    torch.manual_seed(0)
    model = DetCLIPv2(tiny_config(text_trainable=False))
    enc = model.text_encoder.train()
    out = enc(PROMPTS)
    out2 = enc([PROMPTS[1], PROMPTS[0], "tractor"])
    assert enc.num_encoded_texts == 4  # three prompts + one new string
    torch.testing.assert_close(out2[1], out[0])
    (out.sum() + out2.sum()).backward()
    assert enc.proj.weight.grad is not None
    assert all(p.grad is None for p in enc.model.parameters())
    assert not any(p.requires_grad for p in enc.model.parameters())


def test_prompts_are_truncated_to_max_tokens(tiny_model):
    enc = tiny_model.text_encoder.eval()
    base = "red box, " + " ".join(["word"] * 30)
    a, b = enc([base, base + " extra tail"])
    torch.testing.assert_close(a, b)  # both cut at 16 tokens
    short_a, short_b = enc(["red box", "red box, a rectangle"])
    assert not torch.allclose(short_a, short_b)


def test_text_parameters_are_prefixed_for_the_lr_multiplier(tiny_model):
    names = [n for n, _ in tiny_model.named_parameters() if n.startswith("text_encoder.")]
    assert names and any(".model." in n for n in names) and "text_encoder.proj.weight" in names
    assert not any("text" in n for n, _ in tiny_model.named_parameters() if not n.startswith("text_encoder."))
