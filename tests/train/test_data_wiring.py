"""Recipe data sources → opened datasets: root anchoring, loader options, stream sizes, enrichment."""

import json

import numpy as np

from detclip_bench.datasets import open_dataset
from detclip_bench.schema import DataKind
from recipes import get_recipe
from reference_model.train.build import model_overrides
from reference_model.train.config import DataSourceConfig, with_data_root
from reference_model.train.loader import DetCLIPv2Collator, source_length
from tests.datasets.writers import jpeg_bytes, wds_shard


def test_with_data_root_anchors_paths_path_options_and_the_dictionary(tmp_path):
    cfg = with_data_root(get_recipe("table1-pretrain-t", "mini"), str(tmp_path))
    goldg = cfg.source("goldg")
    assert goldg.path == str(tmp_path / "goldg/mdetr_annotations/final_mixed_train_no_coco.json")
    assert dict(goldg.options) == {"vg_root": str(tmp_path / "goldg/gqa/images")}
    assert cfg.concept_dictionary == str(tmp_path / "concept_dictionary.json")  # the mini world's training dictionary


def test_model_overrides_carry_the_recipe_loss_weights_into_the_model():
    cfg = get_recipe("table1-pretrain-t", "full")
    o = model_overrides(cfg)
    assert (o["loss_center"], o["loss_giou"], o["loss_contrastive"]) == (1.0, 2.0, 0.1)  # Table 1: α, β, λ
    assert o["drop_path"] == 0.2 and o["max_text_tokens"] == 16 and o["grad_checkpointing"] is True
    assert o["label_smoothing"] == 0.1


def test_mini_recipe_leaves_the_variant_defaults_alone():
    """A field the recipe does not name keeps the variant's value (mini: drop_path 0.0, not the full 0.2)."""
    from reference_model.detclipv2 import get_config

    cfg = get_recipe("table1-pretrain-t", "mini")
    assert model_overrides(cfg) == {"grad_checkpointing": False}
    built = get_config(cfg.model.variant, **model_overrides(cfg))
    assert built.drop_path == get_config("detclipv2-mini").drop_path == 0.0


def test_img2dataset_stream_is_sized_from_its_stats_sidecars(tmp_path):
    for k, n in enumerate((3, 2)):
        wds_shard(tmp_path / f"{k:05d}.tar", [(f"{k}{i}", jpeg_bytes(), f"caption {i}") for i in range(n)])
        (tmp_path / f"{k:05d}_stats.json").write_text(json.dumps({"count": n + 1, "successes": n}))
    ds = open_dataset(tmp_path, format="img2dataset-wds")
    src = DataSourceConfig(
        name="cc", path=str(tmp_path), format="img2dataset-wds", kind=DataKind.IMAGE_TEXT, batch_size=2, size=(64, 64)
    )
    assert source_length(ds, src) == 5 == sum(1 for _ in ds)
    (tmp_path / "00001_stats.json").unlink()
    assert ds.declared_size() is None  # a missing sidecar means unknown, not a wrong count


def test_collator_samples_negatives_from_the_dataset_vocabulary_enriched(tmp_path):
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps({"red box": "a red rectangle", "kettle": "a pot for boiling water"}))
    from tests.reference_model.conftest import VOCAB, det_sample

    class Dataset:
        def vocabulary(self):
            return tuple(c.__class__(name=c.name) for c in VOCAB[4:5])  # "kettle", without definition

    src = DataSourceConfig(
        name="d", path="-", format="coco", kind=DataKind.DETECTION, batch_size=1, size=(96, 64), concepts_per_image=3
    )
    batch = DetCLIPv2Collator(str(vocab))([det_sample(0)], src, Dataset(), np.random.default_rng(0))
    assert "kettle, a pot for boiling water" in batch.concepts
