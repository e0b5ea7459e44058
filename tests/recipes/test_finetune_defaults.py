"""`detclip-bench finetune` for a newcomer (issue 27.1 and 27.12): `--help` states the scale a run really trains,
a full recipe on a CPU says so (and is timed), the run prints where the fine-tuned model is, and its summary
and results.md name the fine-tuned weights and show the held-out numbers. Nothing trains: the member trainer
is a stand-in that picks a detector, or the whole fine-tuning call is stubbed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import detclip_bench.suites.finetune_protocol as suite_ft
from detclip_bench.adapters.base import Prediction
from detclip_bench.cli.main import main
from detclip_bench.suites.custom import dataset_suite
from detclip_bench.suites.finetune_protocol import HeldOut, TrainedMember, finetune_suite
from recipes.cli import finetune as ft_cli

GT_BOX = (8.0, 8.0, 40.0, 40.0)  # xyxy in every image of the export


def _split(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    images, anns = [], []
    for i in range(1, n + 1):
        Image.new("RGB", (64, 48), (30 * i, 90, 40)).save(folder / f"im{i}.jpg")
        images.append({"id": i, "file_name": f"im{i}.jpg", "width": 64, "height": 48})
        x1, y1, x2, y2 = GT_BOX
        anns.append(
            {
                "id": i,
                "image_id": i,
                "category_id": 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1],
                "area": (x2 - x1) * (y2 - y1),
                "iscrowd": 0,
            }
        )
    categories = [{"id": 0, "name": "widgets", "supercategory": "none"}, {"id": 1, "name": "widget"}]
    (folder / "_annotations.coco.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": categories})
    )


@pytest.fixture
def export(tmp_path) -> Path:
    """A Roboflow-style export as downloaded: train/ valid/ test/."""
    root = tmp_path / "widgets.v1i.coco"
    for split in ("train", "valid", "test"):
        _split(root / split, 2)
    return root


def _normalised(text: str) -> str:
    return " ".join(text.split())


def _help(verb: str, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "400")  # no wrapping (argparse may break lines at a hyphen)
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    return _normalised(capsys.readouterr().out)


def _dumped(capsys, *args: str) -> dict:
    assert main(["finetune", "--model", "ckpt/", *args, "--dump-config"]) == 0
    return json.loads(capsys.readouterr().out)


def test_help_states_the_scale_each_kind_of_run_trains(export, capsys, monkeypatch):
    text = _help("finetune", capsys, monkeypatch)
    assert _normalised(ft_cli.SCALE_HELP) in text and "(default: mini)" not in text
    assert "output folder (default runs/finetune/<suite name>)" in text
    assert (
        "mini for mini-odinw13, mini-lvis" in text and "full, the paper's recipe, for odinw13, lvis, --dataset" in text
    )
    # ... and the runs do what it says
    assert _dumped(capsys, "--suite", "mini-odinw13")["name"] == "table3-odinw13-finetune-mini"
    assert _dumped(capsys, "--suite", "mini-lvis")["name"] == "table2-lvis-finetune-mini"
    assert _dumped(capsys, "--suite", "odinw13")["name"] == "table3-odinw13-finetune"
    assert _dumped(capsys, "--suite", "lvis")["name"] == "table2-lvis-finetune"
    full = _dumped(capsys, "--dataset", str(export))
    assert full["name"] == "table3-odinw13-finetune" and full["schedule"]["epochs"] == 250
    assert full["data"][0]["size"] == [1333, 800] and full["data"][0]["batch_size"] == 32
    assert _dumped(capsys, "--dataset", str(export), "--scale", "mini")["name"] == "table3-odinw13-finetune-mini"
    # `train` keeps its own default, and says it
    assert "recipe scale (default: mini)" in _help("train", capsys, monkeypatch)


class StubResult:
    """What ``finetune_suite`` returns, as far as the verb reads it."""

    def __init__(self, out: Path):
        self.held_out: dict = {}
        self.finetune = {"widgets": {"model": str(out / "widgets" / "model")}}

    def summary_line(self) -> str:
        return "dataset-widgets [coco] stub: AP=50.0"


@pytest.fixture
def stubbed(monkeypatch):
    """Replaces the fine-tuning call; records the member trainer the verb built."""
    seen: dict = {}

    def fake_finetune_suite(trainer, suite, root, out, **kw):
        seen["trainer"] = trainer
        return StubResult(out)

    monkeypatch.setattr(suite_ft, "finetune_suite", fake_finetune_suite)
    return seen


def test_a_full_recipe_on_the_cpu_warns_and_is_timed(export, tmp_path, stubbed, caplog, capsys):
    out = tmp_path / "ft"
    base = ["finetune", "--model", "ckpt/", "--dataset", str(export), "--device", "cpu", "--out", str(out)]
    with caplog.at_level(logging.WARNING):
        assert main(base) == 0
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "FULL recipe table3-odinw13-finetune is starting on the CPU" in warned
    assert "up to 250 epochs" in warned and "1333x800" in warned and "batch 32" in warned and "--scale mini" in warned
    trainer = stubbed["trainer"]
    assert trainer.estimate_after == ft_cli.ESTIMATE_AFTER_STEPS > 0 and trainer.cfg.name == "table3-odinw13-finetune"
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == f"fine-tuned model (widgets): {out / 'widgets' / 'model'}"  # the last thing said

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert main([*base, "--scale", "mini"]) == 0
    assert not [r for r in caplog.records if "FULL recipe" in r.getMessage()]
    assert stubbed["trainer"].estimate_after == 0


class Fixed:
    """A detector with one box per image: on the GT (``hit``) or far from it."""

    def __init__(self, name: str, hit: bool):
        self.name, self.hit = name, hit

    def identity(self) -> str:
        return f"{self.name}-{self.hit}"

    def predict(self, images, prompts, *, max_dets_per_image=100, score_thresh=None):
        box = GT_BOX if self.hit else (50.0, 30.0, 63.0, 47.0)
        return [Prediction([np.array(box)], [0.9], [0]) for _ in images]


def test_summary_and_results_md_name_the_finetuned_model_and_show_the_held_out_table(export, tmp_path):
    suite = dataset_suite(str(export), finetune=True)
    held = dataset_suite(str(export), finetune=False, name="held")
    out = tmp_path / "ft"

    def trainer(suite, member, train, out_dir, *, evaluate_val):
        return TrainedMember(Fixed("tuned", hit=True), out_dir / "model", {"best_epoch": 0})

    result = finetune_suite(
        trainer,
        suite,
        tmp_path,
        out,
        model="runs/start/model",
        batch_size=2,
        progress=False,
        held_out=HeldOut(held, tmp_path, Fixed("start", hit=False)),
    )
    model_dir = str(out / "widgets.v1i.coco" / "model")
    assert result.finetune["widgets.v1i.coco"]["model"] == model_dir
    line = result.summary_line()
    assert f"{model_dir} (fine-tuned from runs/start/model): AP=100.0" in line
    md = (out / "results.md").read_text()
    assert md.splitlines()[0].endswith(f"{model_dir} (fine-tuned from runs/start/model) (fine-tuned)")
    assert "## held-out: zero-shot dataset-held" in md
    assert "| start: runs/start/model | 0.0 | |" in md
    assert "| fine-tuned on widgets.v1i.coco | 100.0 | +100.0 |" in md
    # results.json keeps the start as the row's checkpoint (leaderboards), the summary names the fine-tuned weights
    saved = json.loads((out / "results.json").read_text())
    assert saved["model"] == "runs/start/model" and saved["summary"] == line
