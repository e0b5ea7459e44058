"""Tables 4–7 (and the data-scaling claim) as experiments: every FULL run against the paper's rows."""

import pytest

from detclip_bench.schema import DataKind
from leaderboards.paper import load_paper_tables
from recipes import EXPERIMENTS, get_experiment, get_recipe
from recipes.experiment import Experiment, Pretrain, with_sources

PAPER = {t.id: t for t in load_paper_tables()}
TABLE1_T = get_recipe("table1-pretrain-t", "full")


def kinds(cfg) -> dict[str, DataKind]:
    return {d.name: d.kind for d in cfg.data}


def data_label(cfg) -> str:
    """The paper's way of naming a data mix, read back from a config's sources."""
    names = {"o365": "O365", "goldg": "GoldG", "cc15m": "CC15M", "cc3m": "CC3M", "in1k": "IN1k"}
    present = {d.name for d in cfg.data}
    if {"cc3m", "cc12m"} <= present:  # CC3M + CC12M is the paper's CC15M
        present = (present - {"cc3m", "cc12m"}) | {"cc15m"}
    return "+".join(names[n] for n in names if n in present)


@pytest.mark.parametrize("table", sorted(EXPERIMENTS))
@pytest.mark.parametrize("scale", ["full", "mini"])
def test_every_experiment_builds_and_names_real_paper_rows(table, scale):
    exp = get_experiment(table, scale)
    paper = PAPER[exp.paper_table]
    rows = {e.source.row for e in paper.entries}
    for run in exp.pretrain:
        assert not run.row or run.row in rows, f"{run.row!r} is not a row of {paper.id}"
        assert data_label(run.config) == run.pretrain_data, run.key


@pytest.mark.parametrize("table", ["4", "5", "claims"])
def test_full_runs_keep_table1_settings_except_the_data(table):
    for run in get_experiment(table, "full").pretrain:
        base = get_recipe("table1-pretrain-l" if run.key.startswith("l-") else "table1-pretrain-t", "full")
        assert run.config.optim == base.optim and run.config.schedule == base.schedule
        assert run.config.model == base.model and run.config.amp and run.config.grad_checkpointing
        for d in run.config.data:
            if d.name in ("o365", "goldg", "goldg-flickr"):
                assert d == base.source(d.name)


def test_table4_full_sweeps_image_text_resolution_on_o365_cc3m():
    exp = get_experiment("4", "full")
    paper = {e.source.row: e for e in PAPER["appendix-4"].entries}
    for run in exp.pretrain:
        assert kinds(run.config) == {"o365": DataKind.DETECTION, "cc3m": DataKind.IMAGE_TEXT}
        size = run.config.source("cc3m").size
        assert size[0] == size[1] == paper[run.row].config["image_text_resolution"]
        assert run.config.source("cc3m").batch_size == 6144  # Table 1's image-text batch
    assert exp.measure_cost and len(exp.zero_shot) == 4 and {z.suite for z in exp.zero_shot} == {"lvis-minival"}


def test_table5_full_rows_match_the_paper_data_and_in1k_is_replicated_three_times():
    exp = get_experiment("5", "full")
    paper = {e.source.row: e for e in PAPER["appendix-5"].entries}
    assert sorted(r.row for r in exp.pretrain) == sorted(paper)
    for run in exp.pretrain:
        assert run.pretrain_data == paper[run.row].pretrain_data
        assert (run.model or exp.model) == paper[run.row].model
        if "IN1k" in run.pretrain_data:
            in1k = run.config.source("in1k")
            assert in1k.kind is DataKind.CLASSIFICATION and in1k.repeat == 3
            assert in1k.size == (320, 320) and in1k.batch_size == 6144  # "the same image-text pair setting"


def test_tables_6_and_7_fine_tune_with_the_table_2_and_3_recipes():
    t6, t7 = get_experiment("6", "full"), get_experiment("7", "full")
    assert [f.config for f in t6.finetune] == [get_recipe("table2-lvis-finetune", "full")] * 2
    assert [f.config for f in t7.finetune] == [get_recipe("table3-odinw13-finetune", "full")] * 2
    assert {z.suite for z in t6.zero_shot} == {f.suite for f in t6.finetune} == {"lvis-val"}
    assert {f.suite for f in t7.finetune} == {"odinw13-finetune"}
    assert [p.config for p in t6.pretrain] == [TABLE1_T, get_recipe("table1-pretrain-l", "full")]


def test_experiment_rejects_unknown_runs_and_missing_sources():
    run = Pretrain("a", TABLE1_T, "O365")
    with pytest.raises(ValueError, match="unknown run 'b'"):
        from recipes.experiment import ZeroShot

        Experiment("x", "x", "", "m", "b", (run,), zero_shot=(ZeroShot("b", "lvis-val"),))
    with pytest.raises(ValueError, match="no data source"):
        with_sources(TABLE1_T, "x", ("o365", "nope"))
