"""Real media for tests, made with PyAV: small H.264 MP4 clips with known pixels, and what a player sees."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

LEFT = (220, 30, 30)  # red-ish left half
RIGHT = (30, 30, 220)  # blue-ish right half
GRAY = (128, 128, 128)


def make_clip(
    path: Path,
    *,
    seconds: float = 1.0,
    fps: int = 12,
    size: tuple[int, int] = (160, 96),
    halves: tuple[tuple[int, int, int], tuple[int, int, int]] = (LEFT, RIGHT),
    start: float = 0.0,
    rotation: int = 0,
    rotate_tag: int | None = None,
    audio_from: float | None = None,
) -> Path:
    """A clip whose left half is red and right half blue, with a moving white square at the top.

    `start` delays the first frame (and the sound) by that many seconds, `rotation` stores a display
    matrix (counterclockwise degrees, as FFmpeg reads it: a phone held upright records -90), `rotate_tag`
    an old-style `rotate` tag (clockwise degrees; kept by Matroska, so name the file .mkv), `audio_from`
    adds a 440 Hz tone from then to the video's end. Odd sizes are stored as yuv444p, which H.264 allows."""
    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        if rotation:
            stream.set_display_rotation(rotation)
        if rotate_tag is not None:
            stream.metadata["rotate"] = str(rotate_tag)
        tone = out.add_stream("aac", rate=44100) if audio_from is not None else None
        for i in range(round(seconds * fps)):
            img = np.zeros((height, width, 3), dtype=np.uint8)
            img[:, : width // 2] = halves[0]
            img[:, width // 2 :] = halves[1]
            x = (i * 4) % (width - 12)
            img[4:16, x : x + 12] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = round(start * fps) + i, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if tone is not None and audio_from is not None:
            _write_tone(out, tone, audio_from, start + seconds)
    return path


def _write_tone(
    out: av.container.OutputContainer, tone: av.audio.stream.AudioStream, start: float, end: float
) -> None:
    rate = 44100
    t = np.arange(round((end - start) * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for offset in range(0, len(samples), 1024):
        frame = av.AudioFrame.from_ndarray(
            samples[None, offset : offset + 1024], format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = rate, round(start * rate) + offset
        frame.time_base = Fraction(1, rate)
        out.mux(tone.encode(frame))
    out.mux(tone.encode(None))


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as inp:
        frame = next(inp.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def duration_and_frames(path: Path) -> tuple[float, int]:
    with av.open(str(path)) as inp:
        frames = list(inp.decode(video=0))
        return float(frames[-1].time or 0), len(frames)


@dataclass(frozen=True)
class Played:
    """What a player gets from a file: the video's size, rate, timestamps and length, and the sound's."""

    width: int
    height: int
    rate: Fraction
    codec: str
    pix_fmt: str | None
    times: list[float]  # each decoded frame's presentation time
    duration: float  # the video stream's length in seconds
    rotated: bool  # any display matrix left on the frames
    audio: float | None  # the audio stream's length in seconds, None without one


def played(path: Path) -> Played:
    with av.open(str(path)) as inp:
        stream = inp.streams.video[0]
        frames = list(inp.decode(stream))
        audio = inp.streams.audio[0] if inp.streams.audio else None
        return Played(
            width=stream.width,
            height=stream.height,
            rate=stream.average_rate or Fraction(0),
            codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt,
            times=[float(f.time or 0) for f in frames],
            duration=float((stream.duration or 0) * (stream.time_base or 0)),
            rotated=any(f.rotation or f.side_data.get("DISPLAYMATRIX") for f in frames),
            audio=None if audio is None else float((audio.duration or 0) * (audio.time_base or 0)),
        )
