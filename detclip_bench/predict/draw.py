"""Detections drawn on their image: the ``vis/`` pictures of a ``predict`` run."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["PALETTE", "draw_detections"]

# bright colours, neighbours far apart (labels 0, 1, 2, ... cycle through them); each is drawn between dark
# outlines, so a box reads on a dark image (the colour) and on a light one (the outlines)
PALETTE = (
    (255, 56, 56),
    (0, 194, 255),
    (72, 249, 10),
    (255, 178, 29),
    (203, 56, 255),
    (0, 212, 187),
    (255, 112, 31),
    (100, 115, 255),
    (207, 210, 49),
    (255, 55, 199),
    (61, 219, 134),
    (255, 157, 151),
    (44, 153, 168),
    (146, 204, 23),
    (132, 56, 255),
    (255, 149, 200),
)


def _text_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


def draw_detections(image, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, names: Sequence[str]):
    """A copy of ``image`` (RGB) with each xyxy box drawn in its class's palette colour between dark outlines,
    and a ``"name 0.87"`` label on a filled background (above the box, or inside it at the image's top);
    low scores first, so the best boxes end on top."""
    from PIL import ImageDraw, ImageFont

    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    w, h = out.size
    width = max(2, round(max(w, h) / 300))
    font = ImageFont.load_default(size=min(32, max(10, round(max(w, h) / 35))))
    for k in np.argsort(scores, kind="stable"):
        x1, y1, x2, y2 = (float(v) for v in boxes[k])
        colour = PALETTE[int(labels[k]) % len(PALETTE)]
        draw.rectangle([x1 - width, y1 - width, x2 + width, y2 + width], outline=(0, 0, 0), width=width + 2)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        name = str(names[int(labels[k])])
        text = f"{name if len(name) <= 32 else name[:31] + '…'} {float(scores[k]):.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left + 4, bottom - top + 4
        tx = min(max(0.0, x1 - width), max(0.0, w - tw))
        ty = y1 - width - th if y1 - width - th >= 0 else max(0.0, y1)
        draw.rectangle([tx, ty, tx + tw, ty + th], fill=colour, outline=(0, 0, 0))
        draw.text((tx + 2 - left, ty + 2 - top), text, fill=_text_colour(colour), font=font)
    return out
