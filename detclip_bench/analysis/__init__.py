"""Error analysis of an eval run: per-box TP/FP/FN verdicts, a FiftyOne dataset with saved views
and the App on loopback (``detclip-bench analyze``), and a static HTML/markdown report
(``detclip-bench report``). FiftyOne is optional (the ``fiftyone`` extra) and imported only by
the modules that need it, after :func:`~detclip_bench.analysis.fo_env.configure_fiftyone`.
"""

from detclip_bench.analysis.matching import ImageGT, ImageMatch, match_image
from detclip_bench.analysis.run_dir import LoadedRun, MemberRun, load_run

__all__ = ["ImageGT", "ImageMatch", "LoadedRun", "MemberRun", "load_run", "match_image"]
