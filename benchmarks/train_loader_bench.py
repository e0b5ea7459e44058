"""Training-input benchmark: the training path itself (HybridLoader + DetCLIPv2Collator) vs plain PIL + torchvision.

    python benchmarks/train_loader_bench.py [--full]

1. Image-text at 320² from 1600×1200 JPEGs in an img2dataset webdataset stream: the trainer's
   loader (whole shards per worker, JPEG draft decoding, keep-ratio resize, normalise, pad to
   320², plus the caption's noun phrases) vs webdataset + full PIL decode + torchvision doing the
   same resize / normalise / pad. The captions' spaCy noun chunks come from the shards' sidecars
   (``detclip-bench data parse-captions``, run once, timed), or are parsed in the workers: one
   ``nlp.pipe`` per block of records read ahead (the fallback), or per micro-batch (before
   sidecars). Also the training path with draft decoding switched off.
2. Detection at 1333×800 from an O365 json: the trainer's loader (compact index, resize,
   normalise, pad, box scaling, 150 sampled concepts) vs json + PIL + torchvision.
3. The same stream read by 1 and by 2 simulated ranks (``rank=r, world_size=2``, no process
   group): the bytes of the shards each rank opens in one epoch, and its samples/s.

Every pipeline runs with 2 DataLoader workers (the machine has 2 cores); rates are the best of
interleaved rounds after a warm-up. Writes benchmarks/results/train_loader_bench.{json,md}
(``--smoke``: tiny sizes, prints the tables, writes nothing).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import itertools
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path

import loader_bench  # the sibling benchmark (scripts in benchmarks/ run with their own folder on sys.path)
import numpy as np
import orjson
import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset
from torchvision.transforms import v2 as T

from detclip_bench.datasets import open_dataset
from detclip_bench.datasets.noun_chunks import DEFAULT_SPACY_MODEL, load_spacy, sidecar_path, write_sidecar
from detclip_bench.datasets.sharding import consumer_plan
from detclip_bench.datasets.webdataset_tars import Img2DatasetTars
from detclip_bench.io import atomic_write_json, atomic_write_text
from detclip_bench.schema import DataKind
from reference_model.detclipv2 import batching
from reference_model.detclipv2.batching import IMAGENET_MEAN, IMAGENET_STD
from reference_model.detclipv2.noun_phrases import NounPhraseExtractor
from reference_model.train.config import DataSourceConfig
from reference_model.train.loader import DetCLIPv2Collator, HybridLoader
from reference_model.train.noun_chunks import PARSE_BLOCK
from reference_model.train.sampler import HybridSampler

RESULTS = Path(__file__).parent / "results"
WORKERS = 2
TXT_BATCH, DET_BATCH = 16, 4
WORDS = ("red", "small", "wooden", "old", "bright", "dog", "table", "car", "house", "tree", "beach", "street", "cup")


def _jpeg(w: int, h: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (h // 16, w // 16, 3), dtype=np.uint8)  # smooth-ish content, realistic file size
    buf = io.BytesIO()
    Image.fromarray(small).resize((w, h), Image.BILINEAR).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _caption(i: int) -> str:
    w = [WORDS[(i * k + k) % len(WORDS)] for k in (1, 3, 5, 7)]
    return f"a {w[0]} {w[1]} next to the {w[2]} {w[3]} in the photo {i}"


def write_wds(folder: Path, n_images: int, size: tuple[int, int], n_shards: int) -> list[Path]:
    folder.mkdir(parents=True)
    jpgs = [_jpeg(*size, s) for s in range(16)]
    per_shard = n_images // n_shards
    for s in range(n_shards):
        with tarfile.open(folder / f"{s:05d}.tar", "w") as tar:
            for i in range(per_shard):
                key = f"{s:05d}{i:04d}"
                meta = json.dumps({"key": key, "width": size[0], "height": size[1], "status": "success"}).encode()
                for ext, data in (
                    ("jpg", jpgs[(s + i) % 16]),
                    ("txt", _caption(s * per_shard + i).encode()),
                    ("json", meta),
                ):
                    ti = tarfile.TarInfo(f"{key}.{ext}")
                    ti.size = len(data)
                    tar.addfile(ti, io.BytesIO(data))
        (folder / f"{s:05d}_stats.json").write_text(json.dumps({"count": per_shard, "successes": per_shard}))
    return sorted(folder.glob("*.tar"))


def write_o365(root: Path, n_images: int) -> Path:
    images, anns = [], []
    for k in range(1, n_images + 1):
        rel = f"patch{k % 4}/objects365_v2_{k:08d}.jpg"
        (root / "train" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "train" / rel).write_bytes(_jpeg(1333, 800, k))
        images.append({"id": k, "file_name": f"images/v2/{rel}", "width": 1333, "height": 800})
        anns += [
            {
                "id": k * 100 + j,
                "image_id": k,
                "category_id": 1 + j % 5,
                "bbox": [10 + 20 * j, 20, 100, 80],
                "iscrowd": 0,
                "isfake": 0,
                "isreflected": 0,
            }
            for j in range(10)
        ]
    ann = root / "annotations" / "zhiyuan_objv2_train.json"
    ann.parent.mkdir(parents=True)
    ann.write_bytes(
        orjson.dumps(
            {
                "images": images,
                "annotations": anns,
                "categories": [{"id": i, "name": f"object {i}"} for i in range(1, 6)],
            }
        )
    )
    return ann


# ---- the plain baselines -------------------------------------------------------------------
NORM = T.Compose([T.ToDtype(torch.float32, scale=True), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
TXT_TF = T.Compose([T.ToImage(), T.Resize(size=None, max_size=320, antialias=True), NORM])
DET_TF = T.Compose([T.ToImage(), T.Resize(800, max_size=1333, antialias=True), NORM])


def _pad_stack(images: list[torch.Tensor], min_hw=(0, 0), divisor: int = 32) -> torch.Tensor:
    h = -(-max(min_hw[0], *(t.shape[1] for t in images)) // divisor) * divisor
    w = -(-max(min_hw[1], *(t.shape[2] for t in images)) // divisor) * divisor
    out = torch.zeros(len(images), 3, h, w)
    for i, t in enumerate(images):
        out[i, :, : t.shape[1], : t.shape[2]] = t
    return out


def plain_txt_collate(batch):
    return _pad_stack([img for img, _ in batch], (320, 320)), [cap for _, cap in batch]


def plain_det_collate(batch):
    return _pad_stack([img for img, _ in batch]), [boxes for _, boxes in batch]


class PlainWebdataset(IterableDataset):
    """webdataset tar reading (shards split over workers), full PIL decode, torchvision transforms."""

    def __init__(self, shards: list[str]) -> None:
        self.shards = shards

    def __iter__(self):
        import webdataset as wds

        info = torch.utils.data.get_worker_info()
        mine = self.shards[info.id :: info.num_workers] if info else self.shards
        for rec in wds.DataPipeline(wds.SimpleShardList(mine), wds.tarfile_to_samples()):
            yield TXT_TF(Image.open(io.BytesIO(rec["jpg"])).convert("RGB")), rec["txt"].decode()


class PlainCocoDetection(loader_bench.PlainCocoDetection):
    """loader_bench's baseline (the whole json as dicts, PIL.open), with this benchmark's transform;
    boxes scaled to the resized image."""

    def __getitem__(self, i):
        im = self.images[i]
        img = Image.open(self.root / "/".join(im["file_name"].split("/")[-2:])).convert("RGB")
        x = DET_TF(img)
        scale = x.shape[2] / img.width
        boxes = (
            torch.tensor(
                [[b[0], b[1], b[0] + b[2], b[1] + b[3]] for b in (a["bbox"] for a in self.by_image.get(im["id"], []))]
            )
            * scale
        )
        return x, boxes


def _plain_rate(dataset, collate, batch: int, n_expected: int) -> float:
    loader = DataLoader(dataset, batch_size=batch, num_workers=WORKERS, collate_fn=collate)
    start = time.perf_counter()
    n = sum(len(b[1]) for b in loader)
    elapsed = time.perf_counter() - start
    assert n == n_expected, (n, n_expected)
    return n / elapsed


# ---- the training path ---------------------------------------------------------------------
class OpenLog(Img2DatasetTars):
    """Appends ``<pid> <shard>`` to ``log`` whenever a shard is opened (from worker processes too)."""

    def __init__(self, path, log: Path) -> None:
        super().__init__(path)
        self.log = str(log)

    def iter_shard(self, shard, part=(0, 1)):
        with open(self.log, "a") as fh:
            fh.write(f"{os.getpid()} {shard}\n")
        return super().iter_shard(shard, part)


def _train_rate(
    dataset, source: DataSourceConfig, n_records: int, rank: int = 0, world: int = 1, collate=None
) -> float:
    """Samples/s of this rank over one epoch of the trainer's HybridLoader (DetCLIPv2Collator unless ``collate``)."""
    sampler = HybridSampler([n_records], [source.batch_size], seed=0)
    collate = collate or DetCLIPv2Collator()
    loader = HybridLoader(
        [dataset], [source], sampler, collate=collate, rank=rank, world_size=world, num_workers=WORKERS
    )
    it = iter(loader)
    start = time.perf_counter()
    n = 0
    for batch in itertools.islice(it, len(sampler)):
        n += sum(len(m) for m in batch.micro)
        assert (
            all(m.images.shape[2:] == (source.size[1], source.size[0]) for m in batch.micro)
            or source.kind is DataKind.DETECTION
        )
    elapsed = time.perf_counter() - start
    it.close()
    assert n == n_records // world, (n, n_records, world)
    return n / elapsed


def _cpu_ms(fn, n: int, rounds: int = 2) -> float:
    """CPU milliseconds per sample of ``fn`` run in this process (no workers, no IPC): least of ``rounds``."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return round(best / n * 1000, 2)


def _train_cpu(dataset, source: DataSourceConfig, n_records: int, collate) -> None:
    sampler = HybridSampler([n_records], [source.batch_size], seed=0)
    loader = HybridLoader([dataset], [source], sampler, collate=collate, num_workers=0)
    it = iter(loader)
    assert sum(sum(len(m) for m in b.micro) for b in itertools.islice(it, len(sampler))) == n_records
    it.close()


def _chunks(iterable, n: int):
    it = iter(iterable)
    while chunk := list(itertools.islice(it, n)):
        yield chunk


class HeuristicPhrases(DetCLIPv2Collator):
    """The trainer's collator with the stop-word noun-phrase heuristic instead of spaCy."""

    def noun_phrases(self):
        return NounPhraseExtractor("")


class MicroBatchParsing(DetCLIPv2Collator):
    """The trainer's collator as before sidecars: nothing parsed ahead, one spaCy pass per micro-batch."""

    prepare_records = None


class PerCaptionParsing(MicroBatchParsing):
    """The trainer's collator parsing each caption alone (``nlp(caption)``), the cost batching saves."""

    def noun_phrases(self):
        return _Alone(super().noun_phrases())


@dataclasses.dataclass
class _Alone:
    extractor: NounPhraseExtractor

    def extract(self, caption: str) -> list[str]:
        return self.extractor.extract(caption)


def write_sidecars(shards_folder: Path, out: Path) -> float:
    """What ``detclip-bench data parse-captions FOLDER --out OUT`` runs, once per dataset; CPU ms per caption."""
    ds = open_dataset(shards_folder, "img2dataset-wds")
    nlp = load_spacy(DEFAULT_SPACY_MODEL)
    start = time.process_time()
    n = sum(write_sidecar(s, ds.iter_shard(s), nlp, sidecar_path(s, out)).records for s in ds.shards())
    return round((time.process_time() - start) / n * 1000, 2)


def _no_draft(sample, size, draft):
    return _full_load(sample, size, False)


_full_load = batching.load_for_resize


def _best(runs: dict, rounds: int) -> dict:
    """Best of ``rounds`` interleaved runs per pipeline after one warm-up each."""
    for fn in runs.values():
        fn()
    best = dict.fromkeys(runs, 0.0)
    for _ in range(rounds):
        for name, fn in runs.items():
            best[name] = max(best[name], fn())
    return {k: round(v, 2) for k, v in best.items()}


def bench_image_text(tmp: Path, n_images: int, rounds: int) -> dict:
    shards = write_wds(tmp / "wds_1600x1200", n_images, (1600, 1200), n_shards=8)
    parse_once = write_sidecars(shards[0].parent, tmp / "noun_chunks")
    # no sidecar beside the shards: parsed in the workers; src reads the sidecars from their own folder
    parsed = DataSourceConfig("cc", str(tmp), "img2dataset-wds", DataKind.IMAGE_TEXT, TXT_BATCH, (320, 320), flip=False)
    src = dataclasses.replace(parsed, noun_chunks=str(tmp / "noun_chunks"))
    ds = open_dataset(shards[0].parent, "img2dataset-wds")

    def without_draft():
        batching.load_for_resize = _no_draft  # the workers fork after this: they see it
        try:
            return _train_rate(ds, src, n_images)
        finally:
            batching.load_for_resize = _full_load

    rates = _best(
        {
            "plain_pil_torchvision": lambda: _plain_rate(
                PlainWebdataset([str(s) for s in shards]), plain_txt_collate, TXT_BATCH, n_images
            ),
            "training_path_sidecars": lambda: _train_rate(ds, src, n_images),
            "training_path_parsed_in_workers": lambda: _train_rate(ds, parsed, n_images),
            "training_path_parsed_per_micro_batch": lambda: _train_rate(
                ds, parsed, n_images, collate=MicroBatchParsing()
            ),
            "training_path_without_draft": without_draft,
        },
        rounds,
    )
    plain = PlainWebdataset([str(s) for s in shards])
    cpu = {
        "plain_pil_torchvision": _cpu_ms(lambda: [plain_txt_collate(b) for b in _chunks(plain, TXT_BATCH)], n_images),
        "training_path_sidecars": _cpu_ms(lambda: _train_cpu(ds, src, n_images, DetCLIPv2Collator()), n_images),
        "training_path_parsed_in_workers": _cpu_ms(
            lambda: _train_cpu(ds, parsed, n_images, DetCLIPv2Collator()), n_images
        ),
        "training_path_parsed_per_micro_batch": _cpu_ms(
            lambda: _train_cpu(ds, parsed, n_images, MicroBatchParsing()), n_images
        ),
        "training_path_parsed_per_caption": _cpu_ms(
            lambda: _train_cpu(ds, parsed, n_images, PerCaptionParsing()), n_images
        ),
        "training_path_heuristic_phrases": _cpu_ms(lambda: _train_cpu(ds, src, n_images, HeuristicPhrases()), n_images),
        "parse_captions_once_per_caption": parse_once,
    }
    return {**rates, "cpu_ms_per_sample": cpu}


def bench_detection(tmp: Path, n_images: int, rounds: int) -> dict:
    ann = write_o365(tmp / "o365", n_images)
    src = DataSourceConfig(
        "o365", str(ann), "o365", DataKind.DETECTION, DET_BATCH, (1333, 800), flip=True, concepts_per_image=150
    )
    ds = open_dataset(ann, "o365")
    plain = PlainCocoDetection(ann, tmp / "o365" / "train")
    return _best(
        {
            "plain_pil_torchvision": lambda: _plain_rate(plain, plain_det_collate, DET_BATCH, n_images),
            "training_path": lambda: _train_rate(ds, src, n_images),
        },
        rounds,
    )


def bench_ranks(tmp: Path, n_images: int) -> list[dict]:
    folder = tmp / "wds_ranks"
    shards = write_wds(folder, n_images, (1600, 1200), n_shards=8)
    total = sum(s.stat().st_size for s in shards)
    src = DataSourceConfig("cc", str(folder), "img2dataset-wds", DataKind.IMAGE_TEXT, TXT_BATCH, (320, 320), flip=False)
    rows = []
    for world in (1, 2):
        for rank in range(world):
            log = tmp / f"opened.{world}.{rank}.log"
            rate = _train_rate(OpenLog(folder, log), src, n_images, rank, world)
            # each worker serves one reader per epoch and opens its shards in order; workers prefetch into
            # the next epoch, so epoch 0 is each worker's first len(reader's plan) opens
            per_reader = len(consumer_plan(len(shards), 0, world * WORKERS))
            opened: dict[str, list[str]] = {}
            for line in log.read_text().splitlines():
                pid, shard = line.split(" ", 1)
                opened.setdefault(pid, []).append(shard)
            epoch0 = [s for seq in opened.values() for s in seq[:per_reader]]
            assert len(set(epoch0)) == len(epoch0) == len(shards) // world
            read = sum(Path(s).stat().st_size for s in epoch0)
            rows.append(
                {
                    "world_size": world,
                    "rank": rank,
                    "shards_opened": len(epoch0),
                    "bytes_read": read,
                    "fraction_of_bytes": round(read / total, 3),
                    "samples": n_images // world,
                    "samples_per_s": round(rate, 2),
                }
            )
    return rows


TXT_ROWS = (  # (key, what the row measures) of the image-text variants, best set-up first
    ("training_path_sidecars", "captions' noun chunks from sidecars (`data parse-captions`, run once)"),
    ("training_path_parsed_in_workers", f"no sidecar: one spaCy pass per {PARSE_BLOCK} records read ahead"),
    ("training_path_parsed_per_micro_batch", f"no sidecar, one spaCy pass per micro-batch of {TXT_BATCH} (before)"),
)
CPU_ROWS = (
    ("plain_pil_torchvision", "plain PIL + torchvision"),
    *((key, f"training path, {what}") for key, what in TXT_ROWS),
    ("training_path_parsed_per_caption", "training path, no sidecar, each caption parsed alone (`nlp(caption)`)"),
    ("training_path_heuristic_phrases", "training path, heuristic phrases (no spaCy: the floor)"),
    ("parse_captions_once_per_caption", "`data parse-captions`, once per dataset, per caption"),
)


def markdown(txt: dict, det: dict, ranks: list[dict], sizes: dict) -> list[str]:
    cpu = txt["cpu_ms_per_sample"]
    plain = txt["plain_pil_torchvision"]
    return [
        "# Training input benchmark",
        "",
        f"HybridLoader + DetCLIPv2Collator (the trainer's own input path) vs plain PIL + torchvision doing the same "
        f"resize / normalise / pad; {WORKERS} DataLoader workers on {os.cpu_count()} CPUs, torch {torch.__version__}; "
        f"sizes: {sizes}.",
        "",
        "| samples/s | plain PIL + torchvision | training path | speed-up |",
        "|---|---|---|---|",
        *(
            f"| image-text 320² from 1600×1200 JPEGs (batch {TXT_BATCH}), {what} | {plain} | {txt[key]} | "
            f"{round(txt[key] / plain, 2)}× |"
            for key, what in TXT_ROWS
        ),
        f"| image-text, sidecars, draft decoding off | {plain} | {txt['training_path_without_draft']} | "
        f"{round(txt['training_path_without_draft'] / plain, 2)}× |",
        f"| detection 1333×800 (batch {DET_BATCH}) | {det['plain_pil_torchvision']} | {det['training_path']} | "
        f"{det['speedup']}× |",
        "",
        "The plain pipeline only decodes and transforms; the training path also finds every caption's noun "
        "phrases. Rates are wall-clock, best of interleaved rounds; on a shared machine they move with its load. "
        "CPU time per sample in one process (no workers, no IPC) is steadier:",
        "",
        "| image-text 320² from 1600×1200, one process | CPU ms/sample |",
        "|---|---|",
        *(f"| {what} | {cpu[key]} |" for key, what in CPU_ROWS),
        "",
        "Sharded stream (8 shards of 1600×1200 JPEGs, no sidecars), one epoch per simulated rank, 2 workers each:",
        "",
        "| world size | rank | shards opened | bytes read | fraction of all bytes | samples | samples/s |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {r['world_size']} | {r['rank']} | {r['shards_opened']} | {r['bytes_read']:,} | {r['fraction_of_bytes']} "
            f"| {r['samples']} | {r['samples_per_s']} |"
            for r in ranks
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="larger sizes (the default --quick takes about 3 minutes)")
    ap.add_argument("--quick", action="store_true", help="the default")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one round: checks the script, writes nothing")
    args = ap.parse_args()
    if args.full:
        sizes = {"txt_images": 768, "det_images": 96, "rank_images": 768, "rounds": 3}
    elif args.smoke:
        sizes = {"txt_images": 64, "det_images": 8, "rank_images": 64, "rounds": 1}
    else:
        sizes = {"txt_images": 256, "det_images": 32, "rank_images": 256, "rounds": 2}
    torch.set_num_threads(1)
    NounPhraseExtractor().extract("a warm-up caption")  # load spaCy once; the workers fork with it loaded
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        txt = bench_image_text(tmp, sizes["txt_images"], sizes["rounds"])
        det = bench_detection(tmp, sizes["det_images"], sizes["rounds"])
        ranks = bench_ranks(tmp, sizes["rank_images"])
    plain = txt["plain_pil_torchvision"]
    txt["speedup"] = round(txt["training_path_sidecars"] / plain, 2)
    txt["speedup_parsed_in_workers"] = round(txt["training_path_parsed_in_workers"] / plain, 2)
    det["speedup"] = round(det["training_path"] / det["plain_pil_torchvision"], 2)
    md = markdown(txt, det, ranks, sizes)
    print("\n".join(md))
    if args.smoke:
        return
    result = {
        "machine": {"cpus": os.cpu_count(), "workers": WORKERS, "torch": torch.__version__},
        "sizes": sizes,
        "image_text_320_from_1600x1200_samples_per_s": txt,
        "detection_1333x800_samples_per_s": det,
        "stream_ranks": ranks,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS / "train_loader_bench.json", result)
    atomic_write_text(RESULTS / "train_loader_bench.md", "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
