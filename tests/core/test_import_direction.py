"""Dependencies point one way: detclip_bench ← reference_model ← recipes, and detclip_bench ← leaderboards ← recipes.

Every module is parsed (function-level imports included), and the benchmark core may not name the packages
built on it in a lazy ``"module:attr"`` string either: those register themselves through the entry-point
groups in pyproject.toml. Inside the core, no two modules may import each other, directly or around a circle
(function-level imports included; importing ``a.b.c`` from outside ``a.b`` also runs ``a/b/__init__.py``).
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "detclip_bench": {"reference_model", "recipes", "leaderboards"},
    "reference_model": {"recipes", "leaderboards"},
    "leaderboards": {"reference_model", "recipes"},
    "recipes": set(),
}
LAZY_TARGET = re.compile(r"^(\w+)(\.\w+)*(:\w+)?$")


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in the file, at any depth, plus dotted string constants."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "." in node.value
            and LAZY_TARGET.match(node.value)
        ):
            found.append((node.lineno, node.value.split(".")[0]))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_against_the_direction(package):
    offending = [
        f"{path.relative_to(ROOT)}:{line} → {name}"
        for path in _modules(package)
        for line, name in imported_packages(path)
        if name in FORBIDDEN[package]
    ]
    assert not offending, "imports against the dependency direction:\n" + "\n".join(offending)


def test_the_check_sees_function_level_imports_and_lazy_strings(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from recipes import get_recipe\n\nTARGET = 'leaderboards.render:write'\n")
    assert [name for _, name in imported_packages(bad)] == ["recipes", "leaderboards"]


def test_verbs_and_models_from_other_packages_come_through_entry_points():
    from importlib.metadata import entry_points

    from detclip_bench.cli.main import CORE_VERBS, verb_modules

    verbs = verb_modules()
    for verb in ("train", "finetune", "reproduce", "leaderboard"):
        assert verb in verbs and verb not in CORE_VERBS
    assert {ep.name: ep.value for ep in entry_points(group="detclip_bench.models")} == {
        "detclipv2": "reference_model.detclipv2.detector:load_detector",
        "onnx": "reference_model.detclipv2.export:load_onnx_detector",
    }
    assert verbs["export"] == "reference_model.cli.export" and "export" not in CORE_VERBS


# ---- no import circles inside the core --------------------------------------------------------------------


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return isinstance(test, ast.Name | ast.Attribute) and getattr(test, "id", getattr(test, "attr", None)) == (
        "TYPE_CHECKING"
    )


def _imported_modules(name: str, path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every import the module runs, at any depth; ``if TYPE_CHECKING:`` blocks never run."""
    found: list[tuple[int, str, list[str]]] = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                for other in child.orelse:
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.extend((child.lineno, alias.name, []) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                module = child.module or ""
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    module = ".".join(base + ([module] if module else []))
                found.append((child.lineno, module, [alias.name for alias in child.names]))
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return found


def import_graph(root: Path, package: str) -> dict[str, dict[str, int]]:
    """module -> {module it imports: line} inside ``package`` (under ``root``), as Python runs them: importing
    ``a.b.c`` runs ``a.b.c`` and the ``__init__`` of every package on the way that the importer is not inside."""
    paths = {_module_name(root, p): p for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, dict[str, int]] = {}
    for name, path in paths.items():
        edges: dict[str, int] = {}
        for line, module, names in _imported_modules(name, path):
            if module != package and not module.startswith(package + "."):
                continue
            for target in [module, *(f"{module}.{n}" for n in names if f"{module}.{n}" in paths)]:
                parts = target.split(".")
                for depth in range(1, len(parts) + 1):
                    step = ".".join(parts[:depth])
                    if step in paths and step != name and not name.startswith(step + "."):
                        edges.setdefault(step, line)
        graph[name] = edges
    return graph


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Every group of modules that import each other around a circle (strongly connected, 2 or more), each as
    one circle through its first module, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan; the core has a few hundred modules, far below the recursion limit
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return sorted(_circle(graph, group) for group in groups)


def _circle(graph: dict[str, dict[str, int]], group: list[str]) -> list[str]:
    """A shortest circle from ``group[0]`` back to itself inside the group (breadth first), to show in the error."""
    start, members = group[0], set(group)
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w in members and w not in previous:
                    previous[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no circle through {start}")  # a strongly connected group always has one


def _describe(graph: dict[str, dict[str, int]], circle: list[str]) -> str:
    steps = [f"{a} (line {graph[a][b]})" for a, b in itertools.pairwise(circle)]
    return " → ".join([*steps, circle[-1]])


def test_the_core_has_no_import_circles():
    graph = import_graph(ROOT, "detclip_bench")
    # the graph sees function-level imports and the package __init__ an import runs
    assert "detclip_bench.predict.run" in graph["detclip_bench.cli.predict"]
    assert "detclip_bench.suites" in graph["detclip_bench.cli.predict"]
    circles = import_cycles(graph)
    assert not circles, "import circles inside detclip_bench:\n" + "\n".join(_describe(graph, c) for c in circles)


def test_the_circle_check_fails_on_a_circle(tmp_path):
    """A synthetic package: a function-level import closing a circle, one through a package ``__init__``, one only
    under ``if TYPE_CHECKING:`` (never run, so no circle), and a package importing its own submodules (no circle)."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from pkg import b\n",
        "b.py": "def f():\n    from pkg.a import x\n",  # a → b → a, the second import inside a function
        "c.py": "from pkg.sub.inner import y\n",  # runs pkg/sub/__init__.py first
        "sub/__init__.py": "from pkg.sub.inner import y\nfrom . import other\n",
        "sub/inner.py": "y = 1\n",
        "sub/other.py": "from .. import c\n",  # c → sub (its __init__) → sub.other → c
        "d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import e\n",
        "e.py": "import pkg.d\n",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.b"] == {"pkg.a": 2} and "pkg.sub" in graph["pkg.c"] and "pkg.e" not in graph["pkg.d"]
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"], ["pkg.c", "pkg.sub", "pkg.sub.other", "pkg.c"]]
    assert "pkg.b (line 2)" in _describe(graph, ["pkg.a", "pkg.b", "pkg.a"])
