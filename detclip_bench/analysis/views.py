"""Saved views for the usual error-analysis questions, recreated on every ``analyze``.

Each view keeps only the boxes that answer its question (``filter_labels``), so opening it in the
App shows exactly those boxes. Names are stable so bookmarks and scripts keep working.

``analyze --launch`` opens :data:`DEFAULT_VIEW` (``confident-predictions``: every image, all its
GT, and only the predictions with confidence >= ``--min-score``): an LVIS run keeps up to 300 mostly
near-zero-score boxes per image, which bury the image when drawn all at once. ``--view NAME``
opens another saved view, ``--view all`` the unfiltered dataset (:func:`launch_view`).
"""

from __future__ import annotations

__all__ = [
    "ALL",
    "DEFAULT_MIN_SCORE",
    "DEFAULT_VIEW",
    "VIEW_NAMES",
    "launch_view",
    "save_analysis_views",
    "worst_categories",
]

DEFAULT_VIEW = "confident-predictions"
DEFAULT_MIN_SCORE = 0.3
ALL = "all"  # not a saved view: the whole dataset, every prediction (the App's "Unsaved view")
VIEW_NAMES = (
    DEFAULT_VIEW,
    "worst-categories",
    "rare-category-misses",
    "high-score-false-positives",
    "localization-errors",
    "duplicate-detections",
    "category-confusions",
)


def worst_categories(info: dict, k: int) -> dict[str, list[str]]:
    """member -> its ``k`` categories with the lowest AP (primary protocol; categories without GT skipped)."""
    out = {}
    for member, by_protocol in info["category_ap"].items():
        aps = [(ap, name) for name, ap in by_protocol[info["primary_protocol"]].items() if ap is not None]
        out[member] = [name for _, name in sorted(aps)[:k]]
    return out


def save_analysis_views(
    ds, *, worst_k: int = 10, high_score: float = 0.5, min_score: float = DEFAULT_MIN_SCORE
) -> dict[str, int]:
    """Create (overwrite) the views; returns view name -> number of samples in it."""
    from fiftyone import ViewField as F

    worst = worst_categories(ds.info, worst_k)
    in_worst = None
    for member, names in worst.items():
        if names:
            term = (F("$member") == member) & F("label").is_in(names)
            in_worst = term if in_worst is None else in_worst | term
    views = {
        # only_matches=False: images left without a confident prediction stay, with their (missed) GT
        DEFAULT_VIEW: ds.filter_labels("predictions", F("confidence") >= min_score, only_matches=False),
        "rare-category-misses": ds.filter_labels("ground_truth", (F("eval") == "fn") & (F("rare") == True)),  # noqa: E712
        "high-score-false-positives": ds.filter_labels(
            "predictions", (F("eval") == "fp") & (F("confidence") >= high_score)
        ).sort_by(F("predictions.detections.confidence").max(), reverse=True),
        "localization-errors": ds.filter_labels("predictions", F("eval_reason") == "localization"),
        "duplicate-detections": ds.filter_labels("predictions", F("eval_reason") == "duplicate"),
        "category-confusions": ds.filter_labels("predictions", F("eval_reason") == "confusion"),
    }
    if in_worst is not None:
        views["worst-categories"] = ds.filter_labels("ground_truth", in_worst).filter_labels(
            "predictions", in_worst, only_matches=False
        )
    else:
        views["worst-categories"] = ds.limit(0)
    counts = {}
    for name in VIEW_NAMES:
        description = _DESCRIPTIONS[name].format(min_score=min_score, high_score=high_score)
        ds.save_view(name, views[name], description=description, overwrite=True)
        counts[name] = len(views[name])
    return counts


def launch_view(ds, name: str = DEFAULT_VIEW):
    """The view ``analyze --launch`` opens: a saved view by name (``load_saved_view``, so the App's
    saved-views dropdown shows it selected), or None for :data:`ALL` (the unfiltered dataset)."""
    if name == ALL:
        return None
    if not ds.has_saved_view(name):
        raise ValueError(
            f"no saved view {name!r} on dataset {ds.name!r}; choose one of {', '.join([*ds.list_saved_views(), ALL])}"
        )
    return ds.load_saved_view(name)


_DESCRIPTIONS = {  # str.format()ted with the thresholds
    DEFAULT_VIEW: "every image and its GT; only predictions with confidence >= {min_score} (analyze --launch default)",
    "worst-categories": "GT and predictions of each member's lowest-AP categories (our evaluator, primary protocol)",
    "rare-category-misses": "missed GT (fn) of rare categories (LVIS 'r'; else the lowest GT-count quartile)",
    "high-score-false-positives": "false positives with confidence >= {high_score}, most confident first",
    "localization-errors": "false positives with 0.1 <= IoU < 0.5 against a GT of the same category",
    "duplicate-detections": "false positives on a GT already matched by a higher-scoring detection",
    "category-confusions": "false positives overlapping (IoU >= 0.5) a GT of another category",
}
