"""Dependencies point one way: detclip_bench ← reference_model ← recipes, and detclip_bench ← leaderboards ← recipes.

Every module is parsed (function-level imports included), and the benchmark core may not name the packages
built on it in a lazy ``"module:attr"`` string either: those register themselves through the entry-point
groups in pyproject.toml.
"""

from __future__ import annotations

import ast
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
