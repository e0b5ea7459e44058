"""`detclip-bench finetune` end to end with the DetCLIPv2 member trainer (smoke-sized schedule)."""

import json

import pytest

from detclip_bench.cli.main import main
from reference_model.detclipv2 import create_model


@pytest.fixture(scope="module")
def world(small_world):
    return small_world


def test_finetune_cli_writes_results_and_a_loadable_model_per_member(world, tmp_path):
    start = tmp_path / "start"
    create_model("detclipv2-mini").save_pretrained(start)
    out = tmp_path / "ft"
    assert (
        main(
            [
                "finetune",
                "--model",
                str(start),
                "--suite",
                "mini-odinw13",
                "--data-root",
                str(world),
                "--members",
                "Aquarium",
                "--out",
                str(out),
                "--set",
                "schedule.max_steps=1",
                "--set",
                "schedule.epochs=1",
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["setting"] == "fine-tuned" and results["model"] == str(start)
    assert list(results["members"]) == ["odinw13/Aquarium"] and results["splits"] == {"odinw13/Aquarium": "test"}
    facts = results["finetune"]["odinw13/Aquarium"]
    assert facts["epochs_run"] == 1 and facts["best_epoch"] == 0 and 0 <= facts["best_val_ap"] <= 1
    assert (out / "predictions" / "odinw13_Aquarium-test.npz").is_file()
    # the member's kept weights score the same on test through `eval`
    model = facts["model"]
    assert (
        main(
            [
                "eval",
                "--model",
                model,
                "--suite",
                "mini-odinw13",
                "--split",
                "test",
                "--data-root",
                str(world),
                "--out",
                str(tmp_path / "ev"),
                "--no-cache",
            ]
        )
        == 0
    )
    again = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert (
        again["members"]["odinw13/Aquarium"]["coco"]["metrics"]
        == results["members"]["odinw13/Aquarium"]["coco"]["metrics"]
    )


def test_finetune_your_own_dataset_and_what_it_keeps_zero_shot(world, tmp_path):
    start = tmp_path / "start"
    create_model("detclipv2-mini").save_pretrained(start)
    export = world / "odinw" / "Aquarium" / "Aquarium Combined.v2-raw-1024.coco"  # a Roboflow export as downloaded
    out = tmp_path / "ft"
    assert (
        main(
            [
                "finetune",
                "--model",
                str(start),
                "--dataset",
                str(export),
                "--scale",
                "mini",
                "--out",
                str(out),
                "--held-out",
                "mini-lvis",
                "--held-out-data-root",
                str(world),
                "--set",
                "schedule.max_steps=1",
                "--set",
                "schedule.epochs=1",
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert results["suite"].startswith("dataset-") and results["version"].startswith("sha256-")
    assert results["setting"] == "fine-tuned" and list(results["splits"].values()) == ["test"]
    held = results["held_out"]
    assert held["suite"] == "mini-lvis" and held["protocol"] == "lvis-fixed"
    (after,) = held["members"].values()
    assert 0 <= held["start_ap"] <= 1 and 0 <= after <= 1
    # the start number is the zero-shot evaluation of the start weights
    assert (
        main(
            [
                "eval",
                "--model",
                str(start),
                "--suite",
                "mini-lvis",
                "--data-root",
                str(world),
                "--out",
                str(tmp_path / "zs"),
                "--no-cache",
                "--batch-size",
                "8",
            ]
        )
        == 0
    )
    zero_shot = json.loads((tmp_path / "zs" / "results.json").read_text())
    assert zero_shot["aggregate"]["metrics"]["AP"] == held["start_ap"]
