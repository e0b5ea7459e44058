"""CLIP's real BPE tokenizer, built offline from the vocabulary file in the open_clip_torch wheel."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("open_clip") is None,
    reason="open_clip_torch not installed (CI: pip install --no-deps open_clip_torch)",
)


def test_token_ids_are_clips(tmp_path):
    from transformers import CLIPTokenizer

    from reference_model.detclipv2.clip_bpe import open_clip_bpe_folder

    folder = open_clip_bpe_folder(tmp_path)
    tok = CLIPTokenizer.from_pretrained(str(folder))
    assert len(tok) == 49408
    # the ids OpenAI's CLIP gives these texts (start 49406, end 49407; "a" 320, "photo" 1125, "dog" 1929)
    assert tok("a photo of a cat")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert tok("A dog.")["input_ids"] == [49406, 320, 1929, 269, 49407]
    assert open_clip_bpe_folder(tmp_path) == folder  # built once, then reused


def test_random_clip_text_tower_gets_the_real_vocabulary(monkeypatch, tmp_path):
    from reference_model.detclipv2.text_encoder import build_text_model

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model, tok, pretrained = build_text_model("random", tokenizer="open-clip-bpe", width=32, layers=1, heads=2)
    assert not pretrained and model.config.vocab_size == 49408 == len(tok)
    assert model.config.eos_token_id == tok.eos_token_id == 49407
