"""Serve the FiftyOne App on loopback only, and always shut it down.

The trap (docs/analysis.md, ``--launch``): if the launching Python dies by SIGTERM, the App's server processes
are orphaned and keep the port. :func:`serving` closes the session in ``finally`` and turns
SIGTERM into a normal exit, so ``session.close()`` always runs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

from detclip_bench.analysis.fo_env import fiftyone_home, import_fiftyone

__all__ = ["LOOPBACK", "app_url", "launch", "serve_until_interrupted", "serving"]

LOOPBACK = "127.0.0.1"


def app_url(dataset, *, port: int, address: str = LOOPBACK, view=None) -> str:
    """The App's page for ``dataset``; for a saved view with ``?view=<slug>``, the App's own link to it."""
    url = f"http://{address}:{port}/datasets/{urllib.parse.quote(dataset.name)}"
    if view is not None and view.name:
        from fiftyone.core.utils import to_slug

        url += f"?view={to_slug(view.name)}"
    return url


def launch(dataset, *, port: int, address: str = LOOPBACK, view=None, timeout: float = 60.0):
    """``fo.launch_app(remote=True)`` on ``address:port`` showing ``view`` (None: the whole dataset);
    returns the session once the App answers HTTP."""
    fo = import_fiftyone()
    with fiftyone_home():  # the App's server processes inherit the project-local HOME
        session = fo.launch_app(dataset, view=view, remote=True, address=address, port=port, auto=False)
    deadline = time.monotonic() + timeout
    url = f"http://{address}:{port}/"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return session
        except OSError:
            pass
        if time.monotonic() > deadline:
            session.close()
            raise RuntimeError(f"the FiftyOne App did not answer on {url} within {timeout:.0f} s")
        time.sleep(0.25)


@contextlib.contextmanager
def serving(dataset, *, port: int, address: str = LOOPBACK, view=None) -> Iterator:
    def _term(signum, frame):
        raise KeyboardInterrupt

    main = threading.current_thread() is threading.main_thread()  # signal handlers: main thread only
    previous = signal.signal(signal.SIGTERM, _term) if main else None
    try:
        session = launch(dataset, port=port, address=address, view=view)
        try:
            yield session
        finally:
            session.close()
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def serve_until_interrupted(dataset, *, port: int, address: str = LOOPBACK, view=None) -> None:
    """Serve ``view`` (None: the whole dataset); block until Ctrl-C / SIGTERM, then close the App cleanly."""
    with serving(dataset, port=port, address=address, view=view):
        print(f"FiftyOne App: {app_url(dataset, port=port, address=address, view=view)}  (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(1)
