"""WordNet 3.0's noun database read directly (index.noun, data.noun, noun.exc), for the concept dictionary.

Debian's ``wordnet-base`` ships the database without the ``lexnames`` file nltk's reader needs, so the
few parts used here are read from the documented file format (``wndb(5WN)``); the tests compare this
reader with nltk's on a staged copy.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

from detclip_bench.errors import DataError

__all__ = ["PERSON_LEXFILE", "PHYSICAL_LEXFILES", "WORDNET_DIRS", "Sense", "WordNet", "clean_gloss", "find_wordnet"]

# WordNet's noun detachment rules (morphy(7WN)): inflected ending → base ending, after noun.exc.
_NOUN_DETACHMENTS = (
    ("s", ""),
    ("ses", "s"),
    ("xes", "x"),
    ("zes", "z"),
    ("ches", "ch"),
    ("shes", "sh"),
    ("men", "man"),
    ("ies", "y"),
)

#: Where WordNet 3.0's database files are looked for: ``$WNSEARCHDIR`` (WordNet's own variable for the
#: dict folder), Debian/Ubuntu's ``wordnet-base`` package, then WordNet's default install prefix.
WORDNET_DIRS = ("/usr/share/wordnet", "/usr/local/WordNet-3.0/dict", "/usr/local/share/wordnet")

#: Lexicographer files (lexnames(5WN) numbering) whose senses are things one can see and box.
PHYSICAL_LEXFILES = {
    3: "noun.Tops",
    5: "noun.animal",
    6: "noun.artifact",
    8: "noun.body",
    13: "noun.food",
    15: "noun.location",
    17: "noun.object",
    18: "noun.person",
    20: "noun.plant",
    27: "noun.substance",
}
PERSON_LEXFILE = 18


@dataclass(frozen=True)
class Sense:
    lemma: str
    number: int  # 1 = the most frequent sense (index.noun order)
    lexfile: int  # lexicographer file number (noun.artifact = 6, ...)
    instance: bool  # an instance of a class: a proper name ("Crane" the writer)
    definition: str

    @property
    def physical(self) -> bool:
        return self.lexfile in PHYSICAL_LEXFILES and not self.instance


class WordNet:
    """Read-only noun side of a WordNet database folder (``index.noun``, ``data.noun``, ``noun.exc``).

    ``index.noun`` lines are ``lemma pos synset_cnt p_cnt [ptr]*p_cnt sense_cnt tagsense_cnt
    offset...`` with the offsets in sense order (most frequent first); ``data.noun`` holds one
    synset per line at its byte offset: ``offset lex_filenum ss_type w_cnt (word lex_id)*w_cnt
    p_cnt (symbol offset pos source/target)*p_cnt | gloss``. License lines start with spaces.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        missing = [n for n in ("index.noun", "data.noun") if not (self.root / n).is_file()]
        if missing:
            raise DataError(str(self.root), "-", f"not a WordNet database folder (missing {', '.join(missing)})")
        self._index: dict[str, tuple[int, ...]] = {}
        self._tagged: dict[str, int] = {}
        with open(self.root / "index.noun", encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, 1):
                if line.startswith(" ") or not line.strip():
                    continue
                f = line.split()
                try:
                    n_ptr = int(f[3])
                    self._index[f[0]] = tuple(int(o) for o in f[6 + n_ptr :])
                    self._tagged[f[0]] = int(f[5 + n_ptr])
                except (IndexError, ValueError) as exc:
                    raise DataError(str(self.root / "index.noun"), f"line {n}", "malformed index line") from exc
        self._exceptions: dict[str, tuple[str, ...]] = {}
        exc_path = self.root / "noun.exc"
        if exc_path.is_file():
            for line in exc_path.read_text(encoding="utf-8", errors="replace").splitlines():
                f = line.split()
                if len(f) >= 2:
                    self._exceptions[f[0]] = tuple(f[1:])
        self.version = _wordnet_version(self.root / "data.noun")
        self._data = open(self.root / "data.noun", "rb")  # noqa: SIM115 - kept open for seeks, closed in close()
        self._synsets: dict[int, tuple[int, bool, str]] = {}

    def close(self) -> None:
        self._data.close()

    def __enter__(self) -> WordNet:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __contains__(self, lemma: str) -> bool:
        return lemma in self._index

    def base_forms(self, form: str) -> list[str]:
        """Index lemmas for ``form``: itself when listed, then ``noun.exc`` bases, then detachments."""
        form = form.lower()
        out = [form] if form in self._index else []
        out += [b for b in self._exceptions.get(form, ()) if b in self._index]
        for suffix, ending in _NOUN_DETACHMENTS:
            if form.endswith(suffix) and len(form) > len(suffix) + 1:
                base = form[: -len(suffix)] + ending
                if base in self._index:
                    out.append(base)
        return list(dict.fromkeys(out))

    def tagged(self, lemma: str) -> int:
        """How many of ``lemma``'s senses are attested in the sense-tagged corpus (they come first)."""
        return self._tagged.get(lemma, 0)

    def senses(self, lemma: str) -> list[Sense]:
        """``lemma``'s noun senses in index order (most frequent first)."""
        return [Sense(lemma, k, *self._synset(off)) for k, off in enumerate(self._index.get(lemma, ()), 1)]

    def definition(self, lemma: str, sense: int = 1) -> str:
        """The gloss of ``lemma``'s ``sense``-th noun sense, quoted examples removed."""
        offsets = self._index.get(lemma, ())
        if not 1 <= sense <= len(offsets):
            raise KeyError(f"WordNet has no noun sense {sense} of {lemma!r} ({len(offsets)} senses)")
        return self._synset(offsets[sense - 1])[2]

    def _synset(self, offset: int) -> tuple[int, bool, str]:
        if offset not in self._synsets:
            self._data.seek(offset)
            line = self._data.readline().decode("utf-8", errors="replace")
            head, sep, gloss = line.partition("|")
            f = head.split()
            try:
                if int(f[0]) != offset:
                    raise ValueError
                lexfile, n_words = int(f[1]), int(f[3], 16)
                p = 4 + 2 * n_words
                pointers = f[p + 1 : p + 1 + 4 * int(f[p])]
            except (IndexError, ValueError) as exc:
                raise DataError(
                    str(self.root / "data.noun"),
                    f"offset {offset}",
                    "malformed synset line (index and data files disagree?)",
                ) from exc
            self._synsets[offset] = (lexfile, "@i" in pointers[0::4], clean_gloss(gloss) if sep else "")
        return self._synsets[offset]


def clean_gloss(gloss: str) -> str:
    """``'fruit with red skin; "an apple a day"'`` → ``'fruit with red skin'``."""
    text = re.sub(r'"[^"]*"?', "", gloss)
    parts = (p.strip() for p in text.split(";"))
    return "; ".join(p for p in parts if p)


def _wordnet_version(data_file: Path) -> str:
    with open(data_file, encoding="utf-8", errors="replace") as fh:
        head = "".join(itertools.islice(fh, 40))
    m = re.search(r"WordNet\s+(\d+(?:\.\d+)*)", head)
    return m.group(1) if m else "unknown"


def find_wordnet(root: str | os.PathLike | None = None) -> WordNet:
    """Open WordNet at ``root`` or the first default location; a DataError says how to install it."""
    candidates = [Path(root)] if root else [Path(p) for p in (os.environ.get("WNSEARCHDIR"), *WORDNET_DIRS) if p]
    for path in candidates:
        if (path / "index.noun").is_file():
            return WordNet(path)
    where = ", ".join(map(str, candidates))
    raise DataError(
        where,
        "-",
        "WordNet 3.0 database not found: install it (Debian/Ubuntu: "
        "`apt-get install wordnet-base`, files in /usr/share/wordnet) or pass --wordnet DIR",
    )
