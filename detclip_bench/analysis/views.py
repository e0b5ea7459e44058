"""Saved views for the usual error-analysis questions, recreated on every ``analyze``.

Each view keeps only the boxes that answer its question (``filter_labels``), so opening it in the
App shows exactly those boxes. Names are stable so bookmarks and scripts keep working.
"""

from __future__ import annotations

__all__ = ["VIEW_NAMES", "save_analysis_views", "worst_categories"]

VIEW_NAMES = ("worst-categories", "rare-category-misses", "high-score-false-positives", "localization-errors",
              "duplicate-detections", "category-confusions")


def worst_categories(info: dict, k: int) -> dict[str, list[str]]:
    """member -> its ``k`` categories with the lowest AP (primary protocol; categories without GT skipped)."""
    out = {}
    for member, by_protocol in info["category_ap"].items():
        aps = [(ap, name) for name, ap in by_protocol[info["primary_protocol"]].items() if ap is not None]
        out[member] = [name for _, name in sorted(aps)[:k]]
    return out


def save_analysis_views(ds, *, worst_k: int = 10, high_score: float = 0.5) -> dict[str, int]:
    """Create (overwrite) the views; returns view name -> number of samples in it."""
    from fiftyone import ViewField as F

    worst = worst_categories(ds.info, worst_k)
    in_worst = None
    for member, names in worst.items():
        if names:
            term = (F("$member") == member) & F("label").is_in(names)
            in_worst = term if in_worst is None else in_worst | term
    views = {
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
            "predictions", in_worst, only_matches=False)
    else:
        views["worst-categories"] = ds.limit(0)
    counts = {}
    for name in VIEW_NAMES:
        ds.save_view(name, views[name], description=_DESCRIPTIONS[name], overwrite=True)
        counts[name] = len(views[name])
    return counts


_DESCRIPTIONS = {
    "worst-categories": "GT and predictions of each member's lowest-AP categories (our evaluator, primary protocol)",
    "rare-category-misses": "missed GT (fn) of rare categories (LVIS 'r'; else the lowest GT-count quartile)",
    "high-score-false-positives": "false positives with confidence >= the threshold, most confident first",
    "localization-errors": "false positives with 0.1 <= IoU < 0.5 against a GT of the same category",
    "duplicate-detections": "false positives on a GT already matched by a higher-scoring detection",
    "category-confusions": "false positives overlapping (IoU >= 0.5) a GT of another category",
}
