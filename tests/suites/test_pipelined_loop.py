"""The pipelined prediction loop: DataLoader workers read (and prepare) images ahead of the model.

The detector must see the same inputs in the same order whatever the number of workers, an unreadable image
must be skipped or raised exactly as in-process, and a detector without the ``input_transform`` /
``predict_inputs`` pair must still get PIL images.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from detclip_bench.adapters.base import Prediction
from detclip_bench.errors import DataError
from detclip_bench.predict.loop import MIN_IMAGES_FOR_WORKERS, auto_workers, predict_arrays
from detclip_bench.schema import ImageRef


class _PixelDetector:
    """One detection per image whose score is a hash of the pixels it was given (image or prepared tensor), so
    any change in what reaches the detector changes the output."""

    name = "pixels"

    def __init__(self, prepared: bool) -> None:
        self.prepared = prepared
        self.calls: list[int] = []

    def identity(self) -> str:
        return "pixels"

    def _one(self, pixels: np.ndarray, width: int, height: int) -> Prediction:
        score = float(np.frombuffer(pixels.tobytes(), np.uint8).astype(np.int64).sum() % 997) / 997
        return Prediction(boxes=[[0, 0, width, height]], scores=[score], labels=[0])

    def predict(self, images, prompts, *, max_dets_per_image=100, score_thresh=None):
        self.calls.append(len(images))
        return [self._one(np.asarray(im), *im.size) for im in images]

    # the optional pair, offered only when ``prepared``
    def __getattr__(self, name):
        if name in ("input_transform", "predict_inputs") and self.__dict__.get("prepared"):
            return getattr(self, f"_{name}")
        raise AttributeError(name)

    def _input_transform(self):
        return _Halve()

    def _predict_inputs(self, inputs, prompts, *, max_dets_per_image=100, score_thresh=None):
        self.calls.append(len(inputs))
        return [self._one(pixels, pixels.shape[1], pixels.shape[0]) for pixels, _ in inputs]  # the halved size


class _Halve:
    """A picklable transform: the image at half size as an array, and its original size."""

    def __call__(self, image):
        return np.asarray(image.resize((image.width // 2, image.height // 2))), image.size


def _images(folder, count: int, broken: set[int] = frozenset()) -> list:
    rng = np.random.default_rng(0)
    paths = []
    for k in range(count):
        path = folder / f"{k:03d}.jpg"
        if k in broken:
            path.write_bytes(b"not a jpeg")
        else:
            size = (48 + 8 * (k % 3), 40 + 8 * (k % 2))
            Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _run(detector, paths, workers: int, **kwargs):
    def load(k: int):
        return k + 1, ImageRef(path=str(paths[k])).open(record=f"image {k + 1}"), str(paths[k])

    return predict_arrays(
        detector, len(paths), load, ["thing"], [7], max_dets=10, score_thresh=None, batch_size=3, workers=workers,
        progress=False, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("prepared", [False, True])
def test_workers_give_the_in_process_predictions(tmp_path, prepared):
    paths = _images(tmp_path, 11)
    runs = {w: _run(_PixelDetector(prepared), paths, w) for w in (0, 1, 2)}
    ref = runs[0]
    assert len(ref) == 11 and len(set(ref.scores.tolist())) > 5  # the hash tells the images apart
    for arrays in runs.values():
        for field in ("image_ids", "boxes", "scores", "category_ids"):
            np.testing.assert_array_equal(getattr(arrays, field), getattr(ref, field))
    # the prepared path really ran the transform: boxes are the halved size's
    widths = ref.boxes[:, 2]
    assert (widths < 48).all() if prepared else (widths >= 48).all()


def test_unreadable_images_are_skipped_in_order_with_workers(tmp_path):
    paths = _images(tmp_path, 9, broken={2, 7})
    skipped: list[tuple[int, str]] = []
    seen: list[int] = []
    arrays = _run(
        _PixelDetector(True),
        paths,
        2,
        on_unreadable=lambda k, exc: skipped.append((k, exc.path)),
        on_image=lambda k, image, *_: seen.append((k, image.size)),
    )
    assert [k for k, _ in skipped] == [2, 7]
    assert skipped[0][1].endswith("002.jpg")
    assert [k for k, _ in seen] == [0, 1, 3, 4, 5, 6, 8]
    assert all(size[0] >= 48 for _, size in seen)  # on_image gets the image itself, not the prepared input
    assert sorted(set(arrays.image_ids.tolist())) == [1, 2, 4, 5, 6, 7, 9]


def test_an_unreadable_image_raises_its_data_error_from_a_worker(tmp_path):
    paths = _images(tmp_path, 5, broken={3})
    with pytest.raises(DataError) as info:
        _run(_PixelDetector(False), paths, 2)
    assert info.value.path.endswith("003.jpg") and info.value.record == "image 4"


def test_auto_workers_start_only_for_a_model_on_cuda(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert auto_workers(MIN_IMAGES_FOR_WORKERS - 1, "cuda") == 0
    assert auto_workers(5000, "cuda:0") == 8
    assert auto_workers(5000, "cpu") == 0  # the forward already uses every core
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert auto_workers(5000, "cuda") == 1
