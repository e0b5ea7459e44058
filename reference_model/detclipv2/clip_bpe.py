"""CLIP's BPE tokenizer without the hub: built from the vocabulary file that ``open_clip_torch`` ships.

The OpenAI CLIP tokenizer (49,408 tokens: 256 byte symbols, their ``</w>`` forms, 48,894 merges,
``<|startoftext|>`` and ``<|endoftext|>``) is fully determined by its merges list. open_clip's PyPI
wheel carries that list (``open_clip/bpe_simple_vocab_16e6.txt.gz``); we read the file without
importing open_clip and write the ``vocab.json`` + ``merges.txt`` pair that transformers'
``CLIPTokenizer`` reads, once, into a cache folder. Then a random-init CLIP-shaped text tower gets
the real CLIP tokenizer offline (``text_tokenizer="open-clip-bpe"``), and tests can check real ids.
Install the data without its dependencies: ``pip install --no-deps open_clip_torch``.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
from pathlib import Path

from detclip_bench.errors import DataError
from detclip_bench.io import atomic_write_text

__all__ = ["OPEN_CLIP_BPE", "byte_symbols", "open_clip_bpe_folder"]

OPEN_CLIP_BPE = "open-clip-bpe"
_VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
_NUM_MERGES = 49152 - 256 - 2  # CLIP keeps the first 48,894 merges of the file (after its header line)


def _packaged_vocabulary() -> Path:
    spec = importlib.util.find_spec("open_clip")  # locates the package without importing it
    path = Path(spec.submodule_search_locations[0]) / _VOCAB_FILE if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise DataError(
            OPEN_CLIP_BPE,
            "-",
            f"CLIP's BPE vocabulary ({_VOCAB_FILE}) comes from the open_clip_torch "
            "wheel: pip install --no-deps open_clip_torch",
        )
    return path


def byte_symbols() -> list[str]:
    """GPT-2/CLIP's printable stand-ins for the 256 bytes, in CLIP's vocabulary order: the printable
    bytes first (as themselves), then the others mapped to code points from 256 up."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in set(printable)]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def open_clip_bpe_folder(cache_dir: str | os.PathLike | None = None) -> Path:
    """A folder with CLIP's ``vocab.json``, ``merges.txt`` and tokenizer config (built once, then reused)."""
    source = _packaged_vocabulary()
    root = Path(cache_dir or os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "detclip_bench" / OPEN_CLIP_BPE
    if (root / "vocab.json").is_file() and (root / "merges.txt").is_file():
        return root
    lines = gzip.decompress(source.read_bytes()).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]
    symbols = byte_symbols()
    vocab = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges)]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    if len(vocab) != 49408 or len(set(vocab)) != len(vocab):
        raise DataError(str(source), "-", f"expected 49,408 distinct CLIP tokens, built {len(set(vocab))}")
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / "merges.txt", "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "do_lower_case": True,
    }
    atomic_write_text(root / "tokenizer_config.json", json.dumps(config, indent=1))
    atomic_write_text(root / "vocab.json", json.dumps({tok: i for i, tok in enumerate(vocab)}))  # last: the marker
    return root
