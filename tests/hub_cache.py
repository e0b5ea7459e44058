"""A Hugging Face hub cache written exactly as huggingface_hub lays it out, holding a tiny Swin-T
(under the IN-1k hub id) and a tiny CLIP (under openai/clip-vit-base-patch32) with a hand-written BPE
vocabulary; the network is cut while it is in use. Shared by the init tests and the full-recipe smoke run."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import huggingface_hub
import timm
import torch
from safetensors.torch import save_file

from reference_model.detclipv2.clip_bpe import byte_symbols
from reference_model.detclipv2.pretrained import CLIP_TEXT_HUB, SWIN_T_IN1K

TINY_SWIN = dict(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_size=7)
COMMIT = "a" * 40
MERGES = (("r", "e"), ("re", "d</w>"), ("b", "o"), ("bo", "x</w>"))


# ----------------------------------------------------------------------------- a fake hub cache


def clip_tokenizer_files() -> dict[str, bytes]:
    """A tiny CLIP BPE tokenizer in the hub repo's format: vocab.json, merges.txt, tokenizer_config.json."""
    chars = byte_symbols()
    tokens = chars + [c + "</w>" for c in chars] + [a + b for a, b in MERGES] + ["<|startoftext|>", "<|endoftext|>"]
    special = {
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
    }
    return {
        "vocab.json": json.dumps({t: i for i, t in enumerate(tokens)}).encode(),
        "merges.txt": ("#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in MERGES) + "\n").encode(),
        "tokenizer_config.json": json.dumps(
            {"tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True, **special}
        ).encode(),
        "special_tokens_map.json": json.dumps(special).encode(),
    }


def clip_model_files(tmp: Path) -> dict[str, bytes]:
    """A tiny full CLIPModel (text + vision, like openai/clip-vit-base-patch32) saved by transformers."""
    from transformers import CLIPConfig, CLIPModel

    vocab = json.loads(clip_tokenizer_files()["vocab.json"])
    eot, sot = vocab["<|endoftext|>"], vocab["<|startoftext|>"]
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=77,
            eos_token_id=eot,
            bos_token_id=sot,
            pad_token_id=eot,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=16,
        ),
        projection_dim=16,
    )
    torch.manual_seed(1)
    CLIPModel(config).save_pretrained(tmp)
    return {name: (tmp / name).read_bytes() for name in ("config.json", "model.safetensors")}


def swin_files(tmp: Path) -> dict[str, bytes]:
    torch.manual_seed(2)
    net = timm.create_model("swin_tiny_patch4_window7_224", **TINY_SWIN)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, tmp / "model.safetensors")
    config = {"architecture": "swin_tiny_patch4_window7_224", "num_classes": 1000, **TINY_SWIN}
    return {"model.safetensors": (tmp / "model.safetensors").read_bytes(), "config.json": json.dumps(config).encode()}


def write_hub_repo(cache: Path, repo_id: str, files: dict[str, bytes]) -> Path:
    """``models--{org}--{name}/{blobs,snapshots/<commit>,refs/main}`` as huggingface_hub writes it."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


def make_offline_hub(tmp_path, monkeypatch):
    """An empty HF cache, HF_HUB_OFFLINE=1, and any socket connection recorded and refused."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    for name, value in (("HF_HUB_CACHE", str(cache)), ("HF_HUB_OFFLINE", True)):
        monkeypatch.setenv(name, "1" if value is True else value)
        monkeypatch.setattr(huggingface_hub.constants, name, value)
    attempts: list[object] = []

    def refuse(address, *args):
        attempts.append(address)
        raise OSError(f"test: network access to {address} refused")

    monkeypatch.setattr(socket.socket, "connect", lambda self, address, *a: refuse(address))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, address, *a: refuse(address))
    monkeypatch.setattr(socket, "getaddrinfo", refuse)  # name lookups count as network access too
    return cache, attempts


def fill_hub(offline_hub, tmp_path):
    """The offline cache holding the tiny Swin-T (IN-1k hub id) and the tiny CLIP (ViT-B/32 hub id)."""
    cache, attempts = offline_hub
    (tmp_path / "clip").mkdir()
    (tmp_path / "swin").mkdir()
    clip = write_hub_repo(cache, CLIP_TEXT_HUB, {**clip_tokenizer_files(), **clip_model_files(tmp_path / "clip")})
    swin = write_hub_repo(cache, SWIN_T_IN1K, swin_files(tmp_path / "swin"))
    return cache, attempts, swin, clip
