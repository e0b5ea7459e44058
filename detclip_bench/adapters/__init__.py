"""Model adapters: everything ``--model`` can name implements :class:`Detector`."""

from detclip_bench.adapters.base import Detector, Prediction

__all__ = ["Detector", "Prediction"]
