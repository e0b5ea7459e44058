"""Object-storage benchmark: samples/s of the same img2dataset shards read from local disk, from a loopback HTTP
server and from moto's S3 server, through the stream loader (``img2dataset-wds``) and ``TorchStream``.

    python benchmarks/remote_shards_bench.py [--quick] [--out DIR]

Shards: 8 × 64 records of 1600×1200 JPEGs (``--quick``: 4 × 8), written by train_loader_bench's ``write_wds``.
Two workloads per backend, each with 2 DataLoader workers: ``read`` (records out of the tar, image bytes
untouched) and ``read + decode`` (JPEG draft-decoded towards 320², as the training path does). The HTTP server
also runs once with one connection cut mid-shard per shard, so the cost of a resume shows. Both servers are
threads of this process on 127.0.0.1: the numbers measure the client side (fsspec, tar parsing, resumes) and
the servers' own CPU on the same cores, not a network. Rates are the best of interleaved rounds after a
warm-up. Writes ``DIR/remote_shards_bench.{json,md}`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from train_loader_bench import WORKERS, _best, write_wds  # the sibling benchmark (its folder is on sys.path)

from detclip_bench.datasets import open_dataset
from detclip_bench.datasets.sharding import TorchStream, collate_samples
from detclip_bench.io import atomic_write_json, atomic_write_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root: tests/ holds the servers
from tests.datasets.shard_servers import Served, http_server, s3_server

RESULTS = Path(__file__).parent / "results"
BATCH = 16
SIZE = (1600, 1200)


def bytes_only(sample) -> int:
    """The ``read`` workload: the record leaves the worker as its image size in bytes (IPC kept small)."""
    return len(sample.image.data)


def draft_decode(sample) -> tuple[int, int]:
    """The ``read + decode`` workload: JPEG draft decoding towards 320², as the training path does."""
    return sample.load_image(draft=(320, 320)).size


def rate(source, transform: Callable, n_expected: int) -> float:
    """Samples/s of one pass over ``source`` with ``WORKERS`` DataLoader workers."""
    loader = DataLoader(
        TorchStream(source, transform=transform), batch_size=BATCH, num_workers=WORKERS, collate_fn=collate_samples
    )
    start = time.perf_counter()
    n = sum(len(batch) for batch in loader)
    elapsed = time.perf_counter() - start
    assert n == n_expected, (n, n_expected)
    return n / elapsed


def pass_with_drops(source, served: Served, names: list[str], transform: Callable, n_expected: int) -> float:
    """:func:`rate` while the server cuts one GET per shard halfway (counted afresh for this pass): the second,
    so that records were already handed out, or the only one when the shard fits in one fsspec block."""
    from fsspec.implementations.http import DEFAULT_BLOCK_SIZE

    with served.lock:
        served.requests.clear()
        served.cut.update({name: {2 if len(served.files[name]) > DEFAULT_BLOCK_SIZE else 1} for name in names})
    try:
        return rate(source, transform, n_expected)
    finally:
        with served.lock:
            served.cut.clear()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4 shards × 8 records, one round (a smoke run)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for the result files")
    args = ap.parse_args()
    sizes = (
        {"shards": 4, "records_per_shard": 8, "rounds": 1}
        if args.quick
        else {"shards": 8, "records_per_shard": 64, "rounds": 3}
    )
    n = sizes["shards"] * sizes["records_per_shard"]
    pattern = f"{{00000..{sizes['shards'] - 1:05d}}}.tar"
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        shards = write_wds(Path(tmp) / "wds", n, SIZE, n_shards=sizes["shards"])
        files = {p.name: p.read_bytes() for p in sorted(shards[0].parent.iterdir())}
        shard_bytes = sum(len(b) for name, b in files.items() if name.endswith(".tar"))
        with http_server(files) as (url, served), s3_server() as s3_options:
            import fsspec

            fs = fsspec.filesystem("s3", **s3_options)
            fs.mkdir("bench")
            for name, data in files.items():
                fs.pipe(f"bench/cc/{name}", data)
            sources = {
                "local disk": open_dataset(shards[0].parent, "img2dataset-wds"),
                "http (loopback)": open_dataset(f"{url}/{pattern}", "img2dataset-wds"),
                "s3 (moto, loopback)": open_dataset(
                    f"s3://bench/cc/{pattern}", "img2dataset-wds", storage_options=s3_options
                ),
            }
            dropping = open_dataset(f"{url}/{pattern}", "img2dataset-wds", backoff_s=0.0)
            names = [p.name for p in shards]
            table = {}
            for workload, transform in (("read", bytes_only), ("read + decode", draft_decode)):
                runs = {name: (lambda s=src, t=transform: rate(s, t, n)) for name, src in sources.items()}
                runs["http, one cut per shard"] = lambda t=transform: pass_with_drops(dropping, served, names, t, n)
                table[workload] = _best(runs, sizes["rounds"])
            drops = sum(cut for _, _, cut in served.requests)
            assert drops == len(names), f"{drops} connection cuts in the last round, expected one per shard"
    result = {
        "machine": {"cpus": os.cpu_count(), "workers": WORKERS, "torch": torch.__version__},
        "sizes": {**sizes, "image": list(SIZE), "shard_bytes": shard_bytes},
        "samples_per_s": table,
        "reopenings_per_pass_with_cuts": drops,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "remote_shards_bench.json", result)
    backends = list(next(iter(table.values())))
    md = [
        "# Shards in object storage: read rates",
        "",
        f"The same img2dataset shards ({sizes['shards']} × {sizes['records_per_shard']} records of "
        f"{SIZE[0]}×{SIZE[1]} JPEGs, {shard_bytes / 2**20:.0f} MiB) read by `img2dataset-wds` through `TorchStream`, "
        f"{WORKERS} DataLoader workers, batch {BATCH}, on {os.cpu_count()} CPUs; best of {sizes['rounds']} "
        "interleaved round(s) after a warm-up. The HTTP and S3 (moto) servers are threads of the benchmark process "
        "on 127.0.0.1, so the rates show the client-side cost and the servers' CPU on the same cores, not a network.",
        "",
        "| samples/s | " + " | ".join(backends) + " |",
        "|---|" + "---|" * len(backends),
        *(f"| {workload} | " + " | ".join(str(row[b]) for b in backends) + " |" for workload, row in table.items()),
        "",
        "`read`: records out of the tars, image bytes untouched; `read + decode`: plus JPEG draft decoding towards "
        "320² (the training path's decode). `http, one cut per shard`: the server cuts one request per shard halfway "
        "(its second ranged GET, or its only one when the shard fits in one 5 MiB fsspec block); the loader reopens "
        f"the shard at the next record it has not handed out (no wait between tries here; {drops} reopenings "
        "in the last round).",
        "",
    ]
    atomic_write_text(args.out / "remote_shards_bench.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
