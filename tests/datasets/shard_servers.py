"""Loopback servers for shard reads from object storage: moto's S3 server and a ranged HTTP server that can cut
its connection mid-body. Both bind 127.0.0.1 on a free port; nothing else is reached."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.net import free_port

REGION = "eu-west-1"  # not us-east-1: S3 rejects that region as a bucket LocationConstraint


@dataclass
class Served:
    """What the HTTP server serves and how it misbehaves: ``cut`` maps a file name to the 1-based numbers of
    its GET requests to cut after half of the body (``"all"``: every one); ``requests`` logs (name, first
    byte, cut) per GET."""

    files: dict[str, bytes]
    cut: dict[str, set[int] | str] = field(default_factory=dict)
    requests: list[tuple[str, int, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ranges(self, name: str) -> list[tuple[int, bool]]:
        return [(start, cut) for n, start, cut in self.requests if n == name]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        served = self.server.served
        name = self.path.lstrip("/")
        data = served.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start, end = 0, len(data)
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if match:
            start = int(match[1])
            end = min(len(data), int(match[2]) + 1) if match[2] else len(data)
        chunk = data[start:end]
        self.send_response(206 if match else 200)
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Accept-Ranges", "bytes")
        if match:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if not body:
            return
        with served.lock:
            number = 1 + sum(1 for n, _, _ in served.requests if n == name)
            rule = served.cut.get(name, set())
            cut = rule == "all" or number in rule
            served.requests.append((name, start, cut))
        self.wfile.write(chunk[: len(chunk) // 2] if cut else chunk)
        self.close_connection = True  # HTTP/1.0: a cut body ends with the connection


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    served: Served


@contextmanager
def http_server(files: dict[str, bytes]) -> Iterator[tuple[str, Served]]:
    """(base URL, :class:`Served`) of a threaded HTTP server on 127.0.0.1 serving ``files`` by name."""
    server = _Server(("127.0.0.1", 0), _Handler)  # the OS picks a free port
    server.served = Served(files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.served
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def s3_server() -> Iterator[dict]:
    """moto's S3 server on 127.0.0.1; yields the fsspec ``storage_options`` that reach it."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {
            "endpoint_url": f"http://127.0.0.1:{port}",
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"region_name": REGION},
        }
    finally:
        server.stop()
