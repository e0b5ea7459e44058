"""What every image-text stream shares: turning (key, image bytes, caption) into a Sample, with the
real-data skips counted (failed downloads, missing image, missing or empty caption) instead of raised.

Corrupt image bytes are not detected here (decoding is lazy): ``ImageRef.open`` raises a
DataError naming the shard and key when a transform decodes them, and ``data validate``
decodes every image beforehand.
"""

from __future__ import annotations

from detclip_bench.errors import SkipLog
from detclip_bench.schema import DataKind, ImageRef, Sample

__all__ = ["image_text_sample"]


def image_text_sample(
    *,
    source: str,
    shard: str,
    key: str,
    image: bytes | None,
    caption,
    meta: dict,
    skips: SkipLog,
    width: int = 0,
    height: int = 0,
) -> Sample | None:
    """A sample, or None after counting why it was skipped."""
    if not image:
        skips.skip(shard, key, "no image bytes (failed download)")
        return None
    if caption is None:
        skips.skip(shard, key, "no caption (the record has no .txt member)")
        return None
    if isinstance(caption, bytes):
        caption = caption.decode("utf-8", errors="replace")
    caption = caption.strip()
    if not caption:
        skips.skip(shard, key, "empty caption")
        return None
    return Sample(
        kind=DataKind.IMAGE_TEXT,
        source=source,
        record_id=key,
        image=ImageRef(path=shard, data=bytes(image)),  # path = the shard, named in decode errors
        width=int(width or 0),
        height=int(height or 0),
        caption=caption,
        meta=meta,
    )
