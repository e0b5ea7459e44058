"""``detclip-bench data download|verify``: fetch the public benchmark files into the data-root layout, and pin them.

The catalogue (:func:`catalogue`) is data: per target, the public files people fetch by hand
today, where each one is unpacked under the data root (the folders the suites read, README
"Data layout"), and which paths must exist afterwards. Sources, checked against public code:

* ODinW13: GLIP's ``odinw_35/<name>.zip`` on the Hugging Face hub, in the *model* repository
  ``GLIPModel/GLIP`` (microsoft/GLIP ``odinw/download.py``, which unzips each into
  ``DATASET/odinw``; folder names as in GLIP ``configs/odinw_13/*.yaml``).
* LVIS v1 val: ``lvis_v1_val.json.zip`` from dl.fbaipublicfiles.com (the LVIS site's link).
* LVIS minival: GLIP's ``lvis_v1_minival_inserted_image_name.json`` on the same hub repo (GLIP
  DATA.md names it; its blob-storage address there is gone, the hub copy is what YOLO-World's
  docs/data.md links). MDETR's own minival is a box.com share link (ashkamath/mdetr
  ``.github/lvis.md``), not in its annotation tarball and not a stable file address.
* MDETR annotations: ``mdetr_annotations.tar.gz`` on Zenodo record 4729015 (MDETR
  ``.github/pretrain.md``, GLIP DATA.md); it unpacks as ``OpenSource/``. GLIP's
  ``final_mixed_train_no_coco.json`` (the GoldG file without COCO images) is on the hub repo.
* COCO 2017 images: ``images.cocodataset.org/zips/{val,train}2017.zip``.

Every byte goes through one resumable fetcher (HTTP ``Range`` on a ``.part`` file, retries,
HTML/size/magic checks). What arrived is recorded in ``<root>/.detclip-bench-download.json``:
per download url, size, sha256 and date (pinned on first download; a later download of the
same url must match), and per unpacked file its size and sha256, which :func:`verify` checks.
``$DETCLIP_BENCH_MIRROR`` / ``--mirror`` rewrites hosts (a local mirror, or tests on 127.0.0.1).

No network (a host name that does not resolve, a refused connection, an unreachable network) is told
apart from a transient failure at once, without retries: the error names the url, where to put the file
fetched by hand (:func:`hand_path`), and ``data verify``. A file put there is checked, unpacked and
recorded by the next ``download`` as if fetched. :data:`PUBLISHED` holds the sizes and sha256 that are
public for some files, so a file fetched by hand (or through a mirror) is checked against them.
"""

from __future__ import annotations

import datetime
import errno
import functools
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

from detclip_bench.datasets.odinw import ODINW13
from detclip_bench.errors import DataError, UnknownNameError
from detclip_bench.io import atomic_write_json

__all__ = [
    "MANIFEST_NAME",
    "MIRROR_ENV",
    "PUBLISHED",
    "TARGET_NAMES",
    "NoNetwork",
    "RemoteFile",
    "Target",
    "VerifyReport",
    "apply_mirror",
    "catalogue",
    "download",
    "fetch",
    "hand_path",
    "parse_mirrors",
    "verify",
]

log = logging.getLogger("detclip_bench")

MANIFEST_NAME = ".detclip-bench-download.json"
STAGING_NAME = ".detclip-bench-downloads"  # .part files, kept archives and unpack scratch, under the root
MIRROR_ENV = "DETCLIP_BENCH_MIRROR"
MANIFEST_FORMAT = "detclip-bench-download/1"
CHUNK = 1 << 20

# GLIP's odinw/download.py (microsoft/GLIP @ a5f302b) sets root = "https://huggingface.co/GLIPModel/GLIP/tree/main/odinw_35"
# and wgets <root>/<name>.zip. A /tree/ (or /blob/) address is the hub's web page about the file: wget
# saves HTML under a .zip name and the unzip that follows fails. The file itself is served at
# /resolve/main/ (a redirect to the hub's CDN), which is the form used here.
HF_GLIP = "https://huggingface.co/GLIPModel/GLIP/resolve/main"
LVIS_BASE = "https://dl.fbaipublicfiles.com/LVIS"
COCO_ZIPS = "http://images.cocodataset.org/zips"
MDETR_TARBALL = "https://zenodo.org/record/4729015/files/mdetr_annotations.tar.gz"

Kind = Literal["zip", "tar.gz", "file"]

# url -> (size, sha256) of files whose digest is public. COCO publishes no checksum itself; these are the
# values independent public download scripts and dataset libraries agree on (val2017.zip's also matches
# its widely published md5 442b8da7639aecaf257c1dceb8ba8c80, train2017.zip's md5 cced6f7f71b7629ddf16f17bbcfab6b2).
# Not listed, because no public digest could be confirmed offline: LVIS's lvis_v1_val.json.zip, GLIP's odinw_35
# zips and minival json on the hub (their sha256 is the LFS oid on each file's hub page), MDETR's tarball.
# Those are pinned on first download instead (the manifest).
PUBLISHED: dict[str, tuple[int, str]] = {
    f"{COCO_ZIPS}/val2017.zip": (815_585_330, "4f7e2ccb2866ec5041993c9cf2a952bbed69647b115d0f74da7ce8f4bef82f05"),
    f"{COCO_ZIPS}/train2017.zip": (
        19_336_861_798,
        "69a8bb58ea5f8f99d24875f21416de2e9ded3178e903f1f7603e283b9e06d929",
    ),
}


@dataclass(frozen=True)
class RemoteFile:
    """One public file, and where it lands under the data root.

    ``kind="file"``: ``dest`` is the file's path. Archives: ``dest`` is the folder they unpack into;
    with ``top`` set, the contents must end up in ``dest/top``: an archive whose single top folder
    is ``top`` is unpacked as is, one whose single top folder is in ``top_aliases`` has it renamed
    (MDETR's ``OpenSource/``), anything else is unpacked into ``dest/top``.
    """

    url: str
    dest: str
    kind: Kind
    top: str | None = None
    top_aliases: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()  # paths under the root that must exist once unpacked
    size: int | None = None  # pinned when known (none of the public files publishes a checksum)
    sha256: str | None = None

    @property
    def basename(self) -> str:
        return PurePosixPath(urlsplit(self.url).path).name

    @property
    def published(self) -> tuple[int | None, str | None]:
        """(size, sha256) known before any download: the catalogue's own, else :data:`PUBLISHED`'s."""
        if self.size is not None or self.sha256:
            return self.size, self.sha256
        return PUBLISHED.get(self.url, (None, None))


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    files: tuple[RemoteFile, ...]
    needs: tuple[str, ...] = ()  # other targets whose files it reads (images)


TARGET_NAMES: tuple[str, ...] = (
    "odinw13",
    "lvis-minival",
    "lvis-val",
    "mdetr-annotations",
    "coco-val2017",
    "coco-train2017",
)


@functools.cache
def catalogue() -> dict[str, Target]:
    """name → :class:`Target`. The ODinW folders come from the suites' manifest (``ODINW13``)."""
    odinw = tuple(
        RemoteFile(
            f"{HF_GLIP}/odinw_35/{m.subdir.split('/')[0]}.zip",
            "odinw",
            "zip",
            top=m.subdir.split("/")[0],
            expect=(f"odinw/{m.subdir}",),
        )
        for m in ODINW13
    )
    targets = (
        Target(
            "odinw13", "the 13 ODinW datasets GLIP evaluates (its odinw_35 zips), into odinw/<GLIP's folders>", odinw
        ),
        Target(
            "lvis-minival",
            "MDETR's 5k LVIS v1 minival as GLIP ships it (file_name inserted), as lvis/lvis_v1_minival.json",
            (RemoteFile(f"{HF_GLIP}/lvis_v1_minival_inserted_image_name.json", "lvis/lvis_v1_minival.json", "file"),),
            needs=("coco-val2017",),
        ),
        Target(
            "lvis-val",
            "LVIS v1 val annotations (19,809 images), as lvis/lvis_v1_val.json",
            (RemoteFile(f"{LVIS_BASE}/lvis_v1_val.json.zip", "lvis", "zip", expect=("lvis/lvis_v1_val.json",)),),
            needs=("coco-val2017", "coco-train2017"),
        ),
        Target(
            "mdetr-annotations",
            "MDETR's pre-processed annotations (Flickr30k, mixed GoldG, ...) and GLIP's "
            "final_mixed_train_no_coco.json, into goldg/mdetr_annotations/",
            (
                RemoteFile(
                    MDETR_TARBALL,
                    "goldg",
                    "tar.gz",
                    top="mdetr_annotations",
                    top_aliases=("OpenSource",),
                    expect=("goldg/mdetr_annotations/final_flickr_separateGT_train.json",),
                ),
                RemoteFile(
                    f"{HF_GLIP}/mdetr_annotations/final_mixed_train_no_coco.json",
                    "goldg/mdetr_annotations/final_mixed_train_no_coco.json",
                    "file",
                ),
            ),
        ),
        Target(
            "coco-val2017",
            "COCO 2017 val images (5,000; ~780 MiB), into coco/val2017/",
            (RemoteFile(f"{COCO_ZIPS}/val2017.zip", "coco", "zip", top="val2017", expect=("coco/val2017",)),),
        ),
        Target(
            "coco-train2017",
            "COCO 2017 train images (118k; ~18 GiB; LVIS val draws most of its images from it), into coco/train2017/",
            (RemoteFile(f"{COCO_ZIPS}/train2017.zip", "coco", "zip", top="train2017", expect=("coco/train2017",)),),
        ),
    )
    out = {t.name: t for t in targets}
    assert tuple(out) == TARGET_NAMES
    return out


# --------------------------------------------------------------------------- mirrors


def parse_mirrors(specs: Iterable[str] | None = None, *, env: bool = True) -> dict[str, str]:
    """``HOST=BASE`` sends ``scheme://HOST/path`` to ``BASE/path``; a bare ``BASE`` sends every other
    url to ``BASE/<host>/path`` (a ``wget -x`` style mirror). ``$DETCLIP_BENCH_MIRROR`` holds the same
    entries, comma- or space-separated; ``specs`` (``--mirror``) win over it."""
    entries: list[str] = []
    if env and os.environ.get(MIRROR_ENV):
        entries += os.environ[MIRROR_ENV].replace(",", " ").split()
    entries += [s for spec in specs or () for s in spec.replace(",", " ").split()]
    out: dict[str, str] = {}
    for entry in entries:
        host, sep, base = entry.partition("=")
        if not sep:
            host, base = "*", entry
        if not urlsplit(base).scheme or not urlsplit(base).netloc:
            raise DataError(
                f"--mirror / ${MIRROR_ENV}",
                entry,
                "a mirror is HOST=BASE_URL or BASE_URL, e.g. huggingface.co=http://127.0.0.1:8000/hf",
            )
        out[host.strip()] = base.rstrip("/")
    return out


def apply_mirror(url: str, mirrors: dict[str, str]) -> str:
    parts = urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    if parts.netloc in mirrors:
        return mirrors[parts.netloc] + tail
    if "*" in mirrors:
        return f"{mirrors['*']}/{parts.netloc}{tail}"
    return url


# --------------------------------------------------------------------------- fetching


class _Retry(Exception):
    """A transient failure: try again (resuming from the .part file)."""


class NoNetwork(DataError):
    """The host cannot be reached at all (no DNS, refused, no route): retrying will not help; fetch by hand."""


_UNREACHABLE_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


def _no_network_reason(exc: BaseException) -> str | None:
    """Why ``url`` cannot be reached at all, or None for a failure worth retrying (timeout, reset, 5xx)."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, socket.gaierror):
        return f"the host name does not resolve ({reason.strerror or reason}): no network, or no DNS"
    if isinstance(reason, ConnectionRefusedError):
        return "the connection was refused: nothing listens there (a proxy or mirror that is down?)"
    if isinstance(reason, OSError) and reason.errno in _UNREACHABLE_ERRNOS:
        return f"the network is unreachable ({reason.strerror or reason})"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _looks_like_html(head: bytes) -> bool:
    start = head.lstrip()[:64].lower()
    return start.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml"))


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 100-199/1000`` → (100, 1000); ``bytes */1000`` → (None, 1000)."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    start = None if span.strip() == "*" else int(span.split("-")[0])
    return start, (int(total) if total.strip().isdigit() else None)


def _fetch_once(url: str, part: Path, *, label: str, timeout: float, progress: bool) -> None:
    import http.client
    import urllib.error
    import urllib.request

    offset = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "detclip-bench", "Accept-Encoding": "identity"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # asked past the end: complete already, or the .part is stale
            _, total = _content_range(exc.headers.get("Content-Range"))
            if total == offset:
                return
            part.unlink()
            raise _Retry(f"HTTP 416 for a resume at byte {offset}; starting over") from exc
        if exc.code in (408, 425, 429) or exc.code >= 500:
            raise _Retry(f"HTTP {exc.code} {exc.reason}") from exc
        raise DataError(url, label, f"HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        why = _no_network_reason(exc)
        if why is not None:
            raise NoNetwork(url, label, why) from exc
        raise _Retry(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from exc

    with resp:
        ctype = (resp.headers.get("Content-Type") or "").lower()
        if ctype.startswith(("text/html", "application/xhtml")):
            if not offset:
                part.unlink(missing_ok=True)
            raise DataError(
                url,
                label,
                f"the server sent an HTML page ({ctype}), not the file: a web-page address "
                "(e.g. the hub's /tree/ or /blob/ instead of /resolve/) or a login/error page",
            )
        if resp.status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start != offset:
                part.unlink()
                raise _Retry(f"the server answered the resume at byte {offset} from byte {start}; starting over")
            mode = "ab"
        else:  # 200: the server ignored Range (or there was none): start from zero
            offset, mode = 0, "wb"
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        from tqdm import tqdm

        got = offset
        desc = PurePosixPath(urlsplit(url).path).name or label
        with (
            open(part, mode) as fh,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=desc,
                leave=False,
                disable=None if progress else True,
            ) as bar,
        ):
            try:
                while chunk := resp.read(CHUNK):
                    if got == 0 and _looks_like_html(chunk[:512]):
                        raise DataError(
                            url,
                            label,
                            "the body is an HTML page, not the file (a web-page address, "
                            "e.g. the hub's /tree/ or /blob/ instead of /resolve/)",
                        )
                    fh.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise _Retry(f"connection lost after {got} bytes ({type(exc).__name__}: {exc})") from exc
            except DataError:
                fh.close()
                part.unlink(missing_ok=True)
                raise
    if total is not None and got < total:
        raise _Retry(f"connection closed after {got} of {total} bytes")
    if total is not None and got > total:
        part.unlink()
        raise DataError(url, label, f"received {got} bytes but the server announced {total}")


def _check_kind(path: Path, kind: Kind, url: str, label: str) -> None:
    import zipfile

    with open(path, "rb") as fh:
        head = fh.read(512)
    if _looks_like_html(head):
        bad = "an HTML page, not the file"
    elif kind == "zip" and not zipfile.is_zipfile(path):
        bad = "not a zip archive (or a truncated one)"
    elif kind == "tar.gz" and head[:2] != b"\x1f\x8b":
        bad = "not a gzip file"
    elif kind == "file" and path.suffix == ".json" and head.lstrip()[:1] not in (b"{", b"["):
        bad = "not a json file"
    else:
        return
    raise DataError(url, label, f"{bad} ({path.stat().st_size} bytes, starting {head[:16]!r}); nothing unpacked")


def fetch(
    url: str,
    dest: Path,
    *,
    label: str = "-",
    kind: Kind = "file",
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 2.0,
    progress: bool = True,
) -> tuple[int, str]:
    """Download ``url`` to ``dest`` through ``dest.part`` (resumed with ``Range`` on a retry or a rerun).

    Returns (size, sha256). A transient failure is retried ``retries`` times; the last one is a
    DataError naming the url, with the partial file kept for the next run. An HTML body, a 4xx,
    a body longer than announced or one that is not a ``kind`` file is a DataError at once.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        try:
            _fetch_once(url, part, label=label, timeout=timeout, progress=progress)
            break
        except _Retry as exc:
            attempt += 1
            kept = part.stat().st_size if part.exists() else 0
            if attempt > retries:
                raise DataError(
                    url,
                    label,
                    f"download failed after {attempt} attempt(s): {exc}; {kept} bytes kept in "
                    f"{part}, run the command again to resume",
                ) from exc
            log.warning("%s: %s; retrying (%d/%d) from byte %d", url, exc, attempt, retries, kept)
            time.sleep(min(60.0, backoff * 2 ** (attempt - 1)))
    _check_kind(part, kind, url, label)
    size = part.stat().st_size
    digest = _sha256(part)
    os.replace(part, dest)
    return size, digest


_PUBLISHED_NOTE = "detclip_bench.datasets.download.PUBLISHED"


def hand_path(root: Path, target: str, spec: RemoteFile) -> Path:
    """Where a file fetched by hand goes (``<root>/.detclip-bench-downloads/<target>/<file name>``), for the
    next ``download`` to check, unpack and record it; a plain file (``kind="file"``) may also go straight to
    its place in the layout."""
    return Path(root) / STAGING_NAME / target / spec.basename


def _by_hand_advice(why: str, spec: RemoteFile, target: str, root: Path, local: Path) -> str:
    also = f" (or straight at {root / spec.dest})" if spec.kind == "file" else ""
    sha = spec.published[1]
    check = f"against its published size and sha256 ({sha[:16]}…)" if sha else "(its sha256 is then pinned)"
    return (
        f"{why}. No retry: nothing will change until the network does. Fetch {spec.url} by hand (a browser, "
        f"or a machine that is online) and put it at {local}{also}; then `detclip-bench data download {target} "
        f"--data-root {root}` checks it {check}, unpacks and records it, and `detclip-bench data verify "
        f"--data-root {root}` checks the files any time after"
    )


# --------------------------------------------------------------------------- unpacking


def _safe_member(name: str, archive_url: str) -> str | None:
    """The member's path as a clean relative posix path; None for folders and macOS junk."""
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".")]
    if not parts or parts[0] == "__MACOSX" or parts[-1] == ".DS_Store":
        return None
    if name.startswith("/") or ".." in parts:
        raise DataError(archive_url, name, "unsafe path in the archive (absolute or with '..'); refusing to unpack")
    return "/".join(parts)


def _copy_hashing(src, out: Path) -> tuple[int, str]:
    out.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with open(out, "wb") as fh:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            fh.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _extract(archive: Path, kind: Kind, scratch: Path, url: str) -> dict[str, tuple[int, str]]:
    """Every regular file of the archive into ``scratch``: relative path → (size, sha256)."""
    import tarfile
    import zipfile

    files: dict[str, tuple[int, str]] = {}
    try:
        if kind == "zip":
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    rel = None if info.is_dir() else _safe_member(info.filename, url)
                    if rel:
                        with zf.open(info) as src:  # a CRC mismatch raises BadZipFile at the end of the member
                            files[rel] = _copy_hashing(src, scratch / rel)
        else:
            with tarfile.open(archive, "r:gz") as tf:
                for member in tf:  # sequential: no seeking back in the gzip stream
                    rel = _safe_member(member.name, url) if member.isfile() else None
                    if rel:
                        src = tf.extractfile(member)
                        files[rel] = _copy_hashing(src, scratch / rel)
                    elif member.issym() or member.islnk():
                        log.warning("%s: link %s skipped", url, member.name)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(str(archive), url, f"corrupt archive: {exc}") from exc
    return files


def _placed(rel: str, spec: RemoteFile, tops: set[str]) -> str:
    if spec.top is None or tops == {spec.top}:
        return rel
    if len(tops) == 1 and (alias := next(iter(tops))) in spec.top_aliases:
        return spec.top + rel[len(alias) :]
    return f"{spec.top}/{rel}"


def _unpack(archive: Path, spec: RemoteFile, root: Path, label: str, digest: str) -> dict[str, dict]:
    """Unpack into the root's layout; returns manifest entries of the files, keyed by path under the root."""
    if spec.kind == "file":
        final = root / spec.dest
        final.parent.mkdir(parents=True, exist_ok=True)
        size = archive.stat().st_size
        os.replace(archive, final)
        return {spec.dest: {"size": size, "sha256": digest, "source": spec.url}}
    scratch = archive.with_name(archive.name + ".unpack")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        extracted = _extract(archive, spec.kind, scratch, spec.url)
        if not extracted:
            raise DataError(spec.url, label, "the archive holds no files")
        tops = {rel.split("/")[0] for rel in extracted}
        out: dict[str, dict] = {}
        for rel, (size, digest) in extracted.items():
            final_rel = f"{spec.dest}/{_placed(rel, spec, tops)}"
            final = root / final_rel
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(scratch / rel, final)
            out[final_rel] = {"size": size, "sha256": digest, "source": spec.url}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


# --------------------------------------------------------------------------- manifest


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _load_manifest(root: Path) -> dict:
    path = root / MANIFEST_NAME
    if not path.is_file():
        return {"format": MANIFEST_FORMAT, "downloads": {}, "files": {}, "targets": {}}
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise DataError(str(path), "-", f"unreadable download manifest: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise DataError(str(path), "format", f"not a {MANIFEST_FORMAT} manifest")
    for key in ("downloads", "files", "targets"):
        doc.setdefault(key, {})
    return doc


def _present(doc: dict, root: Path, url: str) -> bool:
    """All files of an earlier download of ``url`` still there with their sizes (``verify`` hashes them)."""
    rec = doc["downloads"].get(url)
    if not rec or not rec.get("files"):
        return False
    return all(
        (root / rel).is_file() and (root / rel).stat().st_size == doc["files"].get(rel, {}).get("size")
        for rel in rec["files"]
    )


def download(
    targets: Sequence[str],
    root: str | os.PathLike,
    *,
    mirrors: dict[str, str] | None = None,
    force: bool = False,
    keep_archives: bool = False,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 2.0,
    progress: bool = True,
) -> dict[str, dict]:
    """Fetch, check, unpack and record ``targets`` under ``root``; returns a summary per target.

    A file already recorded in the manifest with all its unpacked files present is skipped
    (``force`` fetches it again). A url fetched before must come back with the recorded size and
    sha256, or nothing is unpacked.
    """
    known = catalogue()
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise UnknownNameError("download target", ", ".join(unknown), TARGET_NAMES)
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    mirrors = parse_mirrors() if mirrors is None else mirrors
    manifest_path = root / MANIFEST_NAME
    doc = _load_manifest(root)
    staging = root / STAGING_NAME
    summary: dict[str, dict] = {}
    for name in dict.fromkeys(targets):
        target = known[name]
        fetched = skipped = 0
        nbytes = 0
        for spec in target.files:
            if not force and _present(doc, root, spec.url):
                skipped += 1
                continue
            source = apply_mirror(spec.url, mirrors)
            local = hand_path(root, name, spec)
            pinned = doc["downloads"].get(spec.url)
            want_size, want_sha = (pinned["size"], pinned["sha256"]) if pinned else spec.published
            placed = root / spec.dest
            if spec.kind == "file" and not pinned and not local.is_file() and placed.is_file():
                local.parent.mkdir(parents=True, exist_ok=True)
                os.replace(placed, local)  # put where it belongs by hand: checked and recorded like a download
            by_hand = not pinned and local.is_file()
            if (
                pinned and local.is_file() and local.stat().st_size == want_size and _sha256(local) == want_sha
            ):  # an archive kept by --keep-archives
                size, digest = want_size, want_sha
            elif by_hand:
                _check_kind(local, spec.kind, str(local), name)
                size, digest = local.stat().st_size, _sha256(local)
            else:
                try:
                    size, digest = fetch(
                        source,
                        local,
                        label=name,
                        kind=spec.kind,
                        retries=retries,
                        timeout=timeout,
                        backoff=backoff,
                        progress=progress,
                    )
                except NoNetwork as exc:
                    raise NoNetwork(source, name, _by_hand_advice(exc.reason, spec, name, root, local)) from exc
            if (want_size is not None and size != want_size) or (want_sha and digest != want_sha):
                if not by_hand:  # a file someone fetched by hand stays for them to look at
                    local.unlink(missing_ok=True)
                where = (
                    f"the first download recorded in {manifest_path} ({pinned['date']}) says"
                    if pinned
                    else f"its published size and sha256 ({_PUBLISHED_NOTE}) are"
                )
                if by_hand:
                    source = str(local)
                raise DataError(
                    source,
                    name,
                    f"got {size} bytes, sha256 {digest[:16]}…, but {where}: "
                    f"{want_size} bytes, sha256 {(want_sha or '?')[:16]}…: the file "
                    "changed or the transfer is wrong; nothing unpacked (if the upstream "
                    "file really changed, delete its entry from the manifest)",
                )
            entries = _unpack(local, spec, root, name, digest)
            missing = [p for p in spec.expect if not (root / p).exists()]
            if missing:
                raise DataError(
                    spec.url,
                    name,
                    f"unpacked, but {', '.join(missing)} is not there: the archive's "
                    "layout is not the one the suites read",
                )
            old = doc["downloads"].get(spec.url, {}).get("files", [])
            for rel in old:
                doc["files"].pop(rel, None)
            doc["files"].update(entries)
            record = {
                "target": name,
                "url": spec.url,
                "size": size,
                "sha256": digest,
                "date": pinned["date"] if pinned else _now(),
                "files": sorted(entries),
            }
            if by_hand:
                record["fetched_from"] = "by hand"
            elif source != spec.url:
                record["fetched_from"] = source
            if pinned:
                record["last_fetched"] = _now()
            if keep_archives and spec.kind != "file":
                record["archive"] = local.relative_to(root).as_posix()
            else:
                local.unlink(missing_ok=True)
            doc["downloads"][spec.url] = record
            atomic_write_json(manifest_path, doc, indent=1)
            fetched += 1
            nbytes += size
        doc["targets"][name] = {"date": _now(), "files": [f.url for f in target.files]}
        atomic_write_json(manifest_path, doc, indent=1)
        summary[name] = {"fetched": fetched, "skipped": skipped, "bytes": nbytes}
    for name, s in summary.items():  # image targets neither fetched now nor before
        s["needs"] = [n for n in known[name].needs if n not in doc["targets"]]
    for sub in (staging / n for n in targets):
        if sub.is_dir() and not any(sub.iterdir()):
            sub.rmdir()
    if staging.is_dir() and not any(staging.iterdir()):
        staging.rmdir()
    return summary


# --------------------------------------------------------------------------- verify


@dataclass
class VerifyReport:
    root: Path
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be checked, and why

    @property
    def ok(self) -> bool:
        return not self.problems


def _hand_fetched(root: Path, doc: dict | None) -> list[tuple[Path, RemoteFile]]:
    """Files put under the staging folder by hand (see :func:`hand_path`) that no download has recorded yet."""
    recorded = set((doc or {}).get("downloads", {}))
    return [
        (path, spec)
        for name, target in catalogue().items()
        for spec in target.files
        if spec.url not in recorded and (path := hand_path(root, name, spec)).is_file()
    ]


def verify(root: str | os.PathLike, *, quick: bool = False, progress: bool = True) -> VerifyReport:
    """Check every file recorded in the manifest (size, then sha256 unless ``quick``); name each one that is
    missing or changed. Downloads with a published digest (:data:`PUBLISHED`) are checked against it too, and
    so are files fetched by hand and not unpacked yet. Files the manifest does not list are not looked at."""
    root = Path(root).expanduser()
    path = root / MANIFEST_NAME
    if not root.is_dir():
        raise DataError(str(root), "-", "folder not found (the data root `data download --data-root` filled)")
    doc = _load_manifest(root) if path.is_file() else None
    by_hand = _hand_fetched(root, doc)
    if doc is None and not by_hand:
        raise DataError(
            str(path),
            "-",
            "no download manifest here (`detclip-bench data download TARGET --data-root DIR` writes it), "
            f"and no file fetched by hand under {root / STAGING_NAME}",
        )
    doc = doc or {"downloads": {}, "files": {}}
    expected: dict[str, dict] = dict(doc["files"])
    for url, rec in doc["downloads"].items():
        if rec.get("archive"):
            expected[rec["archive"]] = {"size": rec["size"], "sha256": rec["sha256"], "source": url}
    report = VerifyReport(root)
    published = {f.url: f.published for t in catalogue().values() for f in t.files}
    for url, rec in sorted(doc["downloads"].items()):  # pinned at first download: was that the published file?
        size, sha = published.get(url, (None, None))
        if sha and (rec.get("size"), rec.get("sha256")) != (size, sha):
            report.problems.append(
                f"changed: {url} was recorded in {path} as {rec.get('size')} bytes, sha256 {rec.get('sha256')}, "
                f"but its published size and sha256 are {size} bytes, {sha}"
            )
    for file, spec in by_hand:
        size, sha = spec.published
        expected[file.relative_to(root).as_posix()] = {"size": size, "sha256": sha, "source": spec.url}
    from tqdm import tqdm

    total = sum(int(e.get("size") or 0) for e in expected.values())
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc="verify",
        leave=False,
        disable=None if progress else True,
    ) as bar:
        for rel, entry in sorted(expected.items()):
            file = root / rel
            report.checked += 1
            if not file.is_file():
                report.problems.append(f"missing: {file} (from {entry.get('source')})")
                continue
            size = file.stat().st_size
            if entry.get("size") is None:
                report.notes.append(
                    f"unchecked: {file}: fetched by hand, and {entry.get('source')} has no published digest "
                    "(`data download` pins the one it has)"
                )
                continue
            if size != entry.get("size"):
                what = "truncated" if size < (entry.get("size") or 0) else "grew"
                report.problems.append(f"changed: {file}: {size} bytes, expected {entry.get('size')} ({what})")
                continue
            if not quick and entry.get("sha256") and (digest := _sha256(file)) != entry["sha256"]:
                report.problems.append(f"changed: {file}: sha256 {digest}, expected {entry['sha256']} (corrupted)")
            bar.update(size)
    return report
