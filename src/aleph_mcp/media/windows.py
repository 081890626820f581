"""Whole-clip windows: planning a long clip as windows the model can take, and stitching the results.

PROVISIONAL: a small stand-in with the signatures of the media layer's version (branch h-media), which
replaces this file when it lands. Frames are matched by the original's frame rate: frame g of the clip is
taken from the window whose share of the clip holds it (each overlap is split at its middle), so the seams
have no repeated and no missing frame; the original clip's audio is put back over the whole.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from aleph_mcp.errors import InvalidInput


@dataclass(frozen=True)
class Window:
    index: int
    start: float
    end: float


def plan_windows(duration: float, window: float, overlap: float, max_windows: int) -> list[Window]:
    """Windows of at most `window` seconds covering [0, duration), neighbours sharing `overlap` seconds."""
    if not (math.isfinite(duration) and duration > 0 and window > 0 and 0 <= overlap < window):
        raise InvalidInput(f"Cannot plan windows of {window:g} s over {duration:g} s.")
    step = window - overlap
    count = max(1, math.ceil((duration - overlap) / step - 1e-9))
    if count > max_windows:
        raise InvalidInput(f"{count} windows are needed and at most {max_windows} are allowed.")
    return [Window(i, round(i * step, 6), round(min(i * step + window, duration), 6)) for i in range(count)]


def stitch(parts: list[Path], windows: list[Window], original: Path, dst: Path) -> Path:
    """Join the windows' videos into `dst` at the original's frame rate, with the original's audio."""
    with av.open(str(original)) as src:
        stream = src.streams.video[0]
        rate = Fraction(stream.average_rate or 24)
        sound = src.streams.audio[0].rate if src.streams.audio else None
    cuts = [0, *(round((a.end + b.start) / 2 * rate) for a, b in itertools.pairwise(windows))]
    with av.open(str(dst), "w", options={"max_interleave_delta": "0"}) as out:
        video = out.add_stream("libx264", rate=rate)
        audio = out.add_stream("aac", rate=sound) if sound else None
        size: tuple[int, int] | None = None
        written = 0
        for i, (part, window) in enumerate(zip(parts, windows, strict=True)):
            first = round(window.start * rate)
            last = cuts[i + 1] if i + 1 < len(cuts) else None
            with av.open(str(part)) as inp:
                for n, frame in enumerate(inp.decode(video=0)):
                    global_index = first + n
                    if global_index < max(cuts[i], written) or (last is not None and global_index >= last):
                        continue
                    if size is None:
                        size = (frame.width - frame.width % 2, frame.height - frame.height % 2)
                        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
                    image = frame.reformat(width=size[0], height=size[1], format="yuv420p")
                    image.pts, image.time_base = written, 1 / rate
                    out.mux(video.encode(image))
                    written += 1
        out.mux(video.encode(None))
        if audio is not None:
            _put_back_audio(original, out, audio, written / rate)
    return dst


def _put_back_audio(
    original: Path, out: av.container.OutputContainer, audio: av.audio.stream.AudioStream, seconds: Fraction
) -> None:
    with av.open(str(original)) as src:
        rate = audio.rate
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        pts = 0
        for frame in src.decode(audio=0):
            for chunk in resampler.resample(frame):
                if pts >= seconds * rate:
                    break
                chunk.pts, chunk.time_base = pts, Fraction(1, rate)
                pts += chunk.samples
                out.mux(audio.encode(chunk))
        out.mux(audio.encode(None))
