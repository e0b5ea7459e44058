"""One vocabulary of flags across every verb (issue 27, point 8).

The full parser (core verbs and those registered through entry points) is walked verb by verb and sub-verb by
sub-verb. Each shared option, where a verb has it, is declared by ``detclip_bench.cli.options`` and so has one
spelling, default, metavar and help text; no verb shows an old spelling; the old spellings still parse, hidden,
into the same destination. ``test_the_check_catches_*`` show that the check fails on a verb that strays.
"""

from __future__ import annotations

import argparse
import json

import pytest

from detclip_bench.cli import options
from detclip_bench.cli.main import build_parser, main

# option -> the verbs that must offer it ("data download" is a sub-verb); a verb gaining or losing one is a choice
# to make here, on purpose
EXPECTED = {
    "--device": {"eval", "predict", "train", "finetune", "reproduce"},
    "--batch-size": {"eval", "predict", "finetune", "reproduce"},
    "--workers": {"eval", "predict"},
    "--data-root": {
        "eval",
        "predict",
        "export",
        "compare",
        "analyze",
        "report",
        "train",
        "finetune",
        "reproduce",
        "data download",
        "data verify",
    },
    "--data-map": {"eval", "compare", "train", "finetune", "data validate"},
}
# option -> (default, metavar, help): identical in every verb that has it
IDENTICAL = {
    "--device": (options.DEVICE_DEFAULT, "DEVICE", options.DEVICE_HELP),
    "--batch-size": (options.BATCH_SIZE_DEFAULT, "N", options.BATCH_SIZE_HELP),
    "--workers": (None, "N", options.WORKERS_HELP),
    "--data-map": ([], "NAME=FOLDER[,...]", options.DATA_MAP_HELP),
}
STANDARD_DATA_ROOT_HELP = f"data root (default: {options.DATA_ROOT_DEFAULT_HELP})"
# verbs whose data root is found otherwise than a suite's (no suite to choose $DETCLIP_BENCH_DATA or _MINI by):
# their --data-root help states their own default, in the same form
OWN_DATA_ROOT_DEFAULT = {"train", "reproduce", "data download", "data verify"}
# spellings a verb must not offer (shown in --help): an old spelling, or a synonym of a shared option
NOT_SHOWN = {"--root", "--results", "--output", "--output-dir", "--out-dir", "--results-dir", "--run-dir", "--gpu"}


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(verb path, parser) for the parser and every sub-verb below it, each once."""
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield from _parsers(sub, (*path, name))


def _options(parser) -> dict[str, argparse.Action]:
    return {flag: a for a in parser._actions for flag in a.option_strings}


def vocabulary_problems(parser: argparse.ArgumentParser, expected: dict[str, set[str]] | None = None) -> list[str]:
    """Every way a parser's verbs disagree with the one vocabulary (empty: none)."""
    problems = []
    have: dict[str, set[str]] = {flag: set() for flag in expected or {}}
    for verb, p in _parsers(parser):
        opts = _options(p)
        shown = {flag for flag, a in opts.items() if a.help != argparse.SUPPRESS}
        hidden = {flag: a for flag, a in opts.items() if a.help == argparse.SUPPRESS}
        for flag in sorted(shown & NOT_SHOWN):
            problems.append(f"{verb}: shows {flag}")
        text = p.format_help()
        for flag in sorted(NOT_SHOWN):
            if f"{flag} " in text or f"{flag}\n" in text:
                problems.append(f"{verb}: its help mentions {flag}")
        for flag, a in hidden.items():
            if flag not in options.HIDDEN_ALIASES:
                problems.append(f"{verb}: hidden option {flag} is no known alias")
            elif not any(b.dest == a.dest and b.help != argparse.SUPPRESS for b in p._actions):
                problems.append(f"{verb}: hidden {flag} parses into {a.dest!r}, which no shown option sets")
        for flag in have:
            if flag in opts:
                have[flag].add(verb)
        for flag, (default, metavar, help_) in IDENTICAL.items():
            a = opts.get(flag)
            if a is not None and (a.default, a.metavar, a.help, a.dest) != (default, metavar, help_, a.dest):
                problems.append(
                    f"{verb}: {flag} default={a.default!r} metavar={a.metavar!r} help={a.help!r}; "
                    f"every verb says default={default!r} metavar={metavar!r} help={help_!r}"
                )
        a = opts.get("--data-root")
        if a is not None:
            if (a.dest, a.metavar, a.default) != ("data_root", "DIR", None):
                problems.append(f"{verb}: --data-root dest={a.dest!r} metavar={a.metavar!r} default={a.default!r}")
            if verb in OWN_DATA_ROOT_DEFAULT:
                if not (a.help.startswith("data root (default: ") and a.help != STANDARD_DATA_ROOT_HELP):
                    problems.append(f"{verb}: --data-root help {a.help!r} should state its own default")
            elif a.help != STANDARD_DATA_ROOT_HELP:
                problems.append(f"{verb}: --data-root help {a.help!r}, every verb says {STANDARD_DATA_ROOT_HELP!r}")
        a = opts.get("--out")
        if a is not None and (
            a.dest != "out" or a.metavar != "DIR" or not a.help.startswith(options.OUT_HELP_PREFIX + " (")
        ):
            problems.append(f"{verb}: --out metavar={a.metavar!r} help={a.help!r}: --out is always an output folder")
        for a in p._actions:
            if (
                not a.option_strings
                and a.dest == "run_dir"
                and (a.metavar, a.help) != ("RUN_DIR", options.RUN_DIR_HELP)
            ):
                problems.append(f"{verb}: RUN_DIR metavar={a.metavar!r} help={a.help!r}")
    for flag, verbs in (expected or {}).items():
        if have[flag] != verbs:
            problems.append(
                f"{flag}: offered by {sorted(have[flag])}, expected {sorted(verbs)} "
                f"(missing {sorted(verbs - have[flag])}, extra {sorted(have[flag] - verbs)})"
            )
    return problems


@pytest.fixture(scope="module")
def parser():
    return build_parser()


def test_every_verb_shows_each_shared_option_the_same_way(parser):
    assert vocabulary_problems(parser, EXPECTED) == []


def test_the_walk_reaches_entry_point_verbs_and_sub_verbs(parser):
    verbs = {verb for verb, _ in _parsers(parser)}
    assert {"train", "finetune", "reproduce", "export", "leaderboard", "data download", "data verify"} <= verbs


@pytest.mark.parametrize(
    ("argv", "dest", "old"),
    [
        (["data", "download", "odinw13", "--root", "D"], "data_root", "--root"),
        (["data", "verify", "--root", "D"], "data_root", "--root"),
        (["analyze", "--results", "D"], "run_dir", "--results"),
        (["report", "--results", "D"], "run_dir", "--results"),
        (["leaderboard", "--results", "D"], "store", "--results"),
    ],
)
def test_an_old_spelling_parses_like_the_new_one(parser, argv, dest, old):
    new = {"data_root": "--data-root", "store": "--store"}.get(dest)
    assert getattr(parser.parse_args(argv), dest) == "D"
    now = [x for x in argv if x != old]
    if new is not None:
        now.insert(len(now) - 1, new)
    assert getattr(parser.parse_args(now), dest) == "D"


def test_run_dir_is_required_in_words(capsys):
    assert main(["report"]) == 2
    assert "RUN_DIR" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- the check can fail


def _toy(build) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="toy")
    sub = p.add_subparsers(dest="verb")
    good = sub.add_parser("good")
    options.add_device_option(good)
    options.add_data_root_option(good)
    build(sub.add_parser("bad"))
    return p


def test_the_check_catches_a_verb_with_its_own_device_default():
    problems = vocabulary_problems(_toy(lambda p: p.add_argument("--device", default="cpu", help="cpu | cuda")))
    assert len(problems) == 1 and problems[0].startswith("bad: --device default='cpu'")


def test_the_check_catches_an_old_spelling_shown_and_a_copied_declaration():
    def bad(p):
        p.add_argument("--root", help="data root")
        p.add_argument("--data-root", help="data root (default: as eval)")

    problems = vocabulary_problems(_toy(bad))
    assert "bad: shows --root" in problems and any(x.startswith("bad: --data-root dest=") for x in problems)


def test_the_check_catches_a_verb_missing_a_shared_option():
    problems = vocabulary_problems(_toy(lambda p: None), {"--device": {"good", "bad"}})
    assert problems == ["--device: offered by ['good'], expected ['bad', 'good'] (missing ['bad'], extra [])"]


# ----------------------------------------------------------------------------------- --out is a folder


@pytest.fixture
def score_files(tmp_path):
    gt = {
        "images": [{"id": 1, "width": 10, "height": 10, "file_name": "a.jpg"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "cat"}],
    }
    pred = [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 0.9}]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    return ["score", "--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"), "--protocol", "coco"]


def test_score_out_is_a_folder_holding_score_json(tmp_path, score_files, capsys):
    assert main([*score_files, "--out", str(tmp_path / "runs" / "score")]) == 0
    assert json.loads((tmp_path / "runs" / "score" / "score.json").read_text())["metrics"]["AP"] == pytest.approx(1.0)
    assert "note:" not in capsys.readouterr().err


def test_score_out_as_a_file_still_works_with_a_note(tmp_path, score_files, capsys):
    assert main([*score_files, "--out", str(tmp_path / "old.json")]) == 0
    assert json.loads((tmp_path / "old.json").read_text())["protocol"]
    assert "--out names a folder now" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- --device auto


def test_auto_device_is_what_torch_sees(monkeypatch):
    import torch

    from detclip_bench.dist import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cuda:1") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"


def test_load_detector_resolves_auto_unless_the_family_does(monkeypatch):
    from detclip_bench.adapters import models

    seen = {}

    def torch_family(source, *, device):
        seen["torch"] = device

    def own_family(source, *, device):
        seen["own"] = device

    own_family.resolves_auto_device = True
    monkeypatch.setattr(models, "_FAMILIES", {*models._FAMILIES, "toyt", "toyo"})
    monkeypatch.setattr(models.MODELS, "get", lambda name: {"toyt": torch_family, "toyo": own_family}[name])
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    models.load_detector("toyt:x", device="auto")
    models.load_detector("toyo:x", device="auto")
    assert seen == {"torch": "cpu", "own": "auto"}
