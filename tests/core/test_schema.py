import io

import numpy as np
import pytest
from PIL import Image

from detclip_bench import Concept, DataError, DataKind, ImageRef, Sample


def _jpeg_bytes(w=64, h=48, color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="JPEG")
    return buf.getvalue()


def test_detection_sample_roundtrip_and_box_concepts():
    cats = (Concept("person", "a human being", key="Person", category_id=1), Concept("dog", category_id=7))
    s = Sample(
        kind="detection",
        source="o365",
        record_id="12",
        image=ImageRef(data=_jpeg_bytes()),
        width=64,
        height=48,
        concepts=cats,
        boxes=[[1, 2, 10, 20], [5, 5, 30, 40]],
        labels=[1, 0],
    )
    assert s.kind is DataKind.DETECTION
    assert s.boxes.dtype == np.float32 and s.boxes.shape == (2, 4)
    assert [c.name for c in s.box_concepts] == ["dog", "person"]
    assert cats[0].prompt() == "person, a human being"
    assert cats[1].prompt() == "dog"
    assert s.load_image().size == (64, 48)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"boxes": [[0, 0, 1, 1]], "labels": []}, "1 boxes but 0 labels"),
        ({"boxes": [[0, 0, 1, 1]], "labels": [3]}, "label index out of range"),
        ({"boxes": [[0, 0, float("nan"), 1]], "labels": [0]}, "NaN or inf"),
    ],
)
def test_invalid_detection_samples_name_the_record(kwargs, message):
    with pytest.raises(DataError, match=message) as info:
        Sample(
            kind=DataKind.DETECTION,
            source="x",
            record_id="rec-7",
            image=ImageRef(path="img.jpg"),
            concepts=(Concept("a"),),
            **kwargs,
        )
    assert "img.jpg" in str(info.value) and "rec-7" in str(info.value)


def test_empty_caption_rejected_for_image_text():
    with pytest.raises(DataError, match="empty caption"):
        Sample(kind="image_text", source="cc3m", record_id="000000001", image=ImageRef(data=b""), caption="  ")


def test_classification_needs_exactly_one_concept():
    with pytest.raises(DataError, match="exactly one concept"):
        Sample(kind="classification", source="in1k", record_id="a", image=ImageRef(data=b""), caption="tench")


def test_corrupt_and_missing_images_raise_dataerror(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(_jpeg_bytes()[:40])
    with pytest.raises(DataError, match="corrupt or unreadable image") as info:
        ImageRef(path=str(bad)).open(record="42")
    assert str(bad) in str(info.value) and "record 42" in str(info.value)
    with pytest.raises(DataError, match="cannot read image"):
        ImageRef(path=str(tmp_path / "missing.jpg")).open(record="43")


def test_draft_decoding_keeps_at_least_the_requested_size():
    ref = ImageRef(data=_jpeg_bytes(1280, 960))
    img = ref.open(draft=(320, 320))
    assert img.size[0] >= 320 and img.size[1] >= 320
    assert img.size[0] < 1280  # DCT scaling really happened
