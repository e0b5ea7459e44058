"""Real camera JPEGs of several shapes and chroma layouts through our decoding, draft decoding and `data validate`.

Sources: Ultralytics' ``assets/bus.jpg`` (810×1080, portrait) and ``zidane.jpg`` (1280×720), imgaug's
``quokka.jpg`` (960×643) — 4:2:0 chroma — and darknet's sample images from the Debian package ``darknet``
(odd sizes such as 773×512; 4:4:0 and 4:4:4 chroma), extracted, not installed (see artefacts.py).
"""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from detclip_bench.cli.main import main
from detclip_bench.datasets import open_dataset
from detclip_bench.schema import ImageRef
from reference_model.detclipv2.batching import load_for_resize, resize_scale
from tests.reality.artefacts import darknet_data, package_file

# (source, file) → (width, height) as stored
KNOWN = {
    ("ultralytics", "bus.jpg"): (810, 1080),
    ("ultralytics", "zidane.jpg"): (1280, 720),
    ("imgaug", "quokka.jpg"): (960, 643),
    ("darknet", "dog.jpg"): (768, 576),
    ("darknet", "eagle.jpg"): (773, 512),
    ("darknet", "giraffe.jpg"): (500, 500),
    ("darknet", "horses.jpg"): (773, 512),
    ("darknet", "kite.jpg"): (1352, 900),
    ("darknet", "person.jpg"): (640, 424),
    ("darknet", "scream.jpg"): (352, 448),
}
SOURCES = ("ultralytics", "imgaug", "darknet")


def locate(source: str, name: str):
    if source == "ultralytics":
        return package_file("ultralytics", f"assets/{name}")
    if source == "imgaug":
        return package_file("imgaug", name)
    return darknet_data() / name


def _ids(key):
    return "/".join(key)


@pytest.mark.parametrize("key", list(KNOWN), ids=_ids)
def test_decodes_at_the_stored_size(key):
    path = locate(*key)
    img = ImageRef(path=str(path)).open()
    assert img.size == KNOWN[key] and img.mode == "RGB"
    assert img.size == Image.open(path).size  # the header agrees with the pixels


def _requests(w: int, h: int) -> list[tuple[int, int]]:
    """Targets around every DCT scale (1/8, 1/4, 1/2, 1) and its neighbours, both aspect ratios, and oversize."""
    out = set()
    for num, den in ((1, 9), (1, 8), (1, 5), (1, 4), (1, 3), (1, 2), (2, 3), (1, 1), (3, 2)):
        for dw, dh in ((0, 0), (1, 0), (0, 1), (-1, 0), (0, -1)):
            out.add((max(1, -(-w * num // den) + dw), max(1, -(-h * num // den) + dh)))
    out |= {(w // 8, h), (w, h // 8), (64, 64), (1, 1)}
    return sorted(out)


@pytest.mark.parametrize("key", list(KNOWN), ids=_ids)
def test_draft_decoding_never_returns_less_than_asked(key):
    path = locate(*key)
    w, h = KNOWN[key]
    full = ImageRef(path=str(path)).open()
    reduced = 0
    for rw, rh in _requests(w, h):
        img = ImageRef(path=str(path)).open(draft=(rw, rh))
        assert img.width >= min(rw, w) and img.height >= min(rh, h), (rw, rh, img.size)
        # only whole DCT scales: the size is the stored one divided by 1, 2, 4 or 8, rounded up
        assert img.size in {(-(-w // s), -(-h // s)) for s in (1, 2, 4, 8)}, (rw, rh, img.size)
        reduced += img.size != (w, h)
        if img.size == (w, h):
            assert img.tobytes() == full.tobytes()  # no draft taken: bit-identical to the plain decode
    # the draft path is live: a target of an eighth or less decodes at an eighth
    assert ImageRef(path=str(path)).open(draft=(w // 8, h // 8)).size == (-(-w // 8), -(-h // 8))
    assert reduced > 0


@pytest.fixture(scope="module")
def one_image_coco(tmp_path_factory):
    """A COCO json naming one real image in its own folder (image_root = that folder), made once per image."""
    made: dict = {}

    def make(key):
        if key not in made:
            path, (w, h) = locate(*key), KNOWN[key]
            gt = {
                "images": [{"id": 1, "file_name": path.name, "width": w, "height": h}],
                "annotations": [
                    {
                        "id": 1,
                        "image_id": 1,
                        "category_id": 1,
                        "bbox": [0, 0, w / 2, h / 2],
                        "area": w * h / 4,
                        "iscrowd": 0,
                    }
                ],
                "categories": [{"id": 1, "name": "thing"}],
            }
            made[key] = tmp_path_factory.mktemp("coco") / "gt.json"
            made[key].write_text(json.dumps(gt))
        return open_dataset(made[key], "coco", image_root=str(locate(*key).parent))

    return make


@pytest.mark.parametrize("key", list(KNOWN), ids=_ids)
@pytest.mark.parametrize("size", [(1333, 800), (320, 320), (224, 224), (100, 60)])
def test_keep_ratio_draft_is_never_below_the_resize_target(one_image_coco, key, size):
    """The training input path: a draft decode, resized keep-ratio, reaches the same target as the full decode."""
    w, h = KNOWN[key]
    img, stored = load_for_resize(one_image_coco(key)[0], size, draft=True)
    assert stored == (w, h)
    scale = resize_scale(w, h, size)
    target = (max(1, round(w * scale)), max(1, round(h * scale)))
    assert img.width >= min(target[0], w) and img.height >= min(target[1], h), (img.size, target)
    assert img.size != (w, h) or scale > 0.45  # it did decode reduced where a DCT scale of 1/2 or less fits


@pytest.mark.parametrize("source", SOURCES)
def test_data_validate_on_a_coco_json_of_real_images(source, tmp_path, capsys):
    """`data validate` decodes every image (at draft size) and checks it against the json's width/height."""
    keys = [k for k in KNOWN if k[0] == source]
    images, anns = [], []
    for i, key in enumerate(keys, start=1):
        path = locate(*key)
        shutil.copyfile(path, tmp_path / path.name)
        w, h = KNOWN[key]
        images.append({"id": i, "file_name": path.name, "width": w, "height": h})
        anns.append(
            {
                "id": i,
                "image_id": i,
                "category_id": 1,
                "bbox": [w / 4, h / 4, w / 2, h / 2],
                "area": w * h / 4,
                "iscrowd": 0,
            }
        )
    gt = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    argv = ["data", "validate", str(tmp_path / "gt.json"), "--format", "coco", "--option", f"image_root={tmp_path}"]
    assert main(argv) == 0
    assert f"{len(keys)} records, ok" in capsys.readouterr().out
    # one image stated one pixel too narrow: must be named, although its 1/8 draft has the same size either way
    # (validation compares the JPEG header's size, not the draft's)
    gt["images"][0]["width"] -= 1
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "1 problem(s)" in out and images[0]["file_name"] in out
