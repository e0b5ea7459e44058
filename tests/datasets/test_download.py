"""``data download`` / ``data verify`` end to end against a local HTTP server on 127.0.0.1 (never the internet).

The server holds small archives laid out like the real ones (GLIP's odinw_35 zips, LVIS's json zip,
GLIP's minival json, MDETR's tarball unpacking as ``OpenSource/``, COCO's val2017.zip) under
``/<host>/<path>``, so a bare ``--mirror http://127.0.0.1:PORT`` serves every catalogue url.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import threading
import time
import zipfile
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from detclip_bench import DataError
from detclip_bench.cli.main import main
from detclip_bench.datasets import download as download_module
from detclip_bench.datasets import open_dataset
from detclip_bench.datasets.download import (
    MANIFEST_NAME,
    STAGING_NAME,
    NoNetwork,
    apply_mirror,
    catalogue,
    download,
    hand_path,
    parse_mirrors,
    verify,
)
from detclip_bench.datasets.odinw import ODINW13
from detclip_bench.suites import SUITES
from tests.datasets.writers import lvis_v1, roboflow_split

SHIPPED = dict(download_module.PUBLISHED)  # before the autouse fixture below empties it
LVIS_URL = "https://dl.fbaipublicfiles.com/LVIS/lvis_v1_val.json.zip"
MINIVAL_URL = "https://huggingface.co/GLIPModel/GLIP/resolve/main/lvis_v1_minival_inserted_image_name.json"


# --------------------------------------------------------------------------- no internet, local server


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Any connection to a host other than 127.0.0.1 fails the test; no proxy, no mirror from the environment."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"test tried to reach {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    # the server's bodies are stand-ins: the real files' published digests would refuse them (tests set their own)
    monkeypatch.setattr(download_module, "PUBLISHED", {})
    for var in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "DETCLIP_BENCH_MIRROR",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")


class Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}  # "/<host>/<path>" -> body
        self.content_type: dict[str, str] = {}
        self.drop_once: dict[str, int] = {}  # path -> close the connection after this many body bytes, once
        self.always_short: set[str] = set()  # announce the full length, always send half
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if rng:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", server.content_type.get(self.path, "application/octet-stream"))
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                payload = body[start:]
                if self.path in server.drop_once:
                    payload = payload[: server.drop_once.pop(self.path)]
                elif self.path in server.always_short:
                    payload = payload[: len(payload) // 2]
                self.wfile.write(payload)
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def put(self, url: str, body: bytes, content_type: str | None = None) -> str:
        parts = urlsplit(url)
        path = f"/{parts.netloc}{parts.path}"
        self.files[path] = body
        if content_type:
            self.content_type[path] = content_type
        return path

    def local(self, url: str) -> str:
        return apply_mirror(url, {"*": self.base})

    def ranges(self, path: str) -> list[str | None]:
        return [r for p, r in self.requests if p == path]


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar_gz(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tree(folder: Path, prefix: str = "") -> dict[str, bytes]:
    return {prefix + p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _odinw_zips(tmp: Path) -> dict[str, bytes]:
    """One zip per ODinW13 dataset, its single top folder = the zip name, GLIP's sub-folders inside."""
    out = {}
    for m in ODINW13:
        top = m.subdir.split("/")[0]
        folder = tmp / "odinw_src" / m.subdir
        if m.flat:  # pistols/export/{train,val,test}_annotations_without_background.json, images beside
            for split in ("train", "val", "test"):
                roboflow_split(
                    folder, with_root=False, name=f"{split}_annotations_without_background.json", classes=m.classes, n=1
                )
        else:
            for k, split in enumerate(dict.fromkeys(("train", "valid", m.val_split, m.test_split))):
                roboflow_split(folder / split, with_root=bool(k % 2), classes=m.classes, n=1)
        entries = _tree(tmp / "odinw_src" / top, prefix=f"{top}/")
        entries[f"__MACOSX/{top}/._junk"] = b"\x00\x05\x16\x07"  # as some Roboflow/macOS zips carry
        out[f"https://huggingface.co/GLIPModel/GLIP/resolve/main/odinw_35/{top}.zip"] = _zip(entries)
    return out


@pytest.fixture(scope="module")
def payloads(tmp_path_factory) -> dict[str, bytes]:
    """Catalogue url -> body, for every file of odinw13, lvis-val, lvis-minival, mdetr-annotations, coco-val2017."""
    tmp = tmp_path_factory.mktemp("payloads")
    out = _odinw_zips(tmp)
    lvis_json = lvis_v1(tmp / "lvis_src")
    out[LVIS_URL] = _zip({"lvis_v1_val.json": lvis_json.read_bytes()})
    doc = json.loads(lvis_json.read_text())  # GLIP's minival: val2017 images only, file_name inserted
    doc["images"] = [
        dict(im, file_name="val2017/" + im["coco_url"].rsplit("/", 1)[1])
        for im in doc["images"]
        if "/val2017/" in im["coco_url"]
    ]
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in {im["id"] for im in doc["images"]}]
    out[MINIVAL_URL] = json.dumps(doc).encode()
    out["http://images.cocodataset.org/zips/val2017.zip"] = _zip(
        _tree(tmp / "lvis_src" / "coco" / "val2017", "val2017/")
    )
    out["https://zenodo.org/record/4729015/files/mdetr_annotations.tar.gz"] = _tar_gz(
        {
            "OpenSource/final_flickr_separateGT_train.json": b'{"images": [], "annotations": [], "categories": []}',
            "OpenSource/final_mixed_train.json": b'{"images": [], "annotations": [], "categories": []}',
        }
    )
    out["https://huggingface.co/GLIPModel/GLIP/resolve/main/mdetr_annotations/final_mixed_train_no_coco.json"] = (
        b'{"images": [], "annotations": [], "categories": []}'
    )
    return out


@pytest.fixture
def server(payloads):
    srv = Server()
    for url, body in payloads.items():
        srv.put(url, body)
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


QUIET = {"progress": False, "backoff": 0.0}  # no bars, no sleeping between retries


def _manifest(root: Path) -> dict:
    return json.loads((root / MANIFEST_NAME).read_text())


# --------------------------------------------------------------------------- catalogue facts


def test_catalogue_uses_real_file_urls_and_the_suites_folders():
    cat = catalogue()
    odinw = [f.url for f in cat["odinw13"].files]
    assert len(odinw) == 13
    assert (
        {u.rsplit("/", 1)[1] for u in odinw}
        == {m.subdir.split("/")[0] + ".zip" for m in ODINW13}
        == {
            "AerialMaritimeDrone.zip",
            "Aquarium.zip",
            "CottontailRabbits.zip",
            "EgoHands.zip",
            "NorthAmericaMushrooms.zip",
            "Packages.zip",
            "PascalVOC.zip",
            "pistols.zip",
            "pothole.zip",
            "Raccoon.zip",
            "ShellfishOpenImages.zip",
            "thermalDogsAndPeople.zip",
            "VehiclesOpenImages.zip",
        }
    )
    for target in cat.values():
        for f in target.files:
            assert "/tree/" not in f.url and "/blob/" not in f.url, f.url  # hub web pages, not files
            if "huggingface.co" in f.url:
                assert f.url.startswith("https://huggingface.co/GLIPModel/GLIP/resolve/main/"), f.url
    assert [f.url for f in cat["lvis-val"].files] == [LVIS_URL]
    assert [(f.url, f.dest) for f in cat["lvis-minival"].files] == [(MINIVAL_URL, "lvis/lvis_v1_minival.json")]
    assert cat["mdetr-annotations"].files[0].url == "https://zenodo.org/record/4729015/files/mdetr_annotations.tar.gz"
    assert [f.url for f in cat["coco-val2017"].files] == ["http://images.cocodataset.org/zips/val2017.zip"]


def test_mirror_specs():
    m = parse_mirrors(["huggingface.co=http://127.0.0.1:9/hf/", "http://127.0.0.1:9"], env=False)
    assert (
        apply_mirror(MINIVAL_URL, m)
        == "http://127.0.0.1:9/hf/GLIPModel/GLIP/resolve/main/lvis_v1_minival_inserted_image_name.json"
    )
    assert apply_mirror(LVIS_URL, m) == "http://127.0.0.1:9/dl.fbaipublicfiles.com/LVIS/lvis_v1_val.json.zip"
    assert apply_mirror(LVIS_URL, {}) == LVIS_URL
    with pytest.raises(DataError, match="HOST=BASE_URL"):
        parse_mirrors(["not-a-url"], env=False)


# --------------------------------------------------------------------------- (a) full download


def test_full_download_unpacks_into_the_suite_layout_and_writes_the_manifest(server, payloads, tmp_path):
    root = tmp_path / "data"
    targets = ["odinw13", "lvis-minival", "lvis-val", "mdetr-annotations", "coco-val2017"]
    summary = download(targets, root, mirrors={"*": server.base}, **QUIET)
    assert {t: (s["fetched"], s["skipped"]) for t, s in summary.items()} == {
        "odinw13": (13, 0),
        "lvis-minival": (1, 0),
        "lvis-val": (1, 0),
        "mdetr-annotations": (2, 0),
        "coco-val2017": (1, 0),
    }
    assert summary["lvis-val"]["needs"] == ["coco-train2017"]  # coco-val2017 came in the same run

    # the layout the suites read: their own file checks pass, and the loaders open the files
    for suite in ("odinw13", "odinw13-finetune", "lvis-minival"):
        SUITES.get(suite).check_files(root)
    for m in ODINW13:
        for split in ("train", "val", "test"):
            ds = m.open(root / "odinw", split)
            assert len(ds) == 1 and [c.name for c in ds.vocabulary()] == list(m.classes), (m.name, split)
    minival = open_dataset(root / "lvis" / "lvis_v1_minival.json", "lvis")
    assert len(minival) == 1 and minival[0].load_image().size == (48, 32)  # image from the val2017 zip
    assert (root / "lvis" / "lvis_v1_val.json").read_bytes() == zipfile.ZipFile(io.BytesIO(payloads[LVIS_URL])).read(
        "lvis_v1_val.json"
    )
    goldg = root / "goldg" / "mdetr_annotations"  # MDETR's tarball unpacks as OpenSource/: renamed
    assert sorted(p.name for p in goldg.iterdir()) == [
        "final_flickr_separateGT_train.json",
        "final_mixed_train.json",
        "final_mixed_train_no_coco.json",
    ]
    assert not (root / "goldg" / "OpenSource").exists() and not list(root.rglob("__MACOSX"))
    assert not (root / STAGING_NAME).exists()  # archives deleted, no .part left

    doc = _manifest(root)
    assert set(doc["downloads"]) == set(payloads)
    for url, rec in doc["downloads"].items():
        body = payloads[url]
        assert rec["url"] == url and rec["fetched_from"] == server.local(url)
        assert rec["size"] == len(body) and rec["sha256"] == hashlib.sha256(body).hexdigest()
        assert datetime.fromisoformat(rec["date"]).tzinfo is not None
        for rel in rec["files"]:
            entry = doc["files"][rel]
            data = (root / rel).read_bytes()
            assert entry["size"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
            assert entry["source"] == url
    assert doc["files"]["lvis/lvis_v1_minival.json"]["sha256"] == hashlib.sha256(payloads[MINIVAL_URL]).hexdigest()
    report = verify(root, progress=False)
    assert report.ok and report.checked == len(doc["files"])

    # a second run fetches nothing
    n = len(server.requests)
    again = download(targets, root, mirrors={"*": server.base}, **QUIET)
    assert len(server.requests) == n and again["odinw13"] == {"fetched": 0, "skipped": 13, "bytes": 0, "needs": []}


# --------------------------------------------------------------------------- (b) interrupted transfers


def test_interrupted_transfer_is_resumed_with_range_on_the_next_run(server, payloads, tmp_path):
    root = tmp_path / "data"
    body = payloads[LVIS_URL]
    path = server.put(LVIS_URL, body)
    server.drop_once[path] = 100
    with pytest.raises(DataError, match=r"connection closed after 100 of \d+ bytes") as exc:
        download(["lvis-val"], root, mirrors={"*": server.base}, retries=0, **QUIET)
    assert server.local(LVIS_URL) in str(exc.value)  # the url is named
    part = root / STAGING_NAME / "lvis-val" / "lvis_v1_val.json.zip.part"
    assert part.read_bytes() == body[:100] and not (root / "lvis").exists()

    download(["lvis-val"], root, mirrors={"*": server.base}, retries=0, **QUIET)
    assert server.ranges(path) == [None, "bytes=100-"]
    rec = _manifest(root)["downloads"][LVIS_URL]
    assert rec["size"] == len(body) and rec["sha256"] == hashlib.sha256(body).hexdigest()
    assert verify(root, progress=False).ok and not part.exists()


def test_dropped_connection_is_retried_from_where_it_stopped(server, payloads, tmp_path):
    root = tmp_path / "data"
    url = "https://zenodo.org/record/4729015/files/mdetr_annotations.tar.gz"
    path = server.put(url, payloads[url])
    server.drop_once[path] = 57
    download(["mdetr-annotations"], root, mirrors={"*": server.base}, retries=2, **QUIET)
    assert server.ranges(path) == [None, "bytes=57-"]
    assert _manifest(root)["downloads"][url]["sha256"] == hashlib.sha256(payloads[url]).hexdigest()
    assert (root / "goldg" / "mdetr_annotations" / "final_mixed_train.json").is_file()


def test_complete_part_file_is_finished_after_a_416(server, payloads, tmp_path):
    root = tmp_path / "data"
    part = root / STAGING_NAME / "lvis-minival" / "lvis_v1_minival_inserted_image_name.json.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payloads[MINIVAL_URL])  # killed after the last byte, before the rename
    download(["lvis-minival"], root, mirrors={"*": server.base}, **QUIET)
    assert (root / "lvis" / "lvis_v1_minival.json").read_bytes() == payloads[MINIVAL_URL]


# --------------------------------------------------------------------------- (c) verify


def test_verify_names_every_corrupted_truncated_or_missing_file(server, tmp_path, capsys):
    root = tmp_path / "data"
    download(["lvis-val", "coco-val2017", "lvis-minival"], root, mirrors={"*": server.base}, **QUIET)
    lvis = root / "lvis" / "lvis_v1_val.json"
    data = bytearray(lvis.read_bytes())
    data[10] ^= 0xFF  # same size, one byte flipped
    lvis.write_bytes(bytes(data))
    jpg = root / "coco" / "val2017" / "000000000001.jpg"
    jpg.write_bytes(jpg.read_bytes()[:20])
    (root / "lvis" / "lvis_v1_minival.json").unlink()

    report = verify(root, progress=False)
    assert len(report.problems) == 3
    text = "\n".join(report.problems)
    assert f"changed: {lvis}: sha256" in text and "(corrupted)" in text
    assert f"changed: {jpg}: 20 bytes" in text and "(truncated)" in text
    assert f"missing: {root / 'lvis' / 'lvis_v1_minival.json'} (from {MINIVAL_URL})" in text
    assert len(verify(root, quick=True, progress=False).problems) == 2  # sizes only: the flipped byte passes

    assert main(["data", "verify", "--root", str(root), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert str(lvis) in out and str(jpg) in out and "lvis_v1_minival.json" in out and "3 problem(s)" in out

    # --force fetches again what the manifest has, and the tree verifies
    download(["lvis-val", "coco-val2017", "lvis-minival"], root, mirrors={"*": server.base}, force=True, **QUIET)
    assert verify(root, progress=False).ok


def test_verify_without_a_manifest_says_so(tmp_path):
    with pytest.raises(DataError, match="no download manifest"):
        verify(tmp_path, progress=False)


# --------------------------------------------------------------------------- (d) bad bodies are refused


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "application/octet-stream"])
def test_html_body_is_refused_naming_the_url(server, tmp_path, content_type):
    root = tmp_path / "data"
    server.put(
        LVIS_URL, b"<!DOCTYPE html>\n<html><head><title>lvis_v1_val.json.zip</title></head></html>", content_type
    )
    with pytest.raises(DataError, match="HTML page") as exc:
        download(["lvis-val"], root, mirrors={"*": server.base}, **QUIET)
    assert server.local(LVIS_URL) in str(exc.value)
    assert not (root / "lvis").exists() and not list(root.rglob("*.part"))
    assert not (root / MANIFEST_NAME).exists()


def test_body_that_is_not_the_archive_is_refused(server, tmp_path):
    root = tmp_path / "data"
    server.put(LVIS_URL, b"\x00garbage" * 100)
    with pytest.raises(DataError, match="not a zip archive") as exc:
        download(["lvis-val"], root, mirrors={"*": server.base}, **QUIET)
    assert server.local(LVIS_URL) in str(exc.value) and not (root / "lvis").exists()


def test_body_shorter_than_announced_fails_after_retries_naming_the_url(server, payloads, tmp_path):
    root = tmp_path / "data"
    path = server.put(LVIS_URL, payloads[LVIS_URL])
    server.always_short.add(path)
    with pytest.raises(DataError, match="download failed after 3 attempt") as exc:
        download(["lvis-val"], root, mirrors={"*": server.base}, retries=2, **QUIET)
    assert server.local(LVIS_URL) in str(exc.value)
    assert len(server.ranges(path)) == 3 and server.ranges(path)[1].startswith("bytes=")
    assert not (root / "lvis").exists()


def test_file_that_changed_since_the_first_download_is_refused(server, payloads, tmp_path):
    root = tmp_path / "data"
    download(["lvis-val"], root, mirrors={"*": server.base}, **QUIET)
    first = (root / "lvis" / "lvis_v1_val.json").read_bytes()
    server.put(LVIS_URL, _zip({"lvis_v1_val.json": b'{"images": [], "annotations": [], "categories": []}'}))
    with pytest.raises(DataError, match="first download recorded") as exc:
        download(["lvis-val"], root, mirrors={"*": server.base}, force=True, **QUIET)
    assert server.local(LVIS_URL) in str(exc.value) and f"{len(payloads[LVIS_URL])} bytes" in str(exc.value)
    assert (root / "lvis" / "lvis_v1_val.json").read_bytes() == first  # nothing unpacked over it
    assert _manifest(root)["downloads"][LVIS_URL]["sha256"] == hashlib.sha256(payloads[LVIS_URL]).hexdigest()


def test_archive_with_unsafe_paths_is_refused(server, tmp_path):
    root = tmp_path / "data"
    server.put(LVIS_URL, _zip({"lvis_v1_val.json": b"{}", "../../escaped.txt": b"x"}))
    with pytest.raises(DataError, match="unsafe path"):
        download(["lvis-val"], root, mirrors={"*": server.base}, **QUIET)
    assert not (tmp_path / "escaped.txt").exists() and not list(tmp_path.rglob("escaped.txt"))


def test_kept_archive_is_verified_and_reused(server, payloads, tmp_path):
    root = tmp_path / "data"
    download(["lvis-val"], root, mirrors={"*": server.base}, keep_archives=True, **QUIET)
    archive = root / STAGING_NAME / "lvis-val" / "lvis_v1_val.json.zip"
    assert archive.read_bytes() == payloads[LVIS_URL]
    assert _manifest(root)["downloads"][LVIS_URL]["archive"] == archive.relative_to(root).as_posix()
    assert verify(root, progress=False).checked == 2
    n = len(server.requests)
    (root / "lvis" / "lvis_v1_val.json").unlink()
    download(["lvis-val"], root, mirrors={"*": server.base}, keep_archives=True, **QUIET)  # unpacked again, offline
    assert len(server.requests) == n and verify(root, progress=False).ok
    archive.write_bytes(payloads[LVIS_URL][:-1])
    assert [p.split(":")[0] for p in verify(root, progress=False).problems] == ["changed"]


def test_http_404_is_an_error_naming_the_url(server, tmp_path):
    root = tmp_path / "data"
    del server.files[f"/huggingface.co{urlsplit(MINIVAL_URL).path}"]
    with pytest.raises(DataError, match="HTTP 404") as exc:
        download(["lvis-minival"], root, mirrors={"*": server.base}, **QUIET)
    assert server.local(MINIVAL_URL) in str(exc.value)


# --------------------------------------------------------------------------- (e) CLI


def test_cli_download_and_verify(server, payloads, tmp_path, capsys, monkeypatch):
    root = tmp_path / "data"
    assert (
        main(
            [
                "data",
                "download",
                "lvis-val",
                "lvis-minival",
                "--root",
                str(root),
                "--mirror",
                server.base,
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "lvis-val: 1 file(s) fetched" in out and "lvis-minival: 1 file(s) fetched" in out
    assert "reads images from coco-val2017" in out and MANIFEST_NAME in out
    assert (root / "lvis" / "lvis_v1_val.json").is_file() and (root / "lvis" / "lvis_v1_minival.json").is_file()
    assert set(_manifest(root)["downloads"]) == {LVIS_URL, MINIVAL_URL}
    assert main(["data", "verify", "--root", str(root), "--no-progress"]) == 0
    assert "2 file(s) checked, 0 problem(s)" in capsys.readouterr().out

    # HOST=BASE mirrors from the environment; $DETCLIP_BENCH_DATA as the root
    monkeypatch.setenv("DETCLIP_BENCH_MIRROR", f"images.cocodataset.org={server.base}/images.cocodataset.org")
    monkeypatch.setenv("DETCLIP_BENCH_DATA", str(root))
    assert main(["data", "download", "coco-val2017", "--no-progress"]) == 0
    assert (root / "coco" / "val2017" / "000000000001.jpg").is_file()
    assert main(["data", "download", "--list"]) == 0
    listing = capsys.readouterr().out
    assert f"(via {server.base}/images.cocodataset.org/zips/val2017.zip)" in listing and MINIVAL_URL in listing

    # errors: a refused body names the url (exit 1); an unknown target (exit 2)
    server.put(MINIVAL_URL, b"<html>moved</html>", "text/html")
    assert (
        main(
            [
                "data",
                "download",
                "lvis-minival",
                "--root",
                str(tmp_path / "other"),
                "--mirror",
                server.base,
                "--no-progress",
            ]
        )
        == 1
    )
    assert server.local(MINIVAL_URL) in capsys.readouterr().err
    assert main(["data", "download", "lvis-v2", "--root", str(root)]) == 2


# --------------------------------------------------------------------------- (f) offline, fetched by hand

COCO_VAL_URL = "http://images.cocodataset.org/zips/val2017.zip"


@pytest.fixture
def closed_port() -> str:
    """A loopback address where nothing listens: every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _published(monkeypatch, url: str, body: bytes) -> None:
    monkeypatch.setattr(download_module, "PUBLISHED", {url: (len(body), hashlib.sha256(body).hexdigest())})


def test_a_refused_connection_is_no_network_at_once_with_what_to_do(closed_port, tmp_path, capsys):
    root = tmp_path / "data"
    start = time.monotonic()
    with pytest.raises(NoNetwork) as exc:  # default backoff: five retries would sleep 62 s
        download(["coco-val2017"], root, mirrors={"*": closed_port}, progress=False)
    assert time.monotonic() - start < 10
    text = str(exc.value)
    hand = hand_path(root, "coco-val2017", catalogue()["coco-val2017"].files[0])
    assert "connection was refused" in text and COCO_VAL_URL in text and str(hand) in text
    assert f"detclip-bench data verify --data-root {root}" in text and "run the command again" not in text
    argv = ["data", "download", "lvis-minival", "--data-root", str(root), "--mirror", closed_port, "--no-progress"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert MINIVAL_URL in err and str(root / "lvis" / "lvis_v1_minival.json") in err and "data verify" in err


def test_an_unresolvable_host_is_no_network_at_once(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    start = time.monotonic()
    with pytest.raises(NoNetwork, match="does not resolve") as exc:
        download(["lvis-val"], tmp_path / "data", progress=False)
    assert time.monotonic() - start < 10 and LVIS_URL in str(exc.value)


def test_files_fetched_by_hand_are_checked_unpacked_and_recorded(payloads, closed_port, tmp_path, monkeypatch):
    root = tmp_path / "data"
    body = payloads[COCO_VAL_URL]
    _published(monkeypatch, COCO_VAL_URL, body)
    coco = catalogue()["coco-val2017"].files[0]
    # wrong bytes put by hand: refused against the published digest, named, and left there
    hand = hand_path(root, "coco-val2017", coco)
    hand.parent.mkdir(parents=True)
    hand.write_bytes(body[:-1] + bytes([body[-1] ^ 1]))
    with pytest.raises(DataError, match="published size and sha256") as exc:
        download(["coco-val2017"], root, mirrors={"*": closed_port}, **QUIET)
    assert str(hand) in str(exc.value) and hand.is_file()
    report = verify(root, progress=False)  # no manifest yet: the hand-fetched file is checked
    assert report.checked == 1 and report.problems == [
        f"changed: {hand}: sha256 {hashlib.sha256(hand.read_bytes()).hexdigest()}, "
        f"expected {hashlib.sha256(body).hexdigest()} (corrupted)"
    ]
    # the right bytes: unpacked and recorded without a connection; a plain json straight at its place
    hand.write_bytes(body)
    minival = root / "lvis" / "lvis_v1_minival.json"
    minival.parent.mkdir(parents=True)
    minival.write_bytes(payloads[MINIVAL_URL])
    summary = download(["coco-val2017", "lvis-minival"], root, mirrors={"*": closed_port}, **QUIET)
    assert summary["coco-val2017"]["fetched"] == 1 and summary["lvis-minival"]["fetched"] == 1
    assert (root / "coco" / "val2017" / "000000000001.jpg").is_file() and minival.is_file()
    doc = _manifest(root)
    assert doc["downloads"][COCO_VAL_URL]["fetched_from"] == "by hand"
    assert doc["downloads"][MINIVAL_URL]["sha256"] == hashlib.sha256(payloads[MINIVAL_URL]).hexdigest()
    assert verify(root, progress=False).ok


def test_verify_checks_downloads_against_published_digests(server, payloads, tmp_path, monkeypatch, capsys):
    root = tmp_path / "data"
    download(["coco-val2017"], root, mirrors={"*": server.base}, **QUIET)
    assert verify(root, progress=False).ok
    # the file pinned at first download is not the published one
    monkeypatch.setattr(download_module, "PUBLISHED", {COCO_VAL_URL: (5, "0" * 64)})
    (problem,) = verify(root, progress=False).problems
    assert COCO_VAL_URL in problem and "published size and sha256 are 5 bytes" in problem
    # a file fetched by hand whose digest is not published: listed as unchecked, not passed silently
    lvis = catalogue()["lvis-val"].files[0]
    hand = hand_path(root, "lvis-val", lvis)
    hand.parent.mkdir(parents=True)
    hand.write_bytes(payloads[LVIS_URL])
    assert main(["data", "verify", "--data-root", str(root), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert f"note: unchecked: {hand}: fetched by hand, and {LVIS_URL} has no published digest" in out


def test_verify_a_missing_root_says_folder_not_found(tmp_path, capsys):
    assert main(["data", "verify", "--root", str(tmp_path / "missing"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'missing'}: folder not found" in err and "manifest" not in err


def test_only_confirmed_public_digests_are_shipped():
    """The table holds COCO's two image zips; a wrong entry would refuse every real download of that file."""
    real = SHIPPED
    assert set(real) == {COCO_VAL_URL, "http://images.cocodataset.org/zips/train2017.zip"}
    assert real[COCO_VAL_URL] == (815_585_330, "4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05")
