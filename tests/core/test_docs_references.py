"""Every document and section the code and docs cite exists inside the repository.

A clone has only what is committed, so a comment saying "see method.md §2" must find
``docs/method.md`` with a section 2 in it, and every provenance tag used in the code must be
defined by the legend at the top of ``docs/method.md``.

What counts as a reference (in every ``.py`` and ``.md`` file, generated folders excluded):

* ``docs/<name>.md`` anywhere → ``docs/<name>.md`` must exist;
* ``<name>.md §N`` (N may be dotted, e.g. 3.1) → the document must exist and have a heading
  that contains ``§N`` or starts with the number N (``## 2. Training``, ``### 3.1 The 13``);
* a bare ``<name>.md`` whose name is one of :data:`DESIGN_DOCS` → the document must exist.
  Other bare names (``results.md``, ``leaderboard.md``) are files the toolkit writes, not docs;
* any path into the shared folder outside the repository is an error in itself.

``README.md`` resolves to the repository root, every other name to ``docs/``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SELF = Path(__file__).resolve().relative_to(ROOT)  # this file cites faulty references on purpose

#: Names that always mean a project document when cited bare (the design documents the code was
#: written against; ``ecosystem`` is listed so that a leftover citation of it is caught).
DESIGN_DOCS = frozenset({"method", "data", "eval", "design", "ecosystem", "README"})
#: The provenance tags the code uses; the legend must define at least these.
REQUIRED_TAGS = frozenset("PADFI")

SKIP_TOP = frozenset({".git", "runs", "build", "dist", "mini_world", ".whl", ".gl", ".fiftyone"})
SKIP_ANY = frozenset(
    {
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".mypy_cache",
        "node_modules",
        ".venv",
        "venv",
        ".tox",
    }
)

_NAME = r"(?<![\w./-])(?:docs/)?([A-Za-z0-9_-]+)\.md"
DOC_PATH_RE = re.compile(r"(?<![\w./-])docs/([A-Za-z0-9_-]+)\.md")
SECTION_RE = re.compile(_NAME + r"\s*§\s*(\d+(?:\.\d+)*)")
BARE_RE = re.compile(_NAME + r"\b")
OUTSIDE_RE = re.compile(r"(?:\.\./|/work/)+shared/(?:docs|paper)/[\w./-]*")
TAG_RE = re.compile(r"(?<![\w\\\[])\[([A-Z](?:/[A-Z])*)\](?![\w(:])")  # not list[T], Callable[[T], T]
LEGEND_LINE_RE = re.compile(r"^\s*[-*]\s*\*\*\[([A-Z])\]\*\*")


@dataclass(frozen=True)
class Ref:
    file: Path
    line: int
    doc: str  # file name, e.g. "method.md"
    section: str | None  # "2", "3.1" or None

    def where(self, root: Path) -> str:
        return f"{self.file.relative_to(root)}:{self.line}"


def source_files(root: Path) -> list[Path]:
    """Every .py/.md file under ``root``, without descending into generated or cache folders."""
    out = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        top = here == root
        dirs[:] = sorted(d for d in dirs if not ((top and d in SKIP_TOP) or d in SKIP_ANY or d.endswith(".egg-info")))
        for name in sorted(files):
            path = here / name
            if path.suffix in (".py", ".md") and path.relative_to(root) != SELF:
                out.append(path)
    return out


def find_references(root: Path) -> tuple[list[Ref], list[str]]:
    """All document references under ``root``, and the references that point outside it."""
    refs: list[Ref] = []
    outside: list[str] = []
    for path in source_files(root):
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            seen: set[tuple[str, str | None]] = {(m.group(1), m.group(2)) for m in SECTION_RE.finditer(line)}
            with_section = {name for name, _ in seen}
            plain = [m.group(1) for m in DOC_PATH_RE.finditer(line)]
            plain += [m.group(1) for m in BARE_RE.finditer(line) if m.group(1) in DESIGN_DOCS]
            seen.update((name, None) for name in plain if name not in with_section)
            refs.extend(Ref(path, n, f"{name}.md", sec) for name, sec in sorted(seen, key=str))
            outside.extend(f"{path.relative_to(root)}:{n}: {m.group(0)}" for m in OUTSIDE_RE.finditer(line))
    return refs, outside


def doc_path(root: Path, doc: str) -> Path:
    return root / doc if doc == "README.md" else root / "docs" / doc


def headings(text: str) -> list[str]:
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            out.append(line.lstrip("#").strip())
    return out


def has_section(text: str, section: str) -> bool:
    num = re.escape(section)
    marked = re.compile(r"§\s*" + num + r"(?!\.?\d)")
    numbered = re.compile(r"^(?:§\s*)?" + num + r"(?:\.(?!\d)|\s|$)")
    return any(marked.search(h) or numbered.match(h) for h in headings(text))


def check_references(root: Path) -> tuple[list[Ref], list[str]]:
    """(references found, problems)."""
    refs, problems = find_references(root)
    problems = [f"{p} (outside the repository; cite docs/ instead)" for p in problems]
    texts: dict[str, str | None] = {}
    for ref in refs:
        if ref.doc not in texts:
            path = doc_path(root, ref.doc)
            texts[ref.doc] = path.read_text(encoding="utf-8") if path.is_file() else None
        text = texts[ref.doc]
        if text is None:
            problems.append(
                f"{ref.where(root)}: {ref.doc} does not exist at {doc_path(root, ref.doc).relative_to(root)}"
            )
        elif ref.section is not None and not has_section(text, ref.section):
            problems.append(f"{ref.where(root)}: {ref.doc} has no section §{ref.section}")
    return refs, problems


def tags_used(root: Path, suffixes: tuple[str, ...] = (".py", ".md")) -> dict[str, str]:
    """Tag letter → first place it is used, over the files with ``suffixes`` except the legend's document."""
    legend_doc = (root / "docs" / "method.md").resolve()
    used: dict[str, str] = {}
    for path in source_files(root):
        if path.resolve() == legend_doc or path.suffix not in suffixes:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for m in TAG_RE.finditer(line):
                for letter in m.group(1).split("/"):
                    used.setdefault(letter, f"{path.relative_to(root)}:{n}")
    return used


def legend_tags(root: Path) -> set[str]:
    """Tags defined as ``- **[X]** …`` lines in the "Tag legend" section of docs/method.md."""
    text = (root / "docs" / "method.md").read_text(encoding="utf-8")
    m = re.search(r"^## Tag legend\s*$(.*?)(?=^## )", text, re.M | re.S)
    assert m, "docs/method.md has no '## Tag legend' section before its first numbered section"
    return {t.group(1) for line in m.group(1).splitlines() if (t := LEGEND_LINE_RE.match(line))}


# ---- the repository ------------------------------------------------------------------------------


def test_every_cited_document_and_section_exists():
    refs, problems = check_references(ROOT)
    assert len(refs) >= 10, f"the scanner found only {len(refs)} references: is it still looking?"
    assert any(r.section for r in refs), "no §-references found at all"
    assert not problems, "dangling documentation references:\n" + "\n".join(problems)


def test_tag_legend_defines_every_tag_used():
    in_code = tags_used(ROOT, (".py",))
    assert set(in_code) >= REQUIRED_TAGS, f"expected the code to use {sorted(REQUIRED_TAGS)}, found {sorted(in_code)}"
    used = tags_used(ROOT)
    defined = legend_tags(ROOT)
    assert defined >= REQUIRED_TAGS, f"legend defines {sorted(defined)}, must define {sorted(REQUIRED_TAGS)}"
    undefined = {t: where for t, where in used.items() if t not in defined}
    assert not undefined, f"tags used but not in the legend of docs/method.md: {undefined}"


# ---- the checker itself, on a tree with known faults ------------------------------------------------


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_checker_flags_missing_documents_sections_and_outside_paths(tmp_path):
    md = "method" + ".md"  # spelt apart so the repository scan does not read these as references
    _write(
        tmp_path / "docs" / md,
        "# M\n\n## Tag legend\n\n- **[P]** paper\n\n## 1. Model\n\n### 2.3 Losses\n"
        "```\n## 7. inside a code fence\n```\n",
    )
    _write(tmp_path / "README.md", "# R\n\n## §4 Named\n")
    _write(
        tmp_path / "pkg" / "a.py",
        f'"""See {md} §1 and {md} §2.3, README.md §4, results.md and leaderboard.md."""\n'  # fine
        f"# {md} §2 (missing: only 2.3 exists)\n"
        f"# {md} §7 (only inside a code fence)\n"
        "# see " + "eco" + "system.md §1\n"
        "# docs/" + "inits.md\n"
        "# ../shared/" + "docs/eval.md §3\n",
    )
    _write(tmp_path / "runs" / "x.md", "design" + ".md §9 is generated output, not scanned\n")
    refs, problems = check_references(tmp_path)
    assert {(r.doc, r.section) for r in refs} >= {(md, "1"), (md, "2.3"), ("README.md", "4")}
    text = "\n".join(problems)
    assert "no section §2\n" in text + "\n" and "no section §7" in text
    assert "ecosystem.md does not exist" in text and "inits.md does not exist" in text
    assert "outside the repository" in text
    assert "§1\n" not in text and "§2.3" not in text and "§4" not in text
    assert "results.md" not in text and "leaderboard.md" not in text and "runs/" not in text
    assert len(problems) == 5, text  # §2, §7, ecosystem, inits and the outside path


def test_legend_check_catches_an_undefined_tag(tmp_path):
    _write(tmp_path / "docs" / ("method" + ".md"), "## Tag legend\n\n- **[P]** paper\n- **[I]** ours\n\n## 1. X\n")
    _write(tmp_path / "m.py", "x: Callable[[T], T]  # [P] stated; [Q] unknown; [P/I] mixed; Generic[T] is no tag\n")
    assert legend_tags(tmp_path) == {"P", "I"}
    used = tags_used(tmp_path)
    assert set(used) == {"P", "Q", "I"}
    assert set(used) - legend_tags(tmp_path) == {"Q"}
