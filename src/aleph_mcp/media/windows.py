"""Long clips: the windows a clip longer than the model's window is split into, and the stitch that joins
the windows' results into one video.

Neighbouring windows share `overlap` seconds. The stitch keeps each overlap once, cutting it in the
middle: window i's result gives the frames up to the seam, window i+1's those from it, so a frame of
the original is neither lost nor shown twice. The original clip's sound is put back over the whole
(results often come back silent, and the model's sound, if any, would jump at every seam).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.container import OutputContainer
from av.video.stream import VideoStream

from aleph_mcp.errors import AlephError, ErrorCode, InvalidInput
from aleph_mcp.media.encoding import (
    MP4_OPTIONS,
    add_aac,
    add_h264,
    encode_audio_span,
    even,
    first_video_time,
    frame_rate,
)
from aleph_mcp.media.formats import open_video

_EPS = 1e-6


@dataclass(frozen=True)
class Window:
    """One window of a long clip, in seconds from the clip's first frame."""

    index: int
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


def plan_windows(
    duration: float, window: float, overlap: float, max_windows: int, *, fps: float | None = None
) -> list[Window]:
    """Split `duration` seconds into the fewest windows of at most `window` seconds, neighbours sharing at
    least `overlap` seconds, all of one length. With `fps`, every bound falls on a frame (so a cut of
    the window starts exactly at its start). InvalidInput when more than `max_windows` are needed."""
    _check_plan(duration, window, overlap, max_windows, fps)
    unit = float(fps) if fps else 1.0
    total = round(duration * unit) if fps else duration
    if total <= window * unit + _EPS:
        return [Window(0, 0.0, float(duration))]
    longest = math.floor(window * unit + _EPS) if fps else window
    shared = math.ceil(overlap * unit - _EPS) if fps else overlap
    count = math.ceil((total - shared) / (longest - shared) - _EPS)
    if count > max_windows:
        raise InvalidInput(
            f"The clip is {duration:.2f} s long: in windows of {window:g} s sharing {overlap:g} s it needs "
            f"{count} windows, more than the limit of {max_windows}. Trim it (start_seconds/end_seconds) "
            f"to at most {max_windows * (window - overlap) + overlap:g} s, or edit it in parts."
        )
    length = (total + (count - 1) * shared) / count
    length = math.ceil(length - _EPS) if fps else length
    step = (total - length) / (count - 1)
    starts = [math.floor(i * step + _EPS) if fps else i * step for i in range(count)]
    return [
        Window(i, start / unit, float(duration) if i == count - 1 else (start + length) / unit)
        for i, start in enumerate(starts)
    ]


def _check_plan(duration: float, window: float, overlap: float, max_windows: int, fps: float | None) -> None:
    values = {"duration": duration, "window": window, "overlap": overlap, "fps": fps or 1.0}
    for name, value in values.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise InvalidInput(f"The {name} must be a finite number, not {value!r}.")
    if duration <= 0 or window <= 0 or (fps is not None and fps <= 0):
        raise InvalidInput("The clip's duration, the window and the frame rate must be more than 0.")
    if not 0 <= overlap < window:
        raise InvalidInput(f"The overlap ({overlap:g} s) must be at least 0 and shorter than the window.")
    if fps is not None and math.floor(window * fps + _EPS) <= math.ceil(overlap * fps - _EPS):
        raise InvalidInput("The window must be at least one frame longer than the overlap.")
    if not isinstance(max_windows, int) or isinstance(max_windows, bool) or max_windows < 1:
        raise InvalidInput(f"The window limit must be a whole number of 1 or more, not {max_windows!r}.")


class StitchFailed(AlephError):
    """The windows' results cannot be joined into one video (one is not a video, or is too short)."""

    code: ErrorCode = "render_failed"


def stitch(parts: list[Path], windows: list[Window], original: Path, dst: Path) -> Path:
    """Join the results of `windows` (in order, one per window) into `dst`, an MP4: each overlap kept
    once, frames stamped n / rate from 0 at the first part's rate and size, the original's sound over the
    whole. A result's time t is the original's window.start + t (bounds snapped to the original's frames,
    as `cut_clip` snaps them). StitchFailed when a result is unreadable or ends before its seam."""
    if not parts or len(parts) != len(windows):
        raise StitchFailed(f"{len(parts)} results were given for {len(windows)} windows.")
    if any(b.start <= a.start or b.start > a.end for a, b in itertools.pairwise(windows)):
        raise StitchFailed("The windows are not in order, or leave a gap between neighbours.")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open_video(original, "original clip") as inp:
        if not inp.streams.video:
            raise StitchFailed("The original clip has no video stream.")
        grid = frame_rate(inp.streams.video[0])
        clock = first_video_time(inp)
        has_sound = bool(inp.streams.audio)
    seams = [(a.end + b.start) / 2 for a, b in itertools.pairwise(windows)]
    bounds = list(zip([0.0, *seams], [*seams, math.inf], strict=True))
    part = dst.with_name(f".{dst.name}.part")
    try:
        with av.open(str(part), "w", format="mp4", options=MP4_OPTIONS) as out:
            writer = _Joiner(out, original if has_sound else None)
            for path, window, (low, high) in zip(parts, windows, bounds, strict=True):
                writer.add(path, window, _snap(window.start, grid), low, high)
            writer.close(clock)
        os.replace(part, dst)
    except av.FFmpegError as error:
        raise StitchFailed(f"The windows' results could not be joined: {error}.") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return dst


def _snap(at: float, rate: Fraction) -> float:
    """The time of the frame nearest `at` on a grid of `rate` frames a second (a tie takes the earlier)."""
    return float(math.ceil(at * rate - Fraction(1, 2) - Fraction(1, 10**6)) / rate)


class _Joiner:
    """Writes the kept frames of each part in turn; the encoder is made from the first part's first frame."""

    def __init__(self, out: OutputContainer, sound_from: Path | None) -> None:
        self.out, self.sound_from = out, sound_from
        self.encoder: VideoStream | None = None
        self.tick = Fraction(1, 24)  # a frame's length at the output rate (the stream's own time base
        # becomes the muxer's once the header is written)
        self.sound: av.audio.stream.AudioStream | None = None
        self.written = 0

    def add(self, path: Path, window: Window, start: float, low: float, high: float) -> None:
        """Write the frames of `path` whose time in the original falls in [low, high) (to the nearest
        frame); a result that stops more than one frame short of `high` (or of its end, for the last
        window) is refused: the stitch would lose frames there."""
        last, rate = -math.inf, Fraction(24)
        for frame, at, rate in _frames(path, window):
            half = float(1 / (2 * rate))
            last = start + at
            if last < low - half - _EPS:
                continue
            if last >= high - half - _EPS:
                return
            self._write(frame, rate)
        target = window.end if math.isinf(high) else high
        if (target - last) * rate > 2 + 1e-3:
            shown = max(0.0, last - start + float(1 / rate))
            raise StitchFailed(
                f"Window {window.index + 1}'s result holds only {shown:.2f} s of its "
                f"{window.duration:.2f} s: the stitch would miss frames of the original there."
            )

    def _write(self, frame: av.VideoFrame, rate: Fraction) -> None:
        if self.encoder is None:
            size = even(frame.width, frame.height)
            self.encoder = add_h264(self.out, rate, size, round(frame.rotation or 0))
            self.tick = 1 / rate
            if self.sound_from is not None:
                with open_video(self.sound_from, "original clip") as inp:
                    self.sound = add_aac(self.out, inp.streams.audio[0])
        encoder = self.encoder
        picture = frame.reformat(width=encoder.width, height=encoder.height, format="yuv420p")
        picture.pts, picture.time_base = self.written, self.tick
        self.written += 1
        self.out.mux(encoder.encode(picture))

    def close(self, clock: float) -> None:
        if self.encoder is None:
            raise StitchFailed("The windows' results hold no frames.")
        self.out.mux(self.encoder.encode(None))
        if self.sound is not None and self.sound_from is not None:
            length = float(self.written * self.tick)
            encode_audio_span(self.sound_from, self.out, self.sound, clock, clock + length)


def _frames(path: Path, window: Window) -> Iterator[tuple[av.VideoFrame, float, Fraction]]:
    """Each decoded frame of a part, its time from the part's first frame, and the part's rate."""
    try:
        opened = open_video(path, f"result of window {window.index + 1}")
    except (InvalidInput, OSError) as error:  # a child's output, not the caller's input
        raise StitchFailed(
            getattr(error, "message", f"Window {window.index + 1}'s result is missing.")
        ) from None
    with opened as inp:
        if not inp.streams.video:
            raise StitchFailed(f"Window {window.index + 1}'s result has no video stream.")
        stream = inp.streams.video[0]
        rate = frame_rate(stream)
        first: float | None = None
        for index, frame in enumerate(inp.decode(stream)):
            time = frame.time if frame.time is not None else float(index / rate)
            first = time if first is None else first
            yield frame, time - first, rate
