"""Tiny files in exactly the real on-disk formats (data.md §9), written into tmp dirs by the tests."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from PIL import Image


def jpeg_bytes(w: int = 48, h: int = 32, color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="JPEG")
    return buf.getvalue()


def write_jpeg(path: Path, w: int = 48, h: int = 32, color=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(w, h, color))
    return path


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


O365_CATEGORIES = [
    {"id": 1, "name": "Person"},
    {"id": 2, "name": "Cabinet/shelf"},
    {"id": 3, "name": "Table Tennis "},
    {"id": 4, "name": "Moniter/TV"},
    {"id": 5, "name": "Tape Measur/ Ruler"},
]


def o365_v2(root: Path, *, n_images: int = 4, missing: tuple[str, ...] = ()) -> Path:
    """mmdet layout: annotations/zhiyuan_objv2_train.json + train/patchN/<basename>.

    Image k lives in patch{k % 2}; every image has two boxes; file names as in v2 json
    (``images/v1/patchN/...``). Names in ``missing`` get no file on disk.
    """
    images, anns = [], []
    for k in range(1, n_images + 1):
        rel = f"patch{k % 2}/objects365_v1_{k:08d}.jpg"
        images.append({"id": k, "file_name": f"images/v1/{rel}", "height": 32, "width": 48, "license": 5, "url": ""})
        anns.append(
            {
                "id": 10 * k,
                "image_id": k,
                "category_id": 1,
                "bbox": [2.0, 3.0, 10.0, 12.0],
                "area": 120.0,
                "iscrowd": 0,
                "isfake": k % 2,
                "isreflected": 0,
            }
        )
        anns.append(
            {
                "id": 10 * k + 1,
                "image_id": k,
                "category_id": 1 + k % 5,
                "bbox": [20.5, 4.0, 8.0, 8.0],
                "area": 64.0,
                "iscrowd": 0,
                "isfake": 0,
                "isreflected": 1,
            }
        )
        if rel not in missing:
            write_jpeg(root / "train" / rel)
    return write_json(
        root / "annotations" / "zhiyuan_objv2_train.json",
        {"images": images, "annotations": anns, "categories": O365_CATEGORIES, "licenses": []},
    )


def lvis_v1(root: Path) -> Path:
    """lvis/lvis_v1_val.json with images under coco/{train2017,val2017} (no file_name, coco_url only)."""
    images = [
        {
            "id": 1,
            "coco_url": "http://images.cocodataset.org/val2017/000000000001.jpg",
            "height": 32,
            "width": 48,
            "neg_category_ids": [2],
            "not_exhaustive_category_ids": [],
            "license": 1,
            "flickr_url": "",
        },
        {
            "id": 2,
            "coco_url": "http://images.cocodataset.org/train2017/000000000002.jpg",
            "height": 32,
            "width": 48,
            "neg_category_ids": [],
            "not_exhaustive_category_ids": [1, 3],
            "license": 1,
            "flickr_url": "",
        },
    ]
    cats = [
        {
            "id": 1,
            "name": "bat_(animal)",
            "synset": "bat.n.01",
            "synonyms": ["bat_(animal)"],
            "def": "nocturnal mouselike mammal",
            "frequency": "r",
            "image_count": 1,
            "instance_count": 1,
        },
        {
            "id": 2,
            "name": "baseball_bat",
            "synset": "baseball_bat.n.01",
            "synonyms": ["baseball_bat"],
            "def": "an implement used in baseball",
            "frequency": "f",
            "image_count": 1,
            "instance_count": 2,
        },
        {
            "id": 3,
            "name": "aerosol_can",
            "synset": "aerosol.n.02",
            "synonyms": ["aerosol_can", "spray_can"],
            "def": "a dispenser that holds a substance under pressure",
            "frequency": "c",
            "image_count": 0,
            "instance_count": 0,
        },
    ]
    anns = [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "bbox": [1, 2, 10, 10],
            "area": 100.0,
            "segmentation": [[1, 2, 11, 2, 11, 12]],
        },
        {
            "id": 2,
            "image_id": 2,
            "category_id": 2,
            "bbox": [5, 5, 20, 10],
            "area": 200.0,
            "segmentation": [[5, 5, 25, 5, 25, 15]],
        },
        {
            "id": 3,
            "image_id": 2,
            "category_id": 2,
            "bbox": [0, 0, 4, 4],
            "area": 16.0,
            "segmentation": [[0, 0, 4, 0, 4, 4]],
        },
    ]
    write_jpeg(root / "coco" / "val2017" / "000000000001.jpg")
    write_jpeg(root / "coco" / "train2017" / "000000000002.jpg")
    return write_json(
        root / "lvis" / "lvis_v1_val.json",
        {"images": images, "annotations": anns, "categories": cats, "info": {}, "licenses": []},
    )


def roboflow_split(
    folder: Path, *, with_root: bool = True, name: str | None = None, n: int = 2, classes=("fish", "shark")
) -> Path:
    """A Roboflow COCO export split: images beside ``_annotations.coco.json`` (id-0 root category)."""
    cats = [{"id": i + 1, "name": c, "supercategory": "creatures"} for i, c in enumerate(classes)]
    if with_root:
        cats = [{"id": 0, "name": "creatures", "supercategory": "none"}, *cats]
    images, anns = [], []
    for k in range(n):
        fname = f"img_{k}_jpg.rf.abc{k}.jpg"
        write_jpeg(folder / fname)
        images.append({"id": k, "license": 1, "file_name": fname, "height": 32, "width": 48, "date_captured": ""})
        anns.append(
            {
                "id": k,
                "image_id": k,
                "category_id": 1 + k % len(classes),
                "bbox": [1, 1, 10, 10],
                "area": 100,
                "segmentation": [],
                "iscrowd": 0,
            }
        )
    default = "_annotations.coco.json" if with_root else "annotations_without_background.json"
    return write_json(
        folder / (name or default),
        {"info": {}, "licenses": [], "categories": cats, "images": images, "annotations": anns},
    )


def mdetr_mixed(root: Path) -> Path:
    """goldg/mdetr_annotations/final_mixed_train_no_coco.json + goldg/gqa/images (data_source vg)."""
    cap = "A man holds a red dog. the man is tall."
    images = [
        {
            "id": 0,
            "file_name": "2345.jpg",
            "height": 32,
            "width": 48,
            "caption": cap,
            "original_id": 2345,
            "tokens_negative": [[0, 5]],
            "data_source": "vg",
            "dataset_name": "mixed",
        },
        {
            "id": 1,
            "file_name": "2346.jpg",
            "height": 32,
            "width": 48,
            "caption": "a cat.",
            "original_id": 2346,
            "tokens_negative": [],
            "data_source": "vg",
            "dataset_name": "mixed",
        },
        {
            "id": 2,
            "file_name": "COCO_train2014_000000000009.jpg",
            "height": 32,
            "width": 48,
            "caption": "a bowl.",
            "original_id": 9,
            "tokens_negative": [],
            "data_source": "coco",
            "dataset_name": "mixed",
        },
    ]
    anns = [
        {
            "id": 0,
            "image_id": 0,
            "category_id": 3,
            "bbox": [1, 1, 10, 10],
            "area": 100,
            "iscrowd": 0,
            "tokens_positive": [[0, 5]],
        },  # "A man"
        {
            "id": 1,
            "image_id": 0,
            "category_id": 5,
            "bbox": [12, 2, 20, 20],
            "area": 400,
            "iscrowd": 0,
            "tokens_positive": [[14, 17], [18, 21]],
        },  # "red" + "dog"
        {
            "id": 2,
            "image_id": 0,
            "category_id": 3,
            "bbox": [1, 1, 11, 10],
            "area": 110,
            "iscrowd": 0,
            "tokens_positive": [[23, 30]],
        },  # "the man"
        {
            "id": 3,
            "image_id": 0,
            "category_id": 3,
            "bbox": [2, 2, 9, 9],
            "area": 81,
            "iscrowd": 0,
            "tokens_positive": [[0, 5]],
        },  # "A man" again
        {
            "id": 4,
            "image_id": 1,
            "category_id": 1,
            "bbox": [1, 1, 0, 10],
            "area": 0,
            "iscrowd": 0,
            "tokens_positive": [[2, 5]],
        },  # degenerate → image 1 has no valid box
        {
            "id": 5,
            "image_id": 2,
            "category_id": 1,
            "bbox": [3, 3, 10, 10],
            "area": 100,
            "iscrowd": 0,
            "tokens_positive": [[2, 6]],
        },
    ]
    write_jpeg(root / "gqa" / "images" / "2345.jpg")
    write_jpeg(root / "gqa" / "images" / "2346.jpg")
    write_jpeg(root / "coco" / "train2014" / "COCO_train2014_000000000009.jpg")
    return write_json(
        root / "mdetr_annotations" / "final_mixed_train_no_coco.json",
        {"info": [], "licenses": [], "images": images, "annotations": anns, "categories": []},
    )


def mdetr_flickr(root: Path) -> Path:
    images = [
        {
            "id": 0,
            "file_name": "1000.jpg",
            "height": 32,
            "width": 48,
            "caption": "A man holds a dog .",
            "dataset_name": "flickr",
            "tokens_negative": [[0, 19]],
            "sentence_id": 0,
            "original_img_id": 1000,
            "tokens_positive_eval": [[[0, 5]], [[14, 17]]],
        }
    ]
    anns = [
        {
            "id": 0,
            "image_id": 0,
            "category_id": 1,
            "bbox": [1, 1, 10, 10],
            "area": 100.0,
            "iscrowd": 0,
            "tokens_positive": [[0, 5]],
        },
        {
            "id": 1,
            "image_id": 0,
            "category_id": 1,
            "bbox": [20, 5, 10, 10],
            "area": 100.0,
            "iscrowd": 0,
            "tokens_positive": [[14, 17]],
        },
    ]
    write_jpeg(root / "flickr30k_images" / "1000.jpg")
    return write_json(
        root / "mdetr_annotations" / "final_flickr_separateGT_train.json",
        {
            "info": [],
            "licenses": [],
            "images": images,
            "annotations": anns,
            "categories": [{"supercategory": "object", "id": 1, "name": "object"}],
        },
    )


def wds_shard(path: Path, items: list[tuple[str, bytes | None, str]]) -> Path:
    """An img2dataset webdataset tar: <key>.jpg/.txt/.json per (key, jpeg or None, caption)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for key, img, caption in items:
            meta = {
                "url": f"https://x.example/{key}.jpg",
                "caption": caption,
                "key": key,
                "status": "success",
                "error_message": None,
                "width": 48,
                "height": 32,
                "original_width": 48,
                "original_height": 32,
                "exif": None,
                "sha256": "0" * 64,
            }
            members = [("txt", caption.encode()), ("json", json.dumps(meta).encode())]
            if img is not None:
                members.insert(0, ("jpg", img))
            for ext, data in members:
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path
