"""Loaders for the on-disk formats DetCLIPv2's corpora and benchmarks ship in, behind one Sample schema.

One module per *format* (not per dataset name). ``DATASET_FORMATS`` maps a format name to the
class that opens it; :func:`open_dataset` opens a path (format given or auto-detected).

Registered format names (use these in a mini-world ``manifest.json`` ``"format"`` field):

=======================  ======================================================  =================
name                     ``path`` points at                                      kind
=======================  ======================================================  =================
``coco``                 a COCO detection json (images beside it or image_root)   detection
``o365``                 Objects365 v1/v2 json (``annotations/zhiyuan_objv2_*``)  detection
``lvis``                 LVIS v1 train/val json or MDETR's minival json           detection
``odinw``                a Roboflow COCO export json (raw or GLIP's w/o bg)       detection
``mdetr``                MDETR ``final_mixed_train*.json`` / ``final_flickr_*``   grounding
``odvg``                 ODVG jsonl (detection or grounding; label_map option)    detection/grounding
``cc-tsv``               CC3M (caption,url) or CC12M (url,caption) TSV            image_text (no pixels)
``img2dataset-wds``      img2dataset webdataset tars: a folder, one tar, a URL   image_text
``img2dataset-parquet``  a folder of img2dataset parquet shards (or one file)     image_text
``hf-webdataset``        a hub webdataset repo (pixparse layout): copy or URL    image_text
``imagenet-folder``      ILSVRC root with ``train/<wnid>/*.JPEG`` (``split=``)    classification
``imagenet-kaggle``      Kaggle root with ``LOC_synset_mapping.txt``              classification
``imagenet-hf-parquet``  a folder of HF ``imagenet-1k`` parquet shards            classification
=======================  ======================================================  =================

Options that name folders (``image_root``, ``vg_root``, ``coco_root``, ``label_map``,
``synset_mapping``) are relative to the manifest's folder when they come from a manifest. The two
webdataset formats also read fsspec URLs (``s3://``, ``gs://``, ``http(s)://``, ``hf://``, brace patterns;
options ``storage_options``, ``retries``, ``backoff_s``): docs/data.md §3.4.
"""

from __future__ import annotations

from detclip_bench.errors import DataError
from detclip_bench.registry import Registry

__all__ = ["DATASET_FORMATS", "detect_format", "open_dataset"]

_P = "detclip_bench.datasets"

DATASET_FORMATS: Registry = Registry("dataset format")
DATASET_FORMATS.add("coco", f"{_P}.coco:CocoDetection")
DATASET_FORMATS.add("o365", f"{_P}.coco:Objects365")
DATASET_FORMATS.add("lvis", f"{_P}.lvis:LvisV1")
DATASET_FORMATS.add("odinw", f"{_P}.odinw:RoboflowCoco")
DATASET_FORMATS.add("mdetr", f"{_P}.mdetr:MdetrGrounding")
DATASET_FORMATS.add("odvg", f"{_P}.odvg:OdvgJsonl")
DATASET_FORMATS.add("cc-tsv", f"{_P}.cc_tsv:ConceptualCaptionsTsv")
DATASET_FORMATS.add("img2dataset-wds", f"{_P}.webdataset_tars:Img2DatasetTars")
DATASET_FORMATS.add("img2dataset-parquet", f"{_P}.cc_parquet:Img2DatasetParquet")
DATASET_FORMATS.add("hf-webdataset", f"{_P}.webdataset_tars:HubWebDataset")
DATASET_FORMATS.add("imagenet-folder", f"{_P}.imagenet:ImageNetFolder")
DATASET_FORMATS.add("imagenet-kaggle", f"{_P}.imagenet:ImageNetKaggle")
DATASET_FORMATS.add("imagenet-hf-parquet", f"{_P}.imagenet:ImageNetHfParquet")


def open_dataset(path, format: str | None = None, **options):
    """Open ``path`` with the named format's loader (auto-detected when ``format`` is None).

    An unknown format or option is a DataError naming the path and listing what is valid (it
    usually comes from a manifest or ``--option``), not a KeyError/TypeError traceback.
    """
    import inspect

    name = format or detect_format(path)
    try:
        loader = DATASET_FORMATS.get(name)
    except KeyError as exc:
        raise DataError(str(path), "-", str(exc.args[0])) from exc
    params = inspect.signature(loader).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        valid = sorted(k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY)
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise DataError(
                str(path),
                "-",
                f"format {name!r} has no option {', '.join(map(repr, unknown))}; "
                f"its options: {', '.join(valid) or 'none'}",
            )
    return loader(path, **options)


def detect_format(path) -> str:
    """The registered format name that ``path`` is in; DataError asking for --format if unclear."""
    # deferred: import cycle with detclip_bench.datasets.detect (it reads DATASET_FORMATS from this package)
    from detclip_bench.datasets.detect import detect_format as _detect

    return _detect(path)
