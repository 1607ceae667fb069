"""Posters and facts about a video: the first frame as a JPEG, and the container's duration.

`probe` reads through any seekable binary stream; given the bucket's ranged reader it fetches
only the header and the first frames' byte ranges, so a long or high-resolution video never
sits whole in memory.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO, Any

import av
from PIL import Image

JPEG_QUALITY = 85


@dataclass(frozen=True)
class Probe:
    first_frame: Image.Image
    duration_seconds: float | None
    codec: str
    width: int
    height: int


def jpeg_bytes(image: Image.Image, quality: int = JPEG_QUALITY) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def probe(source: IO[bytes]) -> Probe:
    """Decode the first video frame and read the duration from the container's header."""
    container: Any = av.open(source, mode="r")
    with container:
        if not container.streams.video:
            raise ValueError("the file has no video stream")
        stream = container.streams.video[0]
        first = next(iter(container.decode(stream)), None)
        if first is None:
            raise ValueError("the video stream holds no decodable frame")
        return Probe(
            first_frame=first.to_image(),
            duration_seconds=_duration(container, stream),
            codec=stream.codec_context.name,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
        )


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return None
