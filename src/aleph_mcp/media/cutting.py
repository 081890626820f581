"""Cutting a span out of a clip.

PROVISIONAL: a small stand-in with the signature of the media layer's version (branch h-media), which
replaces this file when it lands. It re-encodes the frames whose time falls in [start, end), stamped from 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av


@dataclass(frozen=True)
class Cut:
    start: float
    end: float
    duration: float
    copied: bool = False


def cut_clip(src: Path, dst: Path, start: float, end: float) -> Cut:
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = inp.streams.video[0]
        rate = Fraction(stream.average_rate or 24)
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = stream.width, stream.height, "yuv420p"
        origin: float | None = None
        written = 0
        for frame in inp.decode(video=0):
            t = float(frame.time or 0.0)
            origin = t if origin is None else origin
            if not start - 1e-6 <= t - origin < end - 1e-6:
                continue
            image = frame.reformat(format="yuv420p")
            image.pts, image.time_base = written, 1 / rate
            out.mux(video.encode(image))
            written += 1
        out.mux(video.encode(None))
    return Cut(start, start + float(written / rate), float(written / rate))
