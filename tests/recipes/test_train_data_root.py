"""`train` finds its data root by the rule every verb states: --data-root, else $DETCLIP_BENCH_DATA, else here."""

from __future__ import annotations

from pathlib import Path

from detclip_bench.cli.main import build_parser
from recipes.cli.train import resolve_recipe


def _data_paths(cfg) -> list[Path]:
    return [Path(d.path) for d in cfg.data if d.path]


def test_train_reads_the_data_root_from_the_option_then_the_environment(small_world, tmp_path, monkeypatch):
    parse = build_parser().parse_args
    argv = ["train", "--recipe", "table1-pretrain-t", "--scale", "mini"]
    monkeypatch.setenv("DETCLIP_BENCH_DATA", str(small_world))
    from_env = resolve_recipe("table1-pretrain-t", parse(argv))
    assert from_env.data and all(p.is_relative_to(small_world) for p in _data_paths(from_env))
    given = resolve_recipe("table1-pretrain-t", parse([*argv, "--data-root", str(small_world)]))
    assert _data_paths(given) == _data_paths(from_env)  # the option and the variable name the same files
    monkeypatch.delenv("DETCLIP_BENCH_DATA")
    monkeypatch.chdir(small_world)  # neither: the current folder
    here = resolve_recipe("table1-pretrain-t", parse(argv))
    assert [small_world / p for p in _data_paths(here)] == _data_paths(from_env)
