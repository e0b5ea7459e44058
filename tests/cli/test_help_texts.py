"""Help texts a new user reads: each ``data`` sub-verb shows its own examples, shell-ready; ``ls suites`` says what
each suite is (issue 27, point 9)."""

from __future__ import annotations

import pytest

from detclip_bench.cli.data import EXAMPLES_BY_VERB
from detclip_bench.cli.main import main
from detclip_bench.suites import SUITES, get_suite


def _help(argv, capsys) -> str:
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("verb", sorted(EXAMPLES_BY_VERB))
def test_each_data_verb_shows_only_its_own_examples(verb, capsys):
    text = _help(["data", verb], capsys)
    examples = text[text.index("examples:") :]
    shown = {line.split()[2] for line in examples.splitlines()[1:] if line.strip().startswith("detclip-bench data")}
    assert shown == {verb}


def test_data_help_shows_every_example(capsys):
    text = _help(["data"], capsys)
    assert all(f"detclip-bench data {verb}" in text for verb in EXAMPLES_BY_VERB)


def test_a_continued_example_line_ends_in_a_backslash_and_goes_on_below(capsys):
    lines = _help(["data", "make-dictionary"], capsys).splitlines()
    (k,) = [i for i, line in enumerate(lines) if "data make-dictionary --o365" in line]
    assert lines[k].endswith(" \\") and lines[k + 1].lstrip().startswith("--goldg ")


def test_ls_suites_says_what_each_suite_scores(capsys):
    assert main(["ls", "suites"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for name in SUITES.names():
        assert f"{name} {get_suite(name).description}" in out
