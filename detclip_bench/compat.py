"""Compatibility shims for the oracles we depend on.

``lvis`` 0.5.3 (the last PyPI release, 2020) calls ``np.float`` in ``LVISEval.accumulate``; NumPy
removed that alias in 1.24, so the unpatched package raises ``AttributeError`` on any modern
NumPy. The fix exists only on lvis-api's GitHub master. We restore the alias (it was always
Python's ``float``) right before importing ``lvis`` — nothing else in NumPy is touched.
"""

from __future__ import annotations

import numpy as np

__all__ = ["import_lvis"]


def import_lvis():
    """Import ``lvis`` with the ``np.float`` alias restored; returns the module."""
    if "float" not in np.__dict__:
        np.float = float  # type: ignore[attr-defined]  # removed alias, same meaning as before
    import logging

    root = logging.getLogger()
    handlers = list(root.handlers)
    level = root.level
    import lvis

    # lvis/__init__.py calls logging.basicConfig at import time; undo that side effect.
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    return lvis
