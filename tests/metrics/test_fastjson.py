"""The columnar results reader (``fastjson``) against the msgspec route it stands in for: bit-identical columns
on everything it accepts, and on everything else it declines, so ``score`` raises msgspec's own error."""

import json
import math
import random
import struct

import numpy as np
import pytest

from detclip_bench.errors import DataError
from detclip_bench.metrics import fastjson, read_results
from detclip_bench.metrics.score import _decode_records

pytestmark = pytest.mark.skipif(not fastjson.available(), reason="the C scan was not built (pip install -e .)")


def _reference(path):
    """msgspec's columns, boxes turned into xyxy as read_results turns them."""
    image_ids, cats, scores, xywh = _decode_records(path, path.read_bytes())
    xyxy = xywh.copy()
    xyxy[:, 2:] += xyxy[:, :2]
    return image_ids, cats, scores, xyxy, xywh


def assert_bit_identical(path, *, threads=1):
    """The fast route accepted the file and its columns equal msgspec's byte for byte (so -0.0 stays -0.0)."""
    got, _ = fastjson.read_columns(path, threads=threads)
    assert got is not None, "the fast route declined"
    for a, b in zip(got, _reference(path)[:4], strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    for a, b in zip(read_results(path), read_results(path, fast=False), strict=True):
        assert a.tobytes() == b.tobytes()


def rec(i=1, c=1, bbox=(1.5, 2.5, 3.0, 4.0), score=0.5, **extra):
    return {"image_id": i, "category_id": c, "bbox": list(bbox), "score": score, **extra}


def write(tmp_path, text, name="pred.json"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


# Number spellings msgspec reads as float64: each goes into every float slot (bbox and score).
TRICKY_NUMBERS = [
    "0",
    "-0",
    "0.0",
    "-0.0",
    "-0e5",
    "0e-400",
    "1",
    "-1",
    "7",
    "123456789",
    "1.5",
    "-2.25",
    "1e2",
    "1E2",
    "1e+2",
    "1e-2",
    "2.5E-3",
    "1.5e308",
    "1.7976931348623157e308",
    "2.2250738585072014e-308",
    "4.9e-324",
    "1e-320",
    "1e-400",
    "123e-2",
    "0.1",
    "0.2",
    "0.30000000000000004",
    "14.680000000000007",
    "117.66000000000001",
    "9007199254740992",
    "9007199254740993",
    "9007199254740993.0",
    "9007199254740995",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "123456789012345678901234567890",
    "-18446744073709551617",
    "0.1000000000000000055511151231257827021181583404541015625",
    "1" + "0" * 400 + "e-400",
    "0." + "0" * 30 + "123456789012345678",
    "1e0000000000000000000000002",
    "1e-0000000000000000000400",
    "123.45678100585938",
    "0.0001",
    "1e22",
    "1e23",
    "9.999999999999999e22",
    "5e-324",
    "2.4703282292062328e-324",
    "2.4703282292062327e-324",
    "1.00000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203124",
    "1.00000000000000011102230246251565404236316680908203126",
]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # 1.79e308 + 1.79e308 = inf, both routes
def test_tricky_numbers_are_bit_identical(tmp_path):
    text = (
        "["
        + ",".join(  # widths and heights without the sign: a negative one is refused (tested below)
            f'{{"image_id":{k},"category_id":{k % 7},"bbox":[{n},{n},{n.lstrip("-")},{n.lstrip("-")}],"score":{n}}}'
            for k, n in enumerate(TRICKY_NUMBERS)
        )
        + "]"
    )
    assert_bit_identical(write(tmp_path, text))


def _halfway_strings(rng: random.Random, count: int) -> list[str]:
    """Exact decimal midpoints between adjacent doubles, and the nearest numbers just off them."""
    from decimal import Decimal, getcontext

    getcontext().prec = 800
    out = []
    for _ in range(count):
        a = rng.uniform(0, 2000) if rng.random() < 0.7 else rng.uniform(0, 1) * 10.0 ** rng.randint(-30, 30)
        b = math.nextafter(a, math.inf)
        mid = (Decimal(a) + Decimal(b)) / 2
        tiny = Decimal(10) ** (mid.adjusted() - 40)
        out += [str(mid), str(mid + tiny), str(mid - tiny), f"{a:.17g}", f"{a:.16g}", f"{a:.15g}"]
    return out


def test_random_and_adversarial_numbers_are_bit_identical(tmp_path):
    rng = random.Random(7)
    numbers = _halfway_strings(rng, 400)
    for _ in range(3000):
        x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(x):
            numbers.append(repr(x))
        f32 = float(np.float32(rng.uniform(0, 1500)))  # what float32 model outputs look like in a results file
        numbers += [repr(f32), repr(-f32), f"{f32:.6f}", f"{f32:e}", str(rng.randint(0, 10 ** rng.randint(1, 25)))]
        digits = rng.randint(1, 19)
        numbers.append(f"{rng.randrange(10**digits)}e{rng.randint(-40, 40)}")
    rng.shuffle(numbers)
    numbers += ["0"] * (-len(numbers) % 5)
    rows = [
        [*r[:2], r[2].lstrip("-"), r[3].lstrip("-"), r[4]]
        for r in (numbers[i : i + 5] for i in range(0, len(numbers), 5))
    ]
    text = (
        "["
        + ",".join(
            f'{{"image_id":{k},"category_id":1,"bbox":[{",".join(r[:4])}],"score":{r[4]}}}' for k, r in enumerate(rows)
        )
        + "]"
    )
    assert_bit_identical(write(tmp_path, text))


@pytest.mark.parametrize("layout", ["compact", "python", "indent", "crlf-tabs", "reordered", "extra-keys"])
def test_layouts_and_extra_keys(tmp_path, layout):
    records = [
        rec(i, c, (i * 1.25, -0.0, abs(3 + i), 4e-3), s)
        for i, c, s in [(1, 1, 0.5), (999999999999999999, 2, 1), (-5, -0, 0.0), (0, 123456789012345678, 1e-5)]
    ]
    if layout == "compact":
        text = json.dumps(records, separators=(",", ":"))
    elif layout == "python":
        text = json.dumps(records)
    elif layout == "indent":
        text = " \n" + json.dumps(records, indent=2) + "\n\n"
    elif layout == "crlf-tabs":
        text = json.dumps(records, indent="\t").replace("\n", "\r\n")
    elif layout == "reordered":
        text = json.dumps(
            [
                {"score": r["score"], "bbox": r["bbox"], "category_id": r["category_id"], "image_id": r["image_id"]}
                for r in records
            ]
        )
    else:
        extras = [
            {"id": 3, "segmentation": {"size": [480, 640], "counts": "PPYo0:5K3M2N1O1O0O2N2M4K`0A"}},
            {"segmentation": [[1.5, 2, 3e1, 4], []], "area": 12.5, "iscrowd": 0, "attrs": [True, False, None]},
            {"nested": {"a": [{"b": [[[]]], "c": {}}, -1.5e-7, "x"]}, "bbox_score": 1, "scores": [1, 2]},
            {"note": "},{ 'image_id': 3 ", "image": None, "category": "cat"},
        ]
        text = json.dumps([{**extra, **r} for extra, r in zip(extras, records, strict=True)])
    assert_bit_identical(write(tmp_path, text))


def test_mixed_layouts_in_one_file(tmp_path):
    """Records in orjson's and json.dumps' layouts (read by literal compares), and records that leave them
    half-way (another key order, an extra key after a number left to Python): each read from its start again."""
    long = "1.2345678901234567890123456789"  # more than 19 digits: converted by Python
    lines = [
        '{"image_id":1,"category_id":2,"bbox":[1.5,2,3e1,-0.0],"score":0.25}',
        '{"image_id": 3, "category_id": 4, "bbox": [1.5, 2, 3e1, 4], "score": 0.5}',
        f'{{"image_id":5,"category_id":6,"bbox":[{long},2,3,4],"score":{long},"id":7}}',
        f'{{"image_id": 8, "category_id": 9, "bbox": [{long}, 2, 3, 4], "score": 1, "area": 12}}',
        f'{{"image_id":10,"category_id":11,"score":{long},"bbox":[1,2,3,{long}]}}',
        '{"image_id":12,"category_id":13,"bbox":[1,2,3,4],"score":0.5 }',
        '{"image_id":14 ,"category_id":15,"bbox":[1,2,3,4],"score":0.5}',
        '{"image_id":16,"category_id":17,"bbox":[1,2,3,4],"score":0.75}',
    ]
    assert_bit_identical(write(tmp_path, "[" + ",".join(lines) + "]"))
    assert_bit_identical(write(tmp_path, "[\n" + ",\n".join(lines) + "\n]\n", "lines.json"))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[]", "empty"),
        ("[ ]", "empty"),
        ("", "nothing"),
        ("{}", "not a list"),
        ("[1]", "not a record"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3],"score":0.5}]', "3 numbers"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4,5],"score":0.5}]', "5 numbers"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4]}]', "no score"),
        ('[{"image_id":1.0,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]', "float id"),
        ('[{"image_id":1e2,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]', "exponent id"),
        ('[{"image_id":"1","category_id":1,"bbox":[1,2,3,4],"score":0.5}]', "string id"),
        ('[{"image_id":true,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]', "bool id"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":true}]', "bool score"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":null}]', "null score"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,"3",4],"score":0.5}]', "string in bbox"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":1e400}]', "overflow"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,-1e999],"score":1}]', "overflow in bbox"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":1' + "0" * 400 + "}]", "integer overflow"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":NaN}]', "NaN"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":Infinity}]', "Infinity"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":01}]', "leading zero"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":.5}]', "no integer part"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":1.}]', "no fraction digits"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":+1}]', "plus sign"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":-}]', "lone minus"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":1e}]', "empty exponent"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5},]', "trailing comma"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5,}]', "trailing comma in record"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5}', "unterminated"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5}] x', "trailing garbage"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]]', "extra bracket"),
        ('[{"image_id":1 "category_id":1,"bbox":[1,2,3,4],"score":0.5}]', "missing comma"),
        ('[{"image_id":1,"category_id":1,"bbox":[1 2,3,4],"score":0.5}]', "missing comma in bbox"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5,"x":[1 2]}]', "bad extra value"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5,"x":tru}]', "bad literal"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5,"x":"a\x01"}]', "control byte"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,-3,4],"score":0.5}]', "negative width"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,-1e-300],"score":0.5}]', "negative height"),
        (
            '[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5},{"image_id":1,"category_id":1,"bbox":[1,2,'
            '-1.00000000000000000000001,4],"score":0.5}]',
            "negative width left to Python",
        ),
        ('\ufeff[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]', "BOM"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5}\x00]', "NUL byte"),
        ('[{"image_id":9223372036854775808,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]', "id beyond int64"),
        ('[{"image_id":01,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]', "leading zero id"),
        ('[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5', "cut in the record"),
        ('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}, ', "cut after a record"),
        (
            '[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5}{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]',
            "no comma between records",
        ),
    ],
)
def test_bad_files_raise_the_msgspec_error(tmp_path, text, why):
    path = write(tmp_path, text)
    got, _ = fastjson.read_columns(path)
    assert got is None, why  # declined: msgspec's route raises
    with pytest.raises((DataError, OverflowError)) as slow:
        read_results(path, fast=False)
    with pytest.raises(type(slow.value)) as fast:
        read_results(path)
    assert str(fast.value) == str(slow.value)


@pytest.mark.parametrize(
    "text",
    [
        '[{"image_id":1,"image_id":2,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]',  # msgspec keeps the last
        '[{"image_\\u0069d":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]',  # an escaped key
        '[{"image_id":1,"category_id":1,"bbox":[1,2,3,4],"score":0.5,"name":"caf\u00e9 \\"x\\""}]',
        '[{"image_id":1234567890123456789,"category_id":1,"bbox":[1,2,3,4],"score":0.5}]',  # 19 digits
    ],
)
def test_declined_but_valid_files_still_read_by_msgspec(tmp_path, text):
    path = write(tmp_path, text)
    assert fastjson.read_columns(path)[0] is None
    for a, b in zip(read_results(path), read_results(path, fast=False), strict=True):
        assert a.tobytes() == b.tobytes()


def test_two_halves_equal_one_scan(tmp_path, monkeypatch):
    """The file is scanned as two halves in two threads above a size; the halves must give the same columns,
    also when the guessed middle falls inside a string (the first half then does not arrive there)."""
    monkeypatch.setattr(fastjson, "_SPLIT_ABOVE", 1000)
    real, halves = fastjson._fastjson, []

    class Spy:  # records which scans ran: (started at a record rather than at '[', status)
        def __getattr__(self, name):
            return getattr(real, name)

        def scan(self, *args):
            out = real.scan(*args)
            halves.append((not args[2], out[0]))
            return out

    monkeypatch.setattr(fastjson, "_fastjson", Spy())
    rng = np.random.default_rng(3)
    records = [
        rec(int(i), int(c), tuple(b), float(s))
        for i, c, b, s in zip(
            rng.integers(0, 10**6, 3000),
            rng.integers(1, 1204, 3000),
            rng.uniform(0, 1000, (3000, 4)) - [1, 1, 0, 0],
            rng.random(3000),
            strict=True,
        )
    ]
    records[1500]["bbox"] = [1e-400, 10**25, 0.30000000000000004, 9007199254740993]  # numbers left to Python
    assert_bit_identical(write(tmp_path, json.dumps(records)), threads=2)
    assert (True, real.OK_END) in halves and (False, real.OK_STOP) in halves  # the halves were used
    trap = [{**r, "s": "},{" * 200} for r in records]  # record-like separators inside strings everywhere
    assert_bit_identical(write(tmp_path, json.dumps(trap), "trap.json"), threads=2)


def test_benchmark_style_file(tmp_path):
    """The results files eval_bench writes (orjson, xyxy - xy widths with 17 digits)."""
    import orjson

    from detclip_bench.metrics.synthetic import make_detections, make_lvis_like

    gt = make_lvis_like(30, 40, gt_per_image=5, seed=5)
    assert_bit_identical(write(tmp_path, orjson.dumps(make_detections(gt, 200, seed=6).to_results())))


def test_without_the_compiled_scan_msgspec_reads_alone(tmp_path, monkeypatch):
    """Where the C extension could not be built, read_columns declines everything and score still works."""
    path = write(tmp_path, json.dumps([rec(1, 2, (1, 2, 3, 4), 0.5), rec(3, 4, (5, 6, 7, 8), 0.25)]))
    fast = read_results(path)
    monkeypatch.setattr(fastjson, "_fastjson", None)
    assert not fastjson.available() and fastjson.read_columns(path)[0] is None
    for a, b in zip(read_results(path), fast, strict=True):
        assert a.tobytes() == b.tobytes()
