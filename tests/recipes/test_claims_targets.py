"""The claims-targets check reads a reproduction's own numbers and says which targets hold."""

from __future__ import annotations

import json

import pytest

from recipes.claims_targets import check_targets, main, render_targets


def _folder(tmp_path, *, caption=(5.0, 3.0), detection=(1.0, 1.0), control_ap=(40.0, 41.0), top1=0.3, gap=0.2):
    out = tmp_path / "run"
    out.mkdir()
    delta = {
        str(s): {"group:caption": c, "group:detection": d}
        for s, (c, d) in enumerate(zip(caption, detection, strict=True))
    }
    delta["mean"] = {"group:caption": sum(caption) / 2, "group:detection": sum(detection) / 2}
    sd = abs(control_ap[0] - control_ap[1]) / 2**0.5
    intervals = {str(s): {"group:caption": {"interval": [(c - 3) / 100, (c + 3) / 100]}} for s, c in enumerate(caption)}
    split = {"delta": delta, "sd": {"without pairs": {"AP": sd}}, "intervals": {"per_seed": intervals}}
    (out / "claims-mini-paired.json").write_text(json.dumps({"mini-lvis": split, "mini-lvis-val": split}))
    runs = [{"run": "random-init"}]
    for seed in (0, 1):
        facts = {"detection_loss_change_over_last_epoch": -0.05}
        runs.append({"run": f"o365-goldg-s{seed}", "arm": "without pairs", "seed": seed, "training": facts})
        treat = {**facts, "text_to_image_top1": top1, "chance_top1": 0.0625, "cosine_gap": gap}
        runs.append({"run": f"o365-goldg-cc-s{seed}", "arm": "with pairs", "seed": seed, "training": treat})
    (out / "claims-mini.json").write_text(json.dumps({"runs": runs}))
    metrics = out / "pretrain" / "o365-goldg-s1"
    metrics.mkdir(parents=True)
    rows = [{"step": i, "grad_norm": n, "grad_clipped": float(n > 35)} for i, n in enumerate((10.0, 500.0, 40.0, 12.0))]
    (metrics / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def test_all_targets_hold(tmp_path):
    check = check_targets(_folder(tmp_path))
    assert check["holds"]
    assert check["splits"]["mini-lvis"]["mean_caption"] == 4.0
    clipped = {r["run"]: r["clipped_updates"] for r in check["runs"]}
    assert clipped["o365-goldg-s1"] == 2 and clipped["o365-goldg-s0"] is None
    table = render_targets({"w0": check})
    assert "| w0 | mini-lvis | +5.0 [+2.0, +8.0] / +3.0 [+0.0, +6.0] | yes |" in table
    assert "| w0 | 1 | 0.300: yes | 0.200: yes | -5.0 % / -5.0 % | 2 / – |" in table


@pytest.mark.parametrize(
    "kwargs, failing",
    [
        ({"caption": (5.0, 1.9)}, "every_seed_above"),
        ({"caption": (2.5, 2.5), "detection": (3.0, 3.0)}, "caption_above_detection"),
        ({"control_ap": (40.0, 45.0)}, "control_sd_ok"),
        ({"top1": 0.2}, "gauges"),
        ({"gap": 0.09}, "gauges"),
    ],
)
def test_each_target_can_fail(tmp_path, kwargs, failing, capsys):
    folder = _folder(tmp_path, **kwargs)
    check = check_targets(folder)
    assert not check["holds"]
    if failing == "gauges":
        assert not all(r.get("gauges_ok", True) for r in check["runs"])
    else:
        assert not check["splits"]["mini-lvis"][failing]
    assert main([str(folder)]) == 1
    assert "**no**" in capsys.readouterr().out


def test_missing_report_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"claims-mini-paired\.json"):
        check_targets(tmp_path)


def test_json_written_once(tmp_path, capsys):
    folder = _folder(tmp_path)
    target = tmp_path / "targets.json"
    assert main([str(folder), "--labels", "w0", "--json", str(target)]) == 0
    assert json.loads(target.read_text())["w0"]["holds"] is True
    with pytest.raises(SystemExit):
        main([str(folder), "--json", str(target)])
    assert "exists" in capsys.readouterr().err
