"""Before/after at a glance: a contact sheet, a row of the input's frames above the output's at the same
moments, as a small JPEG an agent can show inline.

Each tile is one decoded frame found by seeking (at most a keyframe interval decoded per tile, never the
whole clip) and shrunk to the tile at once, so a long 4K input costs as little memory as a short clip
(`benchmarks/sheet_cost.py`: a sheet of a 60 s 720p clip took 1.2x the time of a 5 s one; decoding the
60 s clip whole took 8x).
Tiles are upright (a phone clip's display rotation applied) and letterboxed into one tile size, taken
from the input's shape.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import av
from av.container import InputContainer
from PIL import Image, ImageOps

from aleph_mcp.errors import InvalidInput
from aleph_mcp.media.encoding import frame_rate
from aleph_mcp.media.formats import Source, open_video

SHEET_WIDTH = 1024  # at most, in pixels
GAP = 4  # between tiles and around them
BACKGROUND = (24, 24, 24)
MAX_COLUMNS = 8
JPEG_QUALITIES = (80, 65, 50, 35)  # tried in turn until the sheet fits in MAX_BYTES
MAX_BYTES = 150_000
LARGEST_DECODED = 512  # pixels: a frame is shrunk to this before Pillow sees it (a tile is smaller)


def sheet_times(before: float, after: float, columns: int) -> list[float]:
    """The moments shown, in seconds from each clip's first frame: the middles of `columns` equal parts
    of the shorter clip (an output cut to the model's window is compared with the same span of input)."""
    span = min(before, after)
    return [span * (k + 0.5) / columns for k in range(columns)]


def tile_size(width: int, height: int, columns: int) -> tuple[int, int]:
    """A tile's size for pictures of this (upright) shape: `columns` of them across at most SHEET_WIDTH."""
    tile_w = (SHEET_WIDTH - GAP * (columns + 1)) // columns
    tile_h = max(1, min(2 * tile_w, round(tile_w * height / max(1, width))))
    return tile_w, tile_h


def contact_sheet(before: Source, after: Source, dst: Path, columns: int = 4) -> Path:
    """Write a JPEG to `dst`: `columns` frames of `before` above `after`'s at the same moments (see
    `sheet_times`). InvalidInput for a file that is not a video or holds no picture."""
    if not isinstance(columns, int) or isinstance(columns, bool) or not 1 <= columns <= MAX_COLUMNS:
        raise InvalidInput(f"columns must be a whole number from 1 to {MAX_COLUMNS}, not {columns!r}.")
    with open_video(before, "input video") as first, open_video(after, "output video") as second:
        clips = [(first, "input video"), (second, "output video")]
        for container, what in clips:
            if not container.streams.video:
                raise InvalidInput(f"The {what} has no video stream.")
        times = sheet_times(_duration(first), _duration(second), columns)
        top = _frame_at(first, 0.0, "input video")
        tile = tile_size(*top.size, columns)
        rows = [[_tile(_frame_at(c, t, what), tile) for t in times] for c, what in clips]
    sheet = Image.new("RGB", (columns * (tile[0] + GAP) + GAP, 2 * (tile[1] + GAP) + GAP), BACKGROUND)
    for row, tiles in enumerate(rows):
        for column, image in enumerate(tiles):
            sheet.paste(image, (GAP + column * (tile[0] + GAP), GAP + row * (tile[1] + GAP)))
    dst.parent.mkdir(parents=True, exist_ok=True)
    part = dst.with_name(f".{dst.name}.part")
    try:
        for quality in JPEG_QUALITIES:  # busy pictures (grain, foliage) compress worse
            sheet.save(part, format="JPEG", quality=quality, optimize=True)
            if part.stat().st_size <= MAX_BYTES:
                break
        os.replace(part, dst)
    finally:
        part.unlink(missing_ok=True)
    return dst


def _duration(container: InputContainer) -> float:
    """The video's length in seconds, from its stream, else the container; 0 when neither says."""
    stream = container.streams.video[0]
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return max(0.0, (container.duration or 0) / av.time_base)


def _frame_at(container: InputContainer, at: float, what: str) -> Image.Image:
    """The frame on screen `at` seconds after the video's first frame, upright, as a Pillow image."""
    stream = container.streams.video[0]
    tb = stream.time_base or Fraction(1, 1000)
    origin = stream.start_time or 0
    half = 1 / (2 * frame_rate(stream))
    try:
        container.seek(origin + math.floor(at / tb), stream=stream, backward=True)
        chosen = None
        for frame in container.decode(stream):
            chosen = frame
            if frame.pts is not None and (frame.pts - origin) * tb >= at - half - 1e-6:  # a tie: the earlier
                break
    except av.FFmpegError:
        raise InvalidInput(f"The {what} is damaged: its frames could not be decoded.") from None
    if chosen is None:
        raise InvalidInput(f"The {what} holds no picture to show.")
    scale = min(1.0, LARGEST_DECODED / max(chosen.width, chosen.height))  # a 4K frame is 25 MB as RGB
    width, height = max(2, round(chosen.width * scale)), max(2, round(chosen.height * scale))
    pixels = chosen.reformat(width=width, height=height, format="rgb24").to_ndarray()
    image = Image.fromarray(pixels)
    turn = round(-(chosen.rotation or 0) / 90) % 4 * 90  # the matrix angle is counterclockwise
    return image.rotate(-turn, expand=True) if turn else image


def _tile(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return ImageOps.pad(image.convert("RGB"), size, method=Image.Resampling.BILINEAR, color=BACKGROUND)
