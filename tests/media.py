"""Real media for tests, made with PyAV: small H.264 MP4 clips with known pixels."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

LEFT = (220, 30, 30)  # red-ish left half
RIGHT = (30, 30, 220)  # blue-ish right half


def make_clip(path: Path, *, seconds: float = 1.0, fps: int = 12, size: tuple[int, int] = (160, 96)) -> Path:
    """A clip whose left half is red and right half blue, with a moving white square."""
    width, height = size
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(round(seconds * fps)):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            img[:, : width // 2] = LEFT
            img[:, width // 2 :] = RIGHT
            x = (i * 4) % (width - 12)
            img[4:16, x : x + 12] = 255
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as inp:
        frame = next(inp.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def duration_and_frames(path: Path) -> tuple[float, int]:
    with av.open(str(path)) as inp:
        frames = list(inp.decode(video=0))
        return float(frames[-1].time or 0), len(frames)
