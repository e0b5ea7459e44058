import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reference_model.train.checkpoint import find_latest, load_checkpoint
from reference_model.train.config import EarlyStopConfig, ScheduleConfig
from reference_model.train.engine import Trainer
from reference_model.train.finetune import finetune
from tests.net import free_port
from tests.train.toy import ToyDataset, ToyModel, sigkill_after_steps, toy_collate, toy_config, toy_datasets

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **extra}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if key not in extra:
            env.pop(key, None)
    return env


def _cmd(out, *flags):
    return [sys.executable, "-m", "tests.train.run_toy", str(out), *flags]


def _records(out):
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def _weights(out):
    model = ToyModel()
    load_checkpoint(find_latest(Path(out) / "checkpoints"), model)
    return model.state_dict()


def test_jsonl_log_contents(tmp_path):
    cfg = toy_config(epochs=2)
    summary = Trainer(cfg, ToyModel(), toy_datasets(), tmp_path, collate=toy_collate, progress=False).fit()
    recs = _records(tmp_path)
    # det: ceil(10/4)=3, pairs: ceil(16/8)=2 iterations per epoch
    assert summary["steps"] == 10 and [r["step"] for r in recs] == list(range(1, 11))
    assert [r["epoch"] for r in recs] == [0] * 5 + [1] * 5
    assert all(sorted(r["position"] for r in recs if r["epoch"] == e) == list(range(5)) for e in (0, 1))
    for r in recs:
        assert {"step", "epoch", "position", "source", "kind", "loss", "lr", "seconds"} <= set(r)
        assert (r["source"], r["kind"]) in {("det", "detection"), ("pairs", "image_text")}
        extra = "loss_reg" if r["kind"] == "detection" else "loss_contrastive"
        assert extra in r and r["loss"] == pytest.approx(r["loss_reg"] if extra == "loss_reg" else 0.1 * r[extra])
        assert r["lr"]["text"] == pytest.approx(0.1 * r["lr"]["image"])
    assert recs[0]["lr"]["image"] == pytest.approx(1e-2 * 0.001)  # warm-up starts at ratio 0.001
    assert sum(r["source"] == "det" for r in recs) == 6
    assert json.loads((tmp_path / "config.json").read_text())["name"] == "toy"


def test_two_gloo_ranks_equal_one_rank_with_the_same_global_batch(tmp_path):
    port = str(free_port())
    procs = [
        subprocess.Popen(
            _cmd(tmp_path / "ddp", "--dropout", "0"),
            env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=port),
            stderr=subprocess.PIPE,
        )
        for r in range(2)
    ]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    assert all(p.returncode == 0 for p in procs), errs
    one = subprocess.run(_cmd(tmp_path / "one", "--dropout", "0"), env=_env(), capture_output=True, timeout=120)
    assert one.returncode == 0, one.stderr
    # and one rank reaching the same global batch by accumulation (micro-batch 2)
    acc = subprocess.run(
        _cmd(tmp_path / "acc", "--dropout", "0", "--micro", "2"), env=_env(), capture_output=True, timeout=120
    )
    assert acc.returncode == 0, acc.stderr
    w_ddp, w_one, w_acc = _weights(tmp_path / "ddp"), _weights(tmp_path / "one"), _weights(tmp_path / "acc")
    for key in w_one:
        torch.testing.assert_close(w_ddp[key], w_one[key], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(w_acc[key], w_one[key], rtol=1e-5, atol=1e-6)
    l_ddp = [r["loss"] for r in _records(tmp_path / "ddp")]
    l_one = [r["loss"] for r in _records(tmp_path / "one")]
    assert l_ddp == pytest.approx(l_one, rel=1e-5)
    assert w_one["head.weight"].ne(ToyModel().state_dict()["head.weight"]).any()  # training moved the weights


def test_sigkill_then_resume_gives_the_same_loss_curve(tmp_path):
    ref = subprocess.run(_cmd(tmp_path / "ref", "--epochs", "3"), env=_env(), capture_output=True, timeout=120)
    assert ref.returncode == 0, ref.stderr
    metrics = tmp_path / "run" / "metrics.jsonl"
    killed_at = sigkill_after_steps(_cmd(tmp_path / "run", "--epochs", "3", "--slow"), _env(), metrics, 7)
    assert 7 <= killed_at < 15
    resumed = subprocess.run(
        _cmd(tmp_path / "run", "--epochs", "3", "--resume"), env=_env(), capture_output=True, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    got, want = _records(tmp_path / "run"), _records(tmp_path / "ref")
    assert [r["step"] for r in got] == list(range(1, 16))
    assert [(r["source"], r["loss"]) for r in got] == [(r["source"], r["loss"]) for r in want]
    w_run, w_ref = _weights(tmp_path / "run"), _weights(tmp_path / "ref")
    assert all(torch.equal(w_run[k], w_ref[k]) for k in w_ref)


def test_odinw_style_finetune_with_scripted_val_ap(tmp_path):
    cfg = toy_config(epochs=30)
    cfg = type(cfg)(
        **{
            **cfg.__dict__,
            "data": cfg.data[:1],
            "schedule": ScheduleConfig(kind="auto_step", epochs=30, warmup_iters=2),
            "early_stop": EarlyStopConfig(t1=2, t2=3, factor=0.1, min_lr=1e-4),
        }
    )
    script = iter([0.1, 0.3, 0.2, 0.2, 0.25, 0.29, 0.3, 0.3, 0.3, 0.3, 0.9])
    snapshots = {}

    def evaluate_val(model):
        epoch = len(snapshots)
        snapshots[epoch] = model.head.weight.detach().clone()
        return next(script)

    model = ToyModel()
    res = finetune(
        cfg,
        model,
        ToyDataset(10, 1),
        tmp_path,
        member="toy/a",
        evaluate_val=evaluate_val,
        collate=toy_collate,
        progress=False,
    )
    # lr 1e-2 (image) -> decay at e3 -> 1e-3 -> decay at e5 -> 1e-4 = floor; stale e6,e7,e8 -> stop at e8
    assert [h["epoch"] for h in res.history if h["decayed"]] == [3, 5]
    assert res.stopped_early and res.epochs_run == 9 and len(res.history) == 9
    assert res.best_epoch == 1 and res.best_val_ap == 0.3 and res.num_decays == 2
    assert torch.equal(model.head.weight.detach(), snapshots[1])  # the best-val weights were reloaded
    recs = _records(tmp_path)
    per_epoch_lr = {r["epoch"]: r["lr"]["image"] for r in recs}
    assert per_epoch_lr[4] == pytest.approx(1e-3) and per_epoch_lr[6] == pytest.approx(1e-4)
    assert per_epoch_lr[8] == pytest.approx(1e-4)


def test_warns_when_accumulation_shrinks_the_contrastive_batch(tmp_path, caplog):
    # pairs: global batch 8, one rank feeding micro-batches of 2 → each contrastive loss sees 2 images
    with caplog.at_level(logging.WARNING, logger="detclip_bench.train"):
        Trainer(toy_config(micro=2), ToyModel(), toy_datasets(), tmp_path, collate=toy_collate, progress=False)
    shrunk = [r.getMessage() for r in caplog.records if "contrastive batch" in r.getMessage()]
    assert len(shrunk) == 1  # once, for the image-text source only (det accumulates too but has no contrastive loss)
    assert "'pairs'" in shrunk[0] and "micro_batch 2 x world 1 = 2" in shrunk[0] and "global batch 8" in shrunk[0]
    assert "more GPUs" in shrunk[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="detclip_bench.train"):
        Trainer(toy_config(micro=0), ToyModel(), toy_datasets(), tmp_path / "b", collate=toy_collate, progress=False)
    assert not [r for r in caplog.records if "contrastive batch" in r.getMessage()]


def test_contrastive_warning_counts_the_world():
    from reference_model.train.engine import warn_small_contrastive_batches

    cfg = toy_config(micro=2)  # pairs: global 8
    assert warn_small_contrastive_batches(cfg, 4) == []  # 8 / 4 ranks = 2 per rank = micro: the full batch
    (msg,) = warn_small_contrastive_batches(cfg, 2)
    assert "micro_batch 2 x world 2 = 4" in msg
