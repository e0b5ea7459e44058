"""Training recipes, one module per appendix table, each with a ``full`` and a ``mini`` scale.

``get_recipe("table1-pretrain-t", "mini")`` returns a frozen :class:`TrainConfig`; names map to
``(module, FULL attribute, MINI attribute)`` and are imported lazily.
"""

from __future__ import annotations

import importlib

from detclip_bench.errors import UnknownNameError

__all__ = ["EXPERIMENTS", "RECIPES", "get_experiment", "get_recipe", "recipe_names"]

RECIPES: dict[str, tuple[str, str, str]] = {
    "table1-pretrain-t": ("recipes.table1_pretrain", "FULL_T", "MINI_T"),
    "table1-pretrain-l": ("recipes.table1_pretrain", "FULL_L", "MINI_T"),
    "table2-lvis-finetune": ("recipes.table2_lvis_finetune", "FULL", "MINI"),
    "table3-odinw13-finetune": ("recipes.table3_odinw_finetune", "FULL", "MINI"),
}


def recipe_names() -> list[str]:
    return sorted(RECIPES)


def get_recipe(name: str, scale: str = "full"):
    if name not in RECIPES:
        raise UnknownNameError("recipe", repr(name), recipe_names())
    if scale not in ("full", "mini"):
        raise ValueError(f"scale must be 'full' or 'mini', got {scale!r}")
    module, full, mini = RECIPES[name]
    return getattr(importlib.import_module(module), full if scale == "full" else mini)


#: results tables (appendix Tables 4–7, and the main paper's data-scaling claim) -> module with FULL / MINI
EXPERIMENTS: dict[str, str] = {
    "claims": "recipes.claims",
    "4": "recipes.table4_resolution",
    "5": "recipes.table5_classification",
    "6": "recipes.table6_lvis_val",
    "7": "recipes.table7_odinw13",
}


def get_experiment(table: str, scale: str = "mini"):
    if table not in EXPERIMENTS:
        raise UnknownNameError("table", repr(table), EXPERIMENTS)
    if scale not in ("full", "mini"):
        raise ValueError(f"scale must be 'full' or 'mini', got {scale!r}")
    return getattr(importlib.import_module(EXPERIMENTS[table]), "FULL" if scale == "full" else "MINI")
