"""Stream shards read from object storage (moto's S3 server, a loopback HTTP server) give the local read's samples
record for record, split over ranks × workers as locally, survive a connection cut mid-shard without repeating
or losing a record, and resume at a record. Only 127.0.0.1 is reached."""

from __future__ import annotations

import io
import json
import logging
import tarfile
from collections import Counter
from pathlib import Path

import pytest

from detclip_bench.datasets import detect_format, open_dataset
from detclip_bench.datasets.tar_records import iter_tar_records
from detclip_bench.errors import DataError
from reference_model.train.loader import HybridLoader
from reference_model.train.sampler import HybridSampler
from tests.datasets.shard_servers import http_server, s3_server
from tests.datasets.test_sharding import RANKS, WORKERS, _epoch_stream
from tests.datasets.writers import jpeg_bytes, wds_shard
from tests.train.stream_toy import N_DET, IdToyDataset, id_collate, stream_config
from tests.train.test_stream_loader import _run

SHARDS, PER_SHARD = 4, 5
PATTERN = "{00000..00003}.tar"
FAST = {"retries": 3, "backoff_s": 0.001}
SMALL_BLOCKS = {"block_size": 2048}  # fsspec's HTTP reads in 2 KiB ranges: a shard takes several requests


def write_shards(folder: Path, shards: int = SHARDS, per_shard: int = PER_SHARD, prefix: str = "") -> list[str]:
    """img2dataset-style shards ``<prefix>NNNNN.tar`` with ``_stats.json`` sidecars; the keys, in order."""
    keys = []
    for s in range(shards):
        items = [
            (f"{s:05d}{i:04d}", jpeg_bytes(40 + i, 24 + s, (30 * s, 40 * i, 90)), f"caption {s} {i}")
            for i in range(per_shard)
        ]
        wds_shard(folder / f"{prefix}{s:05d}.tar", items)
        (folder / f"{prefix}{s:05d}_stats.json").write_text(json.dumps({"count": per_shard, "successes": per_shard}))
        keys += [k for k, _, _ in items]
    return keys


def as_rows(samples) -> list[tuple]:
    return [(s.record_id, s.caption, s.image.data, s.width, s.height, s.meta) for s in samples]


def served_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("wds")
    return folder, write_shards(folder)


@pytest.fixture(scope="module")
def s3(local):
    """A bucket holding the local shards and sidecars under ``cc/``; yields the storage options."""
    import fsspec

    with s3_server() as options:
        fs = fsspec.filesystem("s3", **options)
        fs.mkdir("bucket")
        for name, data in served_files(local[0]).items():
            fs.pipe(f"bucket/cc/{name}", data)
        yield options


# ---- S3 (moto) ------------------------------------------------------------------------------------------------


def test_s3_brace_pattern_reads_the_local_samples(local, s3):
    folder, keys = local
    here = open_dataset(folder, "img2dataset-wds")
    # storage options as JSON text, as a manifest or --option carries them
    there = open_dataset(f"s3://bucket/cc/{PATTERN}", "img2dataset-wds", storage_options=json.dumps(s3))
    assert there.shards() == [f"s3://bucket/cc/{s:05d}.tar" for s in range(SHARDS)]
    assert as_rows(there) == as_rows(here) and [r[0] for r in as_rows(there)] == keys
    assert there.declared_size() == here.declared_size() == SHARDS * PER_SHARD
    assert there.summary()["path"] == f"s3://bucket/cc/{PATTERN}" and there.summary()["shards"] == SHARDS


def test_s3_folder_and_glob_are_listed(s3):
    shards = [f"s3://bucket/cc/{s:05d}.tar" for s in range(SHARDS)]
    assert open_dataset("s3://bucket/cc/", "img2dataset-wds", storage_options=s3).shards() == shards
    assert open_dataset("s3://bucket/cc/0000[12].tar", "img2dataset-wds", storage_options=s3).shards() == shards[1:3]
    with pytest.raises(DataError, match=r"s3://bucket/empty: no \*.tar shards here"):
        open_dataset("s3://bucket/empty", "img2dataset-wds", storage_options=s3)


def test_s3_endpoint_and_credentials_from_the_environment(local, s3, monkeypatch):
    for name, value in {
        "AWS_ENDPOINT_URL": s3["endpoint_url"],
        "AWS_ACCESS_KEY_ID": s3["key"],
        "AWS_SECRET_ACCESS_KEY": s3["secret"],
        "AWS_DEFAULT_REGION": s3["client_kwargs"]["region_name"],
    }.items():
        monkeypatch.setenv(name, value)
    ds = open_dataset("s3://bucket/cc/00002.tar", "img2dataset-wds", storage_options={"skip_instance_cache": True})
    assert [s.record_id for s in ds] == local[1][2 * PER_SHARD : 3 * PER_SHARD]


@pytest.mark.parametrize("n_shards", [3, SHARDS])  # 3 < 2 ranks × 2 workers: consumers share a shard
def test_s3_shards_split_by_rank_and_worker_as_locally(local, s3, n_shards):
    pattern = f"s3://bucket/cc/{{00000..{n_shards - 1:05d}}}.tar"
    seen = _epoch_stream(open_dataset(pattern, "img2dataset-wds", storage_options=s3))
    assert Counter(rid for _, rid, _ in seen) == Counter(local[1][: n_shards * PER_SHARD])
    assert len({(rank, worker) for rank, _, worker in seen}) == RANKS * WORKERS


def test_s3_missing_shard_is_named(s3):
    ds = open_dataset("s3://bucket/cc/{00003..00004}.tar", "img2dataset-wds", storage_options=s3)
    with pytest.raises(DataError, match=r"s3://bucket/cc/00004.tar: no such shard"):
        list(ds)


# ---- HTTP (loopback server that can cut connections) --------------------------------------------------------


def test_http_brace_pattern_reads_the_local_samples(local):
    folder, _ = local
    with http_server(served_files(folder)) as (url, _):
        ds = open_dataset(f"{url}/{PATTERN}", "img2dataset-wds")
        assert as_rows(ds) == as_rows(open_dataset(folder, "img2dataset-wds"))
        assert ds.declared_size() == SHARDS * PER_SHARD
    files = {n: b for n, b in served_files(folder).items() if n != "00001_stats.json"}
    with http_server(files) as (url, _):
        assert open_dataset(f"{url}/{PATTERN}", "img2dataset-wds").declared_size() is None  # one sidecar missing


def test_http_connection_cut_mid_shard_resumes_at_the_next_record(local, caplog):
    folder, keys = local
    with http_server(served_files(folder)) as (url, served):
        served.cut["00001.tar"] = {3}  # its third ranged GET: after some records were yielded
        ds = open_dataset(f"{url}/{PATTERN}", "img2dataset-wds", storage_options=SMALL_BLOCKS, **FAST)
        with caplog.at_level(logging.WARNING, logger="detclip_bench.datasets"):
            rows = as_rows(ds)
        ranges = served.ranges("00001.tar")
    assert rows == as_rows(open_dataset(folder, "img2dataset-wds"))  # every record once, in order
    assert [r[0] for r in rows] == keys
    retries = [r.getMessage() for r in caplog.records if "connection dropped" in r.getMessage()]
    assert len(retries) == 1 and f"{url}/00001.tar" in retries[0] and "retry 1 of 3" in retries[0]
    # reopened with a ranged read at the record after the last one read, not from the shard's start
    cut_at = next(i for i, (_, cut) in enumerate(ranges) if cut)
    assert 0 < ranges[cut_at + 1][0] <= ranges[cut_at][0]


def test_http_cut_on_a_streaming_file_rereads_without_repeating(local):
    """A backend that cannot seek (fsspec's streaming HTTP file) resumes by reading past the records already read."""
    folder, keys = local
    with http_server(served_files(folder)) as (url, served):
        served.cut["00002.tar"] = {1}
        ds = open_dataset(f"{url}/{PATTERN}", "img2dataset-wds", storage_options={"block_size": 0}, **FAST)
        assert [s.record_id for s in ds] == keys
        assert [start for start, _ in served.ranges("00002.tar")] == [0, 0]


def test_http_connection_always_cut_ends_in_a_data_error_naming_the_url(local, caplog):
    folder, _ = local
    with http_server(served_files(folder)) as (url, served):
        served.cut["00002.tar"] = "all"
        ds = open_dataset(f"{url}/{PATTERN}", "img2dataset-wds", storage_options=SMALL_BLOCKS, **FAST)
        with (
            caplog.at_level(logging.WARNING, logger="detclip_bench.datasets"),
            pytest.raises(DataError, match="gave up after 3 retries") as err,
        ):
            list(ds)
    assert err.value.path == f"{url}/00002.tar"
    assert sum("connection dropped" in r.getMessage() for r in caplog.records) == 3


def test_http_missing_shard_and_unknown_scheme_are_named(local):
    with http_server({}) as (url, _), pytest.raises(DataError, match=r"/00000.tar: no such shard"):
        list(open_dataset(f"{url}/{PATTERN}", "img2dataset-wds", **FAST))
    with pytest.raises(DataError, match=r"nosuchscheme://b/x\.tar"):
        list(open_dataset("nosuchscheme://b/x.tar", "img2dataset-wds"))


# ---- resuming at a record ---------------------------------------------------------------------------------


def test_start_begins_at_that_record_of_a_remote_shard(local):
    folder, keys = local
    shard_keys = keys[PER_SHARD : 2 * PER_SHARD]
    with http_server(served_files(folder)) as (url, _):
        ds = open_dataset(f"{url}/{PATTERN}", "img2dataset-wds", storage_options=SMALL_BLOCKS)
        shard = ds.shards()[1]
        for n in range(PER_SHARD + 1):
            assert [s.record_id for s in ds.iter_shard(shard, start=n)] == shard_keys[n:]
        assert [s.record_id for s in ds.iter_shard(shard, (1, 2), start=2)] == shard_keys[3::2]
    local_ds = open_dataset(folder, "img2dataset-wds")
    assert [s.record_id for s in local_ds.iter_shard(local_ds.shards()[1], start=3)] == shard_keys[3:]


def _loader(dataset, start=(0, 0)) -> HybridLoader:
    cfg = stream_config("unused", workers=0, batch=4)
    sampler = HybridSampler([N_DET, SHARDS * PER_SHARD], [s.batch_size for s in cfg.data], seed=cfg.seed)
    sampler.epoch, sampler.position = start
    return HybridLoader(
        [IdToyDataset(N_DET, 1), dataset], cfg.data, sampler, collate=id_collate, rank=1, world_size=2, seed=cfg.seed
    )


def test_trainer_resumes_a_remote_stream_at_the_same_record_as_a_local_one(local):
    folder, _ = local
    steps = 2 * (3 + 5)  # two epochs: det ceil(10/4) + cc 20/4 per epoch
    full = _run(_loader(open_dataset(folder, "img2dataset-wds")), steps)
    with http_server(served_files(folder)) as (url, _):
        remote = open_dataset(f"{url}/{PATTERN}", "img2dataset-wds", storage_options=SMALL_BLOCKS)
        assert _run(_loader(remote), steps) == full
        for position in (2, 5):
            assert _run(_loader(remote, start=(0, position)), steps - position) == full[position:]


# ---- hub webdataset, naming rules, errors ----------------------------------------------------------------


def test_hub_webdataset_url_equals_its_local_copy(tmp_path):
    repo = tmp_path / "cc3m-wds"
    write_shards(repo, shards=2, per_shard=3, prefix="cc3m-train-")
    write_shards(repo, shards=1, per_shard=2, prefix="cc3m-validation-")
    with http_server(served_files(repo)) as (url, _):
        for split in ("train", "validation"):
            there = open_dataset(
                f"{url}/cc3m-{{train-00000,train-00001,validation-00000}}.tar", "hf-webdataset", split=split
            )
            here = open_dataset(repo, "hf-webdataset", split=split)
            assert [s.rsplit("/", 1)[1] for s in there.shards()] == [Path(s).name for s in here.shards()]
            assert as_rows(there) == as_rows(here)
            shard = there.shards()[0]
            assert as_rows(there.iter_shard(shard, start=1)) == as_rows(here.iter_shard(here.shards()[0], start=1))


def test_tar_records_follow_webdataset_naming_rules(tmp_path):
    """Folders kept in keys, multi-dot and upper-case extensions, ``__…__`` metadata and directories skipped."""
    import webdataset as wds

    path = tmp_path / "odd.tar"
    members = ["__meta__/info.json", "a/b/x1.JPG", "a/b/x1.seg.png", "a/b/x1.txt", "x2.txt", "x2.json", "x.3.txt"]
    with tarfile.open(path, "w") as tar:
        tar.addfile(tarfile.TarInfo("a/"), None)
        for i, name in enumerate(members):
            info = tarfile.TarInfo(name)
            data = f"{name} {i}".encode()
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    theirs = [
        {k: v for k, v in rec.items() if k != "__url__"}
        for rec in wds.DataPipeline(wds.SimpleShardList([str(path)]), wds.tarfile_to_samples())
    ]
    ours = [{"__key__": rec.key, **rec.fields} for rec in iter_tar_records(str(path))]
    assert ours == theirs and [r["__key__"] for r in ours] == ["a/b/x1", "x2", "x"]


def test_duplicate_member_names_the_shard_and_record(tmp_path):
    path = tmp_path / "dup.tar"
    with tarfile.open(path, "w") as tar:
        for name in ("k1.txt", "k1.txt"):
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(DataError, match=r"dup.tar: record k1: two members named k1.txt"):
        list(open_dataset(path, "img2dataset-wds"))


def test_urls_only_where_a_format_reads_them():
    assert detect_format("s3://bucket/cc/{00000..01242}.tar") == "img2dataset-wds"
    assert detect_format("hf://datasets/pixparse/cc3m-wds/cc3m-train-{0000..0575}.tar") == "hf-webdataset"
    with pytest.raises(DataError, match="cannot tell the dataset format of this URL"):
        detect_format("s3://bucket/o365/zhiyuan_objv2_train.json")
    with pytest.raises(DataError, match="format 'o365' reads local files only"):
        open_dataset("s3://bucket/o365/zhiyuan_objv2_train.json", "o365")
    with pytest.raises(DataError, match="not a JSON object"):
        open_dataset("s3://bucket/cc/{00000..00001}.tar", "img2dataset-wds", storage_options="{endpoint")
