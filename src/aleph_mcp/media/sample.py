"""A small sample clip made by the project (colour bars and a moving ball) for offline demos and tests."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

BARS = [
    (235, 235, 235),
    (235, 235, 16),
    (16, 235, 235),
    (16, 235, 16),
    (235, 16, 235),
    (235, 16, 16),
    (16, 16, 235),
]


def make_sample(
    path: Path, *, seconds: float = 2.0, fps: int = 24, size: tuple[int, int] = (320, 180)
) -> Path:
    """Write an H.264 MP4: vertical colour bars with a white ball crossing from left to right."""
    width, height = size
    bars = np.zeros((height, width, 3), dtype=np.uint8)
    for i, colour in enumerate(BARS):
        bars[:, i * width // len(BARS) : (i + 1) * width // len(BARS)] = colour
    yy, xx = np.mgrid[0:height, 0:width]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        total = round(seconds * fps)
        for n in range(total):
            frame = bars.copy()
            cx, cy = int(width * (0.1 + 0.8 * n / max(1, total - 1))), height // 2
            frame[(xx - cx) ** 2 + (yy - cy) ** 2 < (height // 8) ** 2] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))
    return path
