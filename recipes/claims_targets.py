"""The mini claims' declared targets, checked on finished reproductions.

    python -m recipes.claims_targets runs/mini runs/w1 runs/w2 [--json targets.json]

Reads each folder's ``claims-mini-paired.json`` and ``claims-mini.json`` (``reproduce --scale mini``) and
prints, per world and split, whether the targets fixed before the claims runs hold
(``docs/paired_ablations.md``):

* every training seed's Δ caption-only AP (with − without pairs) is above ``CAPTION_GAIN`` points;
* the mean caption-only gain exceeds the mean detection-group gain;
* the arm without pairs spreads at most ``CONTROL_SD`` AP (sd over training seeds);
* on held-out pairs the arm with pairs reaches text→image top-1 ≥ ``TOP1_OVER_CHANCE`` × chance and an
  own-image cosine gap ≥ ``COSINE_GAP``.

It also gives each run's detection-loss change over its last epoch (a linear fit; flat ≈ 0) and, where the
run clipped gradients, how many updates the clip scaled down. Nothing is recomputed: the numbers are the
reproduction's own.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["check_targets", "render_targets"]

CAPTION_GAIN = 2.0
CONTROL_SD = 3.0
TOP1_OVER_CHANCE = 4.0
COSINE_GAP = 0.1
CONTROL, TREATMENT = "without pairs", "with pairs"


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: not found; is {path.parent} a finished `reproduce --scale mini` folder?"
        ) from None


def _clipped_updates(out: Path, run: str) -> int | None:
    metrics = out / "pretrain" / run / "metrics.jsonl"
    if not metrics.exists():
        return None
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    if not any("grad_clipped" in r for r in records):
        return None
    return int(sum(r.get("grad_clipped", 0) for r in records))


def check_targets(out: str | Path) -> dict[str, Any]:
    """{"splits": {suite: {...}}, "runs": [...], "holds": bool} for one finished reproduction folder."""
    out = Path(out)
    paired = _read(out / "claims-mini-paired.json")
    report = _read(out / "claims-mini.json")
    splits = {}
    for suite, summary in paired.items():
        seeds = sorted(k for k in summary["delta"] if k not in ("mean", "sd"))
        per_seed = {
            seed: {
                "caption": summary["delta"][seed]["group:caption"],
                "interval": [100 * v for v in summary["intervals"]["per_seed"][seed]["group:caption"]["interval"]],
            }
            for seed in seeds
        }
        mean_caption = summary["delta"]["mean"]["group:caption"]
        mean_detection = summary["delta"]["mean"]["group:detection"]
        control_sd = summary["sd"][CONTROL]["AP"] if len(seeds) > 1 else None
        splits[suite] = {
            "per_seed": per_seed,
            "every_seed_above": all(v["caption"] > CAPTION_GAIN for v in per_seed.values()),
            "mean_caption": mean_caption,
            "mean_detection": mean_detection,
            "caption_above_detection": mean_caption > mean_detection,
            "control_sd": control_sd,
            "control_sd_ok": control_sd is not None and control_sd <= CONTROL_SD,
        }
    runs = []
    for run in report["runs"]:
        if not run.get("arm"):
            continue
        facts = run.get("training") or {}
        entry = {
            "run": run["run"],
            "arm": run["arm"],
            "seed": run["seed"],
            "loss_change_last_epoch": facts.get("detection_loss_change_over_last_epoch"),
            "clipped_updates": _clipped_updates(out, run["run"]),
        }
        if run["arm"] == TREATMENT:
            top1, chance, gap = facts.get("text_to_image_top1"), facts.get("chance_top1"), facts.get("cosine_gap")
            entry.update(top1=top1, chance=chance, cosine_gap=gap)
            entry["gauges_ok"] = (
                None not in (top1, chance, gap) and top1 >= TOP1_OVER_CHANCE * chance and gap >= COSINE_GAP
            )
        runs.append(entry)
    holds = all(s["every_seed_above"] and s["caption_above_detection"] and s["control_sd_ok"] for s in splits.values())
    holds = holds and all(r.get("gauges_ok", True) for r in runs)
    return {"folder": str(out), "splits": splits, "runs": runs, "holds": holds}


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def render_targets(checks: dict[str, dict[str, Any]]) -> str:
    """Markdown: one row per (world, split), then one per (world, training seed)."""
    lines = [
        f"| world | split | Δ caption-only per seed [95 % interval] | every seed > +{CAPTION_GAIN:g} | "
        f"mean Δ caption-only vs detection | control sd(AP) ≤ {CONTROL_SD:g} |",
        "|---|---|---|---|---|---|",
    ]
    for label, check in checks.items():
        for suite, s in check["splits"].items():
            cells = " / ".join(
                f"{v['caption']:+.1f} [{v['interval'][0]:+.1f}, {v['interval'][1]:+.1f}]"
                for v in s["per_seed"].values()
            )
            sd = "–" if s["control_sd"] is None else f"{s['control_sd']:.1f}: {_yes(s['control_sd_ok'])}"
            lines.append(
                f"| {label} | {suite} | {cells} | {_yes(s['every_seed_above'])} | {s['mean_caption']:+.1f} vs "
                f"{s['mean_detection']:+.1f}: {_yes(s['caption_above_detection'])} | {sd} |"
            )
    lines += [
        "",
        f"| world | training seed | held-out top-1 ≥ {TOP1_OVER_CHANCE:g}× chance | cosine gap ≥ {COSINE_GAP:g} | "
        "detection loss change over the last epoch, without / with pairs | clipped updates, without / with pairs |",
        "|---|---|---|---|---|---|",
    ]
    for label, check in checks.items():
        by_seed: dict[int, dict[str, dict]] = {}
        for run in check["runs"]:
            by_seed.setdefault(run["seed"], {})[run["arm"]] = run
        for seed, arms in sorted(by_seed.items()):
            treat, control = arms.get(TREATMENT, {}), arms.get(CONTROL, {})

            def change(run: dict) -> str:
                value = run.get("loss_change_last_epoch")
                return "–" if value is None else f"{100 * value:+.1f} %"

            def clipped(run: dict) -> str:
                return "–" if run.get("clipped_updates") is None else str(run["clipped_updates"])

            top1 = (
                "–"
                if treat.get("top1") is None
                else f"{treat['top1']:.3f}: {_yes(treat['top1'] >= TOP1_OVER_CHANCE * treat['chance'])}"
            )
            gap = (
                "–"
                if treat.get("cosine_gap") is None
                else f"{treat['cosine_gap']:.3f}: {_yes(treat['cosine_gap'] >= COSINE_GAP)}"
            )
            lines.append(
                f"| {label} | {seed} | {top1} | {gap} | {change(control)} / {change(treat)} | "
                f"{clipped(control)} / {clipped(treat)} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", help="finished `reproduce --scale mini --out DIR` folders")
    parser.add_argument("--labels", nargs="*", help="one label per folder (default: the folder names)")
    parser.add_argument("--json", help="also write the checks to this file (refuses to overwrite one)")
    args = parser.parse_args(argv)
    labels = args.labels or [Path(f).name for f in args.folders]
    if len(labels) != len(args.folders):
        parser.error(f"{len(labels)} labels for {len(args.folders)} folders")
    checks = {label: check_targets(folder) for label, folder in zip(labels, args.folders, strict=True)}
    print(render_targets(checks), end="")
    if args.json:
        path = Path(args.json)
        if path.exists():
            parser.error(f"{path} exists; give another --json path")
        path.write_text(json.dumps(checks, indent=1) + "\n")
    return 0 if all(c["holds"] for c in checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
