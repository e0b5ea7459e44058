"""A free local TCP port for tests that start a server or a process group (the FiftyOne App, gloo ranks)."""

from __future__ import annotations

import socket


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])
