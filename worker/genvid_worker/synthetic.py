"""The synthetic provider's pictures: a real H.264 MP4 showing the prompt, made offline.

It stands in for Veo wherever no Vertex AI credentials exist (a laptop, CI, the local stack),
and it produces what Veo produces (an MP4 of the requested length and shape), so everything
downstream (storage, poster, player, billing) is exercised for real.

Frames are drawn lazily, one at a time, and the muxer writes a fragmented MP4 (`empty_moov`,
one fragment per keyframe) front to back into any writable: memory stays bounded by one frame
plus one fragment, never the whole video, and the sink need not be seekable.
"""

from __future__ import annotations

import functools
import hashlib
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FPS = 24
FRAGMENTED_MP4 = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
_FRAME_SIZES = {"16:9": (640, 360), "9:16": (360, 640)}
_ENCODER_OPTIONS = {"preset": "veryfast", "crf": "23", "profile": "high"}


class Sink(Protocol):
    """Anything bytes can be written to, seekable or not (a file, a socket, an upload)."""

    def write(self, data: bytes, /) -> int | None: ...


@dataclass(frozen=True)
class RenderSpec:
    prompt: str
    duration_seconds: int
    aspect_ratio: str
    seed: int | None = None
    fps: int = FPS

    @property
    def size(self) -> tuple[int, int]:
        return frame_size(self.aspect_ratio)

    @property
    def frame_count(self) -> int:
        return self.duration_seconds * self.fps


@dataclass(frozen=True)
class Rendered:
    first_frame: Image.Image
    frame_count: int
    duration_seconds: float


def frame_size(aspect_ratio: str) -> tuple[int, int]:
    try:
        return _FRAME_SIZES[aspect_ratio]
    except KeyError:
        raise ValueError(f"unsupported aspect ratio {aspect_ratio!r}") from None


def palette(spec: RenderSpec) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Two background colours derived from prompt and seed: same request, same picture."""
    digest = hashlib.sha256(f"{spec.seed}:{spec.prompt}".encode()).digest()
    top = (20 + digest[0] % 60, 20 + digest[1] % 60, 40 + digest[2] % 80)
    bottom = (digest[3] % 40, digest[4] % 40, 10 + digest[5] % 50)
    return top, bottom


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled font: no system fonts needed in a distroless image.
    return ImageFont.load_default(size=size)


def _backdrop(spec: RenderSpec) -> Image.Image:
    """Everything that does not move, drawn once: gradient, prompt, label."""
    width, height = spec.size
    top, bottom = palette(spec)
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(Image.new("RGB", (width, height), bottom),
                            Image.new("RGB", (width, height), top), gradient)  # fmt: skip
    draw = ImageDraw.Draw(image)
    text_size = max(16, width // 24)
    columns = max(12, int(width * 0.85 / (text_size * 0.55)))
    lines = textwrap.wrap(spec.prompt, width=columns, max_lines=8, placeholder=" ...")
    text = "\n".join(lines)
    font = _font(text_size)
    box = draw.multiline_textbbox((0, 0), text, font=font, spacing=6, align="center")
    x = (width - (box[2] - box[0])) // 2
    y = (height - (box[3] - box[1])) // 2 - height // 10
    draw.multiline_text((x, y), text, font=font, fill=(240, 240, 240), spacing=6, align="center")
    label = f"GenVid synthetic preview - {spec.aspect_ratio} - {spec.duration_seconds}s"
    draw.text((12, 10), label, font=_font(max(12, width // 48)), fill=(200, 200, 210))
    return image


def frames(spec: RenderSpec) -> Iterator[Image.Image]:
    """The frames, one at a time: a ball crossing the picture and a progress bar filling up."""
    width, height = spec.size
    backdrop = _backdrop(spec)
    radius = max(10, min(width, height) // 16)
    track_y = height - height // 5
    total = spec.frame_count
    for index in range(total):
        progress = index / max(1, total - 1)
        frame = backdrop.copy()
        draw = ImageDraw.Draw(frame)
        # Back and forth once per second along the track.
        phase = (index % (2 * spec.fps)) / spec.fps
        along = phase if phase <= 1 else 2 - phase
        cx = radius + int(along * (width - 2 * radius))
        draw.ellipse(
            (cx - radius, track_y - radius, cx + radius, track_y + radius),
            fill=(255, 196, 0),
        )
        draw.rectangle((0, height - 6, int(progress * width), height), fill=(0, 200, 255))
        draw.text(
            (width - 90, 10),
            f"{index / spec.fps:5.2f}s",
            font=_font(max(12, width // 48)),
            fill=(200, 200, 210),
        )
        yield frame


def encode_mp4(
    images: Iterable[Image.Image], sink: Sink, *, size: tuple[int, int], fps: int = FPS
) -> tuple[Image.Image | None, int]:
    """Encode `images` as H.264 into a fragmented MP4 written front to back into `sink`.

    Returns the first frame (for the poster) and the number of frames encoded. One keyframe
    per second makes one fragment per second, which bounds what the muxer holds.
    """
    width, height = size
    first: Image.Image | None = None
    count = 0
    container: Any = av.open(sink, mode="w", format="mp4", options=dict(FRAGMENTED_MP4))
    with container:
        stream = container.add_stream("libx264", rate=fps, options=dict(_ENCODER_OPTIONS))
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = fps
        for image in images:
            if first is None:
                first = image.copy()
            frame = av.VideoFrame.from_ndarray(np.asarray(image.convert("RGB")), format="rgb24")
            frame.pts = count
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
            count += 1
        container.mux(stream.encode(None))
    return first, count


def render(spec: RenderSpec, sink: Sink) -> Rendered:
    first, count = encode_mp4(frames(spec), sink, size=spec.size, fps=spec.fps)
    if first is None:
        raise ValueError("nothing to render: zero frames")
    return Rendered(first_frame=first, frame_count=count, duration_seconds=count / spec.fps)
