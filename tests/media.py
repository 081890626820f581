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


# A clip whose frames say which frame they are: frame n draws n in binary as BITS black/white blocks
# across the top, over a background whose colour moves with n, and its sound is a chirp (the pitch rises
# CHIRP_SLOPE Hz a second from CHIRP_BASE), so a cut, a window or a stitch can be checked by decoding.
BITS = 8
CHIRP_BASE, CHIRP_SLOPE = 300.0, 100.0
TONE_RATE = 44100


def counter_colour(n: int) -> tuple[int, int, int]:
    """The background of frame n: every channel moves, so tiles of different moments differ."""
    return (40 + (n * 9) % 180, 200 - (n * 5) % 160, 60 + (n * 13) % 150)


def make_counter_clip(
    path: Path,
    *,
    seconds: float = 3.0,
    fps: int = 12,
    size: tuple[int, int] = (64, 36),
    keyint: int = 12,
    tone: bool = True,
    rotation: int = 0,
    codec: str = "libx264",
    start: float = 0.0,
) -> Path:
    """An MP4 (or .mkv) of `seconds` at `fps` whose frame n shows n (see `frame_index`), a keyframe every
    `keyint` frames and B-frames between, with a chirp as long as the video when `tone`; `start` delays
    the first frame and the sound by that many seconds."""
    width, height = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        assert isinstance(stream, av.video.stream.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0", "crf": "18"}
        else:
            stream.codec_context.gop_size = keyint
        if rotation:
            stream.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=TONE_RATE) if tone else None
        for n in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(_counter_image(n, width, height), format="rgb24")
            frame.pts, frame.time_base = round(start * fps) + n, Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if sound is not None:
            _write_chirp(out, sound, seconds, start)
    return path


def _counter_image(n: int, width: int, height: int) -> np.ndarray:
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[:] = counter_colour(n)
    block = width // BITS
    for bit in range(BITS):
        img[: height // 3, bit * block : (bit + 1) * block] = 255 if n >> bit & 1 else 0
    return img


def frame_index(picture: np.ndarray) -> int:
    """The frame number a counter-clip frame (rgb24, at its made size) shows."""
    height, width = picture.shape[:2]
    block = width // BITS
    bits = [
        picture[1 : height // 3 - 1, b * block + 1 : (b + 1) * block - 1].mean() > 128 for b in range(BITS)
    ]
    return sum(1 << b for b, on in enumerate(bits) if on)


def chirp(times: np.ndarray) -> np.ndarray:
    """The counter clip's sound at `times` seconds: its phase integrates the rising pitch."""
    phase = 2 * np.pi * (CHIRP_BASE * times + CHIRP_SLOPE / 2 * times**2)
    return (0.3 * np.sin(phase)).astype(np.float32)


def _write_chirp(
    out: av.container.OutputContainer, sound: av.audio.stream.AudioStream, seconds: float, start: float
) -> None:
    samples = chirp(np.arange(round(seconds * TONE_RATE)) / TONE_RATE)
    for offset in range(0, len(samples), 1024):
        frame = av.AudioFrame.from_ndarray(
            samples[None, offset : offset + 1024], format="fltp", layout="mono"
        )
        frame.sample_rate, frame.time_base = TONE_RATE, Fraction(1, TONE_RATE)
        frame.pts = round(start * TONE_RATE) + offset
        out.mux(sound.encode(frame))
    out.mux(sound.encode(None))


def indices(path: Path) -> list[int]:
    """The counter each decoded frame of `path` shows, in presentation order."""
    with av.open(str(path)) as inp:
        return [frame_index(f.to_ndarray(format="rgb24")) for f in inp.decode(video=0)]


def video_times(path: Path) -> list[float]:
    with av.open(str(path)) as inp:
        return [float(f.time or 0) for f in inp.decode(video=0)]


def audio_samples(path: Path) -> tuple[np.ndarray, int]:
    """The first audio stream decoded to mono float samples, and its sample rate."""
    with av.open(str(path)) as inp:
        stream = inp.streams.audio[0]
        chunks = [
            f.to_ndarray().reshape(f.samples, -1).mean(axis=1)
            if f.format.is_packed
            else f.to_ndarray().mean(axis=0)
            for f in inp.decode(stream)
        ]
        return np.concatenate(chunks), stream.codec_context.sample_rate


def pitch_at(samples: np.ndarray, rate: int, at: float, span: float = 0.2) -> float:
    """The main frequency (Hz) of `samples` over `span` seconds from `at`."""
    chunk = samples[round(at * rate) : round((at + span) * rate)]
    spectrum = np.abs(np.fft.rfft(chunk * np.hanning(len(chunk)), n=1 << 16))
    return float(np.argmax(spectrum) * rate / (1 << 16))


def chirp_time(pitch: float, span: float = 0.2) -> float:
    """Where in the counter clip's sound a window of `span` seconds with this main `pitch` starts."""
    return (pitch - CHIRP_BASE) / CHIRP_SLOPE - span / 2
