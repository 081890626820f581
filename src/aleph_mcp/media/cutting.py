"""Cutting the span of a clip the agent chose (a trim, or one window of a long clip) into an MP4 of its own.

Times are seconds from the clip's first frame, whatever its timestamps say (clips often start well after
0). The output starts with the frame nearest `start` and ends with the frame before the one nearest
`end`, stamped from 0, so its length is within one frame of end - start; the sound is cut to the span
the frames cover.

Stream copy (video and audio packets, timestamps rebased to 0) is used when it is exact: H.264 video, AAC
or MP3 sound, the cut starting on a keyframe, and the packets shown inside the cut decodable without any
outside it (with B-frames, a cut end between a P-frame and the B-frames that lean on it is not).
Otherwise the cut is decoded and encoded again, whole. The "smart cut" (re-encode up to the next keyframe,
copy the rest) is not done: an MP4 track has one H.264 sample description, so the re-encoded head and the
copied rest would need two sets of SPS/PPS, one of them sent in-band; FFmpeg decodes that, but hardware
and browser decoders that trust the `avcC` box do not reliably, and a source's profile, bit depth or
chroma (High 10, 4:2:2) may not be what libx264 yuv420p gives. A cut is at most a model's window long, so
re-encoding it whole costs a second or two, against minutes of rendering: `benchmarks/cut_speed.py`
measured a 5 s cut at 0.7 s (720p) and 1.9 s (1080p) re-encoded against 8-14 ms copied, on two busy
cores. Callers on an event loop run it in a worker thread.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import InputContainer, OutputContainer
from av.video.stream import VideoStream

from aleph_mcp.errors import InvalidInput
from aleph_mcp.media.encoding import (
    MP4_OPTIONS,
    add_aac,
    add_h264,
    display_rotation,
    encode_audio_span,
    even,
    frame_rate,
)
from aleph_mcp.media.formats import open_video

COPY_VIDEO = frozenset({"h264"})
COPY_AUDIO = frozenset({"aac", "mp3"})
_EPS = 1e-4  # seconds: float noise in a time the caller computed from frames


@dataclass(frozen=True)
class Cut:
    """What was written: the span of the source (seconds from its first frame) and how."""

    start: float  # where the output's first frame is in the source
    end: float  # where its last frame stops being shown
    duration: float
    copied: bool  # True: stream copy; False: decoded and encoded again


@dataclass(frozen=True)
class _Packet:
    pts: int
    duration: int
    key: bool


def check_trim(start: float, end: float, duration: float, *, slack: float = 0.0) -> tuple[float, float]:
    """Refuse a span that cannot be cut from a clip `duration` seconds long; returns (start, end), an end
    up to `slack` seconds past the clip's end (one frame, say) clamped to it."""
    for name, value in (("start_seconds", start), ("end_seconds", end)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise InvalidInput(f"{name} must be a finite number of seconds, not {value!r}.")
    if start < 0:
        raise InvalidInput(f"start_seconds ({start:g}) is before the clip's start; pass 0 or more.")
    if end <= start:
        raise InvalidInput(
            f"The trim is empty: end_seconds ({end:g}) must be after start_seconds ({start:g})."
        )
    if start >= duration:
        raise InvalidInput(
            f"start_seconds ({start:g}) is past the clip's end (it is {duration:.2f} s long); "
            f"pass a start below {duration:.2f}."
        )
    if end > duration + slack + _EPS:
        raise InvalidInput(
            f"end_seconds ({end:g}) is past the clip's end (it is {duration:.2f} s long); pass at most "
            f"{duration:.2f}, or leave it out to edit to the end."
        )
    return float(start), float(min(end, duration))


@dataclass(frozen=True)
class ClipTiming:
    duration: float  # seconds from the first frame to the end of the last, as cut_clip counts them
    fps: float  # the nominal frame rate


def clip_timing(src: Path) -> ClipTiming:
    """The clip's length and frame rate, counted as `cut_clip` counts them: check a trim with
    `check_trim(start, end, timing.duration, slack=1 / timing.fps)`, plan windows with `fps=timing.fps`."""
    with _opened(src) as inp:
        stream = inp.streams.video[0]
        packets = _scan(inp, stream)
        tb = stream.time_base or Fraction(1, 1000)
        span = max(p.pts + p.duration for p in packets) - min(p.pts for p in packets)
        return ClipTiming(duration=float(span * tb), fps=float(frame_rate(stream)))


def _opened(src: Path) -> InputContainer:
    """The clip, opened as a video this server reads, with a video stream; InvalidInput otherwise."""
    if not src.is_file():
        raise InvalidInput("The video to cut does not exist.")
    inp = open_video(src, "video to cut")
    if not inp.streams.video:
        inp.close()
        raise InvalidInput("The video to cut has no video stream.")
    return inp


def cut_clip(src: Path, dst: Path, start: float, end: float) -> Cut:
    """Write `src` from `start` to `end` seconds into `dst` (an MP4), by stream copy when exact (see the
    module's doc). InvalidInput, with nothing written, for a span outside the clip or too short."""
    with _opened(src) as inp:
        stream = inp.streams.video[0]
        packets = _scan(inp, stream)
        tb = stream.time_base or Fraction(1, 1000)
        origin = min(p.pts for p in packets)
        length = float((max(p.pts + p.duration for p in packets) - origin) * tb)
        start, end = check_trim(start, end, length, slack=float(1 / frame_rate(stream)))
        kept = _frames_in(sorted(p.pts for p in packets), origin, tb, start, end)
        copy = _copyable(inp, packets, set(kept))
    span = (float((kept[0] - origin) * tb), float((kept[-1] - origin) * tb))
    dst.parent.mkdir(parents=True, exist_ok=True)
    part = dst.with_name(f".{dst.name}.part")
    try:
        if copy:
            last = next(p for p in packets if p.pts == kept[-1])
            _copy(src, part, set(kept), float((last.pts + last.duration) * tb))
        else:
            _reencode(src, part, set(kept), float(origin * tb) + span[0])
        os.replace(part, dst)
    except av.FFmpegError:
        raise InvalidInput("The video to cut is damaged: it could not be decoded.") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    with av.open(str(dst)) as out:
        video = out.streams.video[0]
        duration = float((video.duration or 0) * (video.time_base or 0))
    return Cut(start=span[0], end=span[0] + duration, duration=duration, copied=copy)


def _scan(inp: InputContainer, stream: VideoStream) -> list[_Packet]:
    """Every video packet in decode order: its timestamp, length and whether it is a keyframe."""
    packets = [
        _Packet(pts=p.pts, duration=p.duration or 0, key=p.is_keyframe)
        for p in inp.demux(stream)
        if p.pts is not None and p.size
    ]
    if len(packets) < 2:
        raise InvalidInput("The video to cut has fewer than two frames; pass a video clip.")
    step = min(b - a for a, b in itertools.pairwise(sorted(p.pts for p in packets))) or 1
    return [p if p.duration else _Packet(p.pts, step, p.key) for p in packets]


def _frames_in(times: list[int], origin: int, tb: Fraction, start: float, end: float) -> list[int]:
    """The timestamps of the frames the cut keeps: from the frame nearest `start` to the last one that
    starts half a frame or more before `end`, so the cut's length is within one frame of end - start."""
    half = float(min(b - a for a, b in itertools.pairwise(times)) * tb) / 2
    kept = [t for t in times if start - half - _EPS <= float((t - origin) * tb) < end - half - _EPS]
    if len(kept) < 2:
        raise InvalidInput(
            f"The trim from {start:g} s to {end:g} s holds fewer than two frames; pass a longer span."
        )
    return kept


def _copyable(inp: InputContainer, packets: list[_Packet], kept: set[int]) -> bool:
    """Whether copying the packets shown inside the cut gives exactly the cut: codecs an MP4 takes, the
    cut starting on a keyframe, and those packets one run in decode order (no packet outside the cut is
    needed to decode one inside, nor one inside decoded before the keyframe)."""
    if inp.streams.video[0].codec_context.name not in COPY_VIDEO:
        return False
    if inp.streams.audio and inp.streams.audio[0].codec_context.name not in COPY_AUDIO:
        return False
    inside = [p.pts in kept for p in packets]
    first = inside.index(True)
    run = inside[first:].index(False) + first if False in inside[first:] else len(inside)
    return packets[first].key and not any(inside[run:]) and min(kept) == packets[first].pts


def _copy(src: Path, part: Path, kept: set[int], end: float) -> None:
    """Copy the kept video packets and the audio packets of the same span (to `end` on the file's
    clock), rebased so the cut's first frame is at 0."""
    with open_video(src, "video to cut") as inp, _mp4(part) as out:
        video = inp.streams.video[0]
        sound = inp.streams.audio[0] if inp.streams.audio else None
        out_video = out.add_stream_from_template(video)
        out_sound = out.add_stream_from_template(sound) if sound is not None else None
        first = min(kept)
        start = float(first * (video.time_base or 0))
        for packet in inp.demux(*([video] + ([sound] if sound is not None else []))):
            if packet.pts is None or not packet.size:
                continue
            if packet.stream is video and packet.pts in kept:
                packet.pts -= first
                packet.dts = None if packet.dts is None else packet.dts - first
                packet.stream = out_video
                out.mux(packet)
            elif packet.stream is sound and out_sound is not None and _sounds_in(packet, start, end):
                # Rebased on the sample clock: the packet that holds the cut's start (and the one
                # before it, which its decoding overlaps) start below 0, and the MP4's edit list hides
                # those samples, so the sound starts exactly with the picture.
                assert packet.time_base is not None
                packet.pts = packet.dts = packet.pts - round(start / packet.time_base)
                packet.stream = out_sound
                out.mux(packet)


def _sounds_in(packet: av.Packet[Any], start: float, end: float) -> bool:
    """Whether an audio packet plays within [start, end) or just before it (one packet of pre-roll)."""
    assert packet.pts is not None and packet.time_base is not None
    at, length = float(packet.pts * packet.time_base), float((packet.duration or 0) * packet.time_base)
    return start - length <= at + length and at < end


def _reencode(src: Path, part: Path, kept: set[int], start: float) -> None:
    """Decode from the keyframe before the cut, encode the kept frames stamped n / rate, and the sound
    of the same span sample-accurately."""
    with open_video(src, "video to cut") as inp, _mp4(part) as out:
        stream = inp.streams.video[0]
        rate = frame_rate(stream)
        inp.seek(min(kept), stream=stream, backward=True)
        encoder, sound = None, None
        written = 0
        for frame in inp.decode(stream):
            if frame.pts is None or frame.pts not in kept:
                if frame.pts is not None and frame.pts > max(kept):
                    break
                continue
            if encoder is None:
                size = even(frame.width, frame.height)
                encoder = add_h264(out, rate, size, display_rotation(stream, frame))
                sound = add_aac(out, inp.streams.audio[0]) if inp.streams.audio else None
            picture = frame.reformat(width=encoder.width, height=encoder.height, format="yuv420p")
            picture.pts, picture.time_base = written, 1 / rate
            written += 1
            out.mux(encoder.encode(picture))
        assert encoder is not None  # the scan found the kept frames
        out.mux(encoder.encode(None))
        if sound is not None:
            encode_audio_span(src, out, sound, start, start + float(written / rate))


def _mp4(path: Path) -> OutputContainer:
    return av.open(str(path), "w", format="mp4", options=MP4_OPTIONS)
