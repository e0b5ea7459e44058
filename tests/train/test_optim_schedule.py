import math

import pytest
import torch

from reference_model.train.config import OptimConfig, ScheduleConfig
from reference_model.train.optim import build_optimizer, param_groups, peak_lrs, sqrt_scaled_lr
from reference_model.train.schedule import build_scheduler, set_decay
from tests.train.toy import ToyModel


def test_sqrt_rule_reproduces_the_appendix_peaks():
    assert sqrt_scaled_lr(1e-4, 128) == pytest.approx(2.828427e-4, rel=1e-6)
    assert round(sqrt_scaled_lr(1e-4, 128), 5) == 2.8e-4  # the printed, rounded value
    assert sqrt_scaled_lr(1e-4, 256) == pytest.approx(4e-4, rel=1e-12)
    assert sqrt_scaled_lr(1e-4, 16) == pytest.approx(1e-4)
    assert peak_lrs(OptimConfig(lr_rule="sqrt", base_lr=1e-4, text_lr_mult=0.1), 64) == pytest.approx((2e-4, 2e-5))
    assert peak_lrs(OptimConfig(lr=3e-4, text_lr_mult=0.01), 64) == pytest.approx((3e-4, 3e-6))
    with pytest.raises(ValueError):
        sqrt_scaled_lr(1e-4, 0)


def test_param_groups_text_lr_and_no_decay_on_1d():
    model = ToyModel()
    groups = {g["name"]: g for g in param_groups(model, OptimConfig(lr=1e-3, text_lr_mult=0.1), 16)}
    assert set(groups) == {"image", "image_no_decay", "text", "text_no_decay"}
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)] for p in groups["text"]["params"]} == {"text_encoder.0.weight"}
    assert {names[id(p)] for p in groups["text_no_decay"]["params"]} == {"text_encoder.0.bias"}
    assert {names[id(p)] for p in groups["image"]["params"]} == {"backbone.weight", "head.weight"}
    assert groups["text"]["lr"] == pytest.approx(1e-4) and groups["image"]["lr"] == pytest.approx(1e-3)
    assert groups["image_no_decay"]["weight_decay"] == 0.0 and groups["image"]["weight_decay"] == 0.05
    total = sum(len(g["params"]) for g in groups.values())
    assert total == len(list(model.parameters()))
    both = param_groups(model, OptimConfig(no_decay_norm_bias=False), 16)
    assert {g["name"] for g in both} == {"image", "text"}
    opt = build_optimizer(model, OptimConfig(betas=(0.9, 0.999)), 16)
    assert opt.defaults["betas"] == (0.9, 0.999)


def test_param_groups_see_through_ddp_prefix():
    wrapper = torch.nn.Module()
    wrapper.module = ToyModel()
    names = {g["name"] for g in param_groups(wrapper, OptimConfig(), 16)}
    assert "text" in names


def test_warmup_then_cosine_values():
    model = ToyModel()
    opt = build_optimizer(model, OptimConfig(lr=1e-3, text_lr_mult=0.1), 16)
    sched = build_scheduler(opt, ScheduleConfig(kind="cosine", epochs=1, warmup_iters=10, warmup_ratio=0.001), 100)
    lrs = []
    for _ in range(101):
        lrs.append({g["name"]: g["lr"] for g in opt.param_groups})
        opt.step()
        sched.step()
    for it in (0, 5, 10, 50, 99, 100):
        cos = 0.5 * (1 + math.cos(math.pi * it / 100))
        warm = 0.001 + 0.999 * it / 10 if it < 10 else 1.0
        assert lrs[it]["image"] == pytest.approx(1e-3 * cos * warm, rel=1e-9)
        assert lrs[it]["text"] == pytest.approx(1e-4 * cos * warm, rel=1e-9)
    assert lrs[0]["image"] == pytest.approx(1e-6)
    assert lrs[100]["image"] == pytest.approx(0.0, abs=1e-15)


def test_auto_step_decay_and_per_group_floor():
    model = ToyModel()
    opt = build_optimizer(model, OptimConfig(lr=4e-5, text_lr_mult=0.01), 16)
    sched = build_scheduler(opt, ScheduleConfig(kind="auto_step", epochs=1, warmup_iters=2), 100, min_lr=1e-8)
    for _ in range(3):
        opt.step()
        sched.step()
    assert {g["name"]: g["lr"] for g in opt.param_groups}["image"] == pytest.approx(4e-5)
    set_decay(sched, 0.01)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs["image"] == pytest.approx(4e-7) and lrs["text"] == pytest.approx(1e-8)  # 4e-9 floored
    state = sched.state_dict()
    sched2 = build_scheduler(
        build_optimizer(ToyModel(), OptimConfig(lr=4e-5, text_lr_mult=0.01), 16),
        ScheduleConfig(kind="auto_step", epochs=1, warmup_iters=2),
        100,
        min_lr=1e-8,
    )
    sched2.load_state_dict(state)
    assert sched2.lr_lambdas[0].decay == 0.01
