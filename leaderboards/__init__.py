"""The paper's published numbers and this toolkit's results, rendered side by side.

``leaderboards/data/*.json`` hold the paper's tables (one entry per printed row, with its
source); ``runs/leaderboard/results/`` (or any folder given) holds result files written by
:func:`add_result`. Metrics are percentages everywhere.
"""

from leaderboards.averages import AverageCheck, check_averages
from leaderboards.paper import load_paper_tables
from leaderboards.render import write_leaderboard
from leaderboards.results import ToolkitResult, add_result, load_results
from leaderboards.schema import Entry, PaperTable, Source
from leaderboards.suite_runs import add_suite_run, results_from_run

__all__ = [
    "AverageCheck",
    "Entry",
    "PaperTable",
    "Source",
    "ToolkitResult",
    "add_result",
    "add_suite_run",
    "check_averages",
    "load_paper_tables",
    "load_results",
    "results_from_run",
    "write_leaderboard",
]
