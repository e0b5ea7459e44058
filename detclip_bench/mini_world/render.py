"""Scene rendering: textured backgrounds with several shape × colour × texture objects.

Objects are small (16–64 px) on 96–192 px canvases so a tiny detector can learn them on a CPU.
The box of an object is the tight box of its drawn mask (amodal: later objects may cover part
of it, up to ``Difficulty.max_occlusion`` of its box area).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["COLOURS", "SHAPES", "TEXTURES", "Difficulty", "Domain", "Look", "Placed", "encode_jpeg", "render_scene"]

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (205, 35, 35),
    "green": (60, 170, 60),
    "darkgreen": (20, 85, 30),
    "yellow": (238, 210, 45),
    "orange": (245, 130, 25),
    "blue": (40, 75, 205),
    "purple": (135, 50, 175),
    "pink": (245, 135, 185),
    "brown": (125, 78, 38),
    "black": (28, 28, 28),
    "white": (238, 238, 238),
    "grey": (135, 135, 140),
    "cyan": (95, 215, 235),
}

SHAPES = (
    "disk",
    "ring",
    "crescent",
    "square",
    "bar",
    "triangle",
    "diamond",
    "star",
    "hexagon",
    "octagon",
    "cross",
    "ellipse",
)
TEXTURES = ("solid", "stripes", "dots", "checker")

# width/height of a shape's box relative to its size.
_ASPECT = {"bar": (1.0, 0.4), "ellipse": (0.7, 1.0)}


@dataclass(frozen=True)
class Difficulty:
    """Knobs for how hard the scenes are; the defaults make a small model reach clear AP in minutes."""

    min_objects: int = 1
    max_objects: int = 6
    min_size: int = 16
    max_size: int = 64
    max_occlusion: float = 0.3  # max fraction of an earlier object's box a later one may cover
    clutter: int = 6  # max distractor marks (lines, specks) per image, all smaller than min_size
    colour_jitter: int = 14

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if not 4 <= self.min_size <= self.max_size:
            raise ValueError(f"need 4 <= min_size <= max_size, got {self.min_size}, {self.max_size}")
        if not 0.0 <= self.max_occlusion <= 1.0:
            raise ValueError(f"max_occlusion must be in [0, 1], got {self.max_occlusion}")
        if self.clutter < 0:
            raise ValueError(f"clutter must be >= 0, got {self.clutter}")


@dataclass(frozen=True)
class Look:
    """How one object is drawn."""

    shape: str
    colour: str
    secondary: str
    texture: str


@dataclass(frozen=True)
class Domain:
    """A visual domain: background palette/pattern, optional thermal colour map."""

    name: str
    background: tuple[str, ...] = ("#d8d2c4", "#b9c4cc", "#cfd8c0", "#e2d6d0", "#c8c8d8")
    pattern: str = "grain"  # grain | tiles | planks | waves
    thermal: bool = False


@dataclass(frozen=True)
class Placed:
    index: int  # position in the requested object list
    box: tuple[int, int, int, int]  # xyxy, x2/y2 exclusive


def _hex(c: str) -> np.ndarray:
    return np.array([int(c[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float32)


def _background(rng: np.random.Generator, w: int, h: int, domain: Domain) -> np.ndarray:
    picks = rng.choice(len(domain.background), size=2, replace=len(domain.background) < 2)
    base, alt = (_hex(domain.background[i]) for i in picks)
    coarse = Image.fromarray((rng.random((4, 4)) * 255).astype(np.uint8)).resize((w, h), Image.BILINEAR)
    t = np.asarray(coarse, dtype=np.float32)[..., None] / 255.0
    img = base * (1 - t) + alt * t
    yy, xx = np.mgrid[0:h, 0:w]
    if domain.pattern == "tiles":
        step = int(rng.integers(18, 32))
        img[(xx % step < 1) | (yy % step < 1)] *= 0.8
    elif domain.pattern == "planks":
        step = int(rng.integers(10, 20))
        img *= (0.92 + 0.08 * np.sin(yy / step * math.pi * 2 + rng.random() * 6))[..., None]
    elif domain.pattern == "waves":
        img *= (0.9 + 0.1 * np.sin((xx + 2 * yy) / 9.0 + rng.random() * 6))[..., None]
    img += rng.normal(0, 6, size=(h, w, 1))
    return img


def _mask(shape: str, w: int, h: int) -> Image.Image:
    m = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(m)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    if shape in ("disk", "ellipse"):
        d.ellipse((0, 0, w - 1, h - 1), fill=255)
    elif shape == "ring":
        d.ellipse((0, 0, w - 1, h - 1), fill=255)
        d.ellipse((w * 0.3, h * 0.3, w * 0.7 - 1, h * 0.7 - 1), fill=0)
    elif shape == "crescent":
        d.ellipse((0, 0, w - 1, h - 1), fill=255)
        d.ellipse((w * 0.35, -h * 0.1, w * 1.35, h * 0.9), fill=0)
    elif shape in ("square", "bar"):
        d.rectangle((0, 0, w - 1, h - 1), fill=255)
    elif shape == "triangle":
        d.polygon([(cx, 0), (w - 1, h - 1), (0, h - 1)], fill=255)
    elif shape == "diamond":
        d.polygon([(cx, 0), (w - 1, cy), (cx, h - 1), (0, cy)], fill=255)
    elif shape == "cross":
        d.rectangle((w / 3, 0, 2 * w / 3, h - 1), fill=255)
        d.rectangle((0, h / 3, w - 1, 2 * h / 3), fill=255)
    elif shape in ("star", "hexagon", "octagon"):
        n, inner = {"star": (10, 0.45), "hexagon": (6, 1.0), "octagon": (8, 1.0)}[shape]
        offset = -math.pi / 2 if shape == "star" else math.pi / n
        pts = []
        for k in range(n):
            r = 1.0 if (shape != "star" or k % 2 == 0) else inner
            a = offset + 2 * math.pi * k / n
            pts.append((cx + r * cx * math.cos(a), cy + r * cy * math.sin(a)))
        d.polygon(pts, fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    return m


def _texture(look: Look, w: int, h: int, rng: np.random.Generator, jitter: int) -> np.ndarray:
    a = np.array(COLOURS[look.colour], dtype=np.float32) + rng.integers(-jitter, jitter + 1, size=3)
    b = np.array(COLOURS[look.secondary], dtype=np.float32) + rng.integers(-jitter, jitter + 1, size=3)
    yy, xx = np.mgrid[0:h, 0:w]
    period = max(3, min(w, h) // 6)
    if look.texture == "solid":
        sel = np.zeros((h, w), dtype=bool)
    elif look.texture == "stripes":
        sel = ((xx + yy) // max(2, period // 2)) % 2 == 1
    elif look.texture == "dots":
        r = max(1.0, period * 0.28)
        sel = ((xx % period - period / 2) ** 2 + (yy % period - period / 2) ** 2) <= r * r
    elif look.texture == "checker":
        sel = ((xx // period + yy // period) % 2) == 1
    else:
        raise ValueError(f"unknown texture {look.texture!r}; known: {', '.join(TEXTURES)}")
    img = np.where(sel[..., None], b, a)
    shade = 1.08 - 0.16 * (yy / max(h - 1, 1))  # soft top light so objects read as solid things
    return img * shade[..., None]


def _clutter(rng: np.random.Generator, draw: ImageDraw.ImageDraw, w: int, h: int, n: int, max_extent: int) -> None:
    for _ in range(n):
        tone = tuple(int(v) for v in rng.integers(60, 200, size=3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            dx, dy = (int(v) for v in rng.integers(-max_extent, max_extent + 1, size=2))
            draw.line((x, y, x + dx, y + dy), fill=tone, width=1)
        else:
            r = int(rng.integers(1, max(2, max_extent // 4)))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=tone)


def _overlap_ok(box: tuple[int, int, int, int], placed: list[Placed], max_occlusion: float) -> bool:
    x0, y0, x1, y1 = box
    for p in placed:
        px0, py0, px1, py1 = p.box
        iw, ih = min(x1, px1) - max(x0, px0), min(y1, py1) - max(y0, py0)
        if iw > 0 and ih > 0 and iw * ih > max_occlusion * (px1 - px0) * (py1 - py0):
            return False
    return True


def render_scene(
    rng: np.random.Generator,
    width: int,
    height: int,
    looks: list[Look],
    difficulty: Difficulty,
    domain: Domain,
    size_ranges: list[tuple[int, int]] | None = None,
) -> tuple[Image.Image, list[Placed]]:
    """Draw ``looks`` (in order, later on top) on a domain background; return the image and boxes.

    ``size_ranges`` overrides the difficulty's size range per object. An object that finds no
    free spot within the occlusion budget after a few tries is left out, so callers must use the
    returned ``Placed`` list, never ``looks``.
    """
    canvas = _background(rng, width, height, domain)
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    n_clutter = int(rng.integers(0, difficulty.clutter + 1)) if difficulty.clutter else 0
    _clutter(rng, ImageDraw.Draw(img), width, height, n_clutter, max(2, difficulty.min_size // 2))
    placed: list[Placed] = []
    for i, look in enumerate(looks):
        lo, hi = size_ranges[i] if size_ranges else (difficulty.min_size, difficulty.max_size)
        hi = max(lo, min(hi, int(0.7 * min(width, height))))
        size = int(rng.integers(lo, hi + 1))
        fw, fh = _ASPECT.get(look.shape, (1.0, 1.0))
        w, h = max(4, round(size * fw)), max(4, round(size * fh))
        mask = _mask(look.shape, w, h)
        for _ in range(12):
            x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            bx0, by0, bx1, by1 = mask.getbbox()
            box = (x + bx0, y + by0, x + bx1, y + by1)
            if _overlap_ok(box, placed, difficulty.max_occlusion):
                tex = Image.fromarray(
                    np.clip(_texture(look, w, h, rng, difficulty.colour_jitter), 0, 255).astype(np.uint8)
                )
                img.paste(tex, (x, y), mask)
                placed.append(Placed(i, box))
                break
    if domain.thermal:
        img = _thermal(img)
    return img, placed


def _thermal(img: Image.Image) -> Image.Image:
    """Grey levels through a black→purple→orange→yellow ramp, like a FLIR 'iron' palette."""
    grey = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    stops = np.array([[0, 0, 0], [90, 20, 120], [220, 80, 30], [255, 230, 90]], dtype=np.float32)
    pos = grey * (len(stops) - 1)
    k = np.clip(pos.astype(int), 0, len(stops) - 2)
    t = (pos - k)[..., None]
    rgb = stops[k] * (1 - t) + stops[k + 1] * t
    return Image.fromarray(rgb.astype(np.uint8))


def encode_jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
