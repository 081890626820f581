"""Cutting a span out of a clip: exact frames and sound, stream copy only where it is exact, hostile spans
refused before anything is written."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from aleph_mcp.errors import InvalidInput
from aleph_mcp.media.cutting import ClipTiming, Cut, check_trim, clip_timing, cut_clip

from .media import audio_samples, chirp, chirp_time, indices, make_clip, make_counter_clip, pitch_at, played

FPS = 12


@pytest.fixture(scope="module")
def counter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 s at 12 fps, a keyframe every second (frames 0, 12, 24), B-frames between, a chirp."""
    return make_counter_clip(tmp_path_factory.mktemp("cut") / "counter.mp4", seconds=3, fps=FPS)


def assert_cut(out: Path, cut: Cut, first: int, frames: int) -> None:
    """The output shows source frames first..first+frames-1 in order, stamped n / 12 from 0, its sound as
    long as its picture and taken from the same moments."""
    assert indices(out) == list(range(first, first + frames))
    video = played(out)
    assert video.codec == "h264" and video.pix_fmt == "yuv420p"
    assert video.times[0] == 0
    assert np.allclose(np.diff(video.times), 1 / FPS)
    assert abs(video.duration - frames / FPS) < 1 / FPS
    assert math.isclose(cut.start, first / FPS) and math.isclose(cut.duration, video.duration)
    assert video.audio is not None and abs(video.audio - video.duration) < 1 / FPS
    samples, rate = audio_samples(out)
    for at in (0.1, video.duration - 0.35):  # the sound at output time t is the source's at start + t
        assert abs(chirp_time(pitch_at(samples, rate, at)) - (cut.start + at)) < 0.05
    # ... to the sample, from the first one: a copy does not start a packet early, nor lose the pre-roll
    wanted = chirp(cut.start + np.arange(len(samples)) / rate)
    for head in (slice(0, 1024), slice(1024, 8192)):
        assert np.corrcoef(samples[head], wanted[head])[0, 1] > 0.99


@pytest.mark.parametrize(
    ("start", "end", "first", "frames"), [(1, 2, 12, 12), (0, 3, 0, 36), (2, 3, 24, 12), (1.04, 1.96, 12, 12)]
)
def test_a_cut_from_a_keyframe_to_a_clean_end_is_a_stream_copy(
    tmp_path: Path, counter: Path, start: float, end: float, first: int, frames: int
) -> None:
    out = tmp_path / "cut.mp4"
    cut = cut_clip(counter, out, start, end)
    assert cut.copied
    assert_cut(out, cut, first, frames)


@pytest.mark.parametrize(
    ("start", "end", "first", "frames"),
    [(0.5, 2, 6, 18), (0.4, 1.7, 5, 15), (1, 2.5, 12, 18), (0.96, 1.5, 12, 6)],
    ids=["off-keyframe", "both-off", "end-inside-b-frames", "nearest-is-a-keyframe"],
)
def test_any_other_cut_is_encoded_again_with_exactly_the_frames_asked(
    tmp_path: Path, counter: Path, start: float, end: float, first: int, frames: int
) -> None:
    """The first frame is the one nearest `start`; the last the one before the frame nearest `end`."""
    out = tmp_path / "cut.mp4"
    cut = cut_clip(counter, out, start, end)
    assert not cut.copied
    assert_cut(out, cut, first, frames)
    assert abs(cut.duration - (end - start)) < 1 / FPS


def test_a_clip_whose_timestamps_start_late_is_cut_from_its_first_frame(tmp_path: Path) -> None:
    """Times count from the first frame (here stamped 4 s), not from the file's zero."""
    clip = make_counter_clip(tmp_path / "late.mp4", seconds=3, fps=FPS, start=4)
    for start, copied in ((1, True), (0.5, False)):
        out = tmp_path / f"cut{start}.mp4"
        cut = cut_clip(clip, out, start, 2)
        assert cut.copied is copied
        assert indices(out)[0] == round(start * FPS)
        assert played(out).times[0] == 0


@pytest.mark.parametrize("start", [1.0, 0.5], ids=["copy", "encode"])
def test_a_phone_clip_keeps_its_rotation(tmp_path: Path, start: float) -> None:
    clip = make_counter_clip(tmp_path / "phone.mp4", seconds=2, fps=FPS, rotation=-90)
    out = tmp_path / "cut.mp4"
    cut_clip(clip, out, start, 2)
    with av.open(str(out)) as inp:
        assert next(inp.decode(video=0)).rotation == -90


def test_an_old_rotate_tag_becomes_the_display_matrix(tmp_path: Path) -> None:
    """A Matroska clip's clockwise `rotate` tag is the MP4's counterclockwise -90 matrix."""
    clip = make_clip(tmp_path / "tagged.mkv", seconds=2, rotate_tag=90)
    out = tmp_path / "cut.mp4"
    assert not cut_clip(clip, out, 0.5, 1.5).copied
    with av.open(str(out)) as inp:
        assert next(inp.decode(video=0)).rotation == -90


def test_a_codec_an_mp4_copy_does_not_take_is_encoded_as_h264(tmp_path: Path) -> None:
    clip = make_counter_clip(tmp_path / "old.mkv", seconds=2, fps=FPS, codec="mpeg4", tone=False)
    out = tmp_path / "cut.mp4"
    cut = cut_clip(clip, out, 1, 2)
    assert not cut.copied
    assert indices(out) == list(range(12, 24))
    assert played(out).codec == "h264" and played(out).audio is None


def test_an_h264_matroska_clip_is_copied_into_an_mp4(tmp_path: Path) -> None:
    clip = make_counter_clip(tmp_path / "clip.mkv", seconds=2, fps=FPS)
    out = tmp_path / "cut.mp4"
    cut = cut_clip(clip, out, 1, 2)
    assert cut.copied
    assert indices(out) == list(range(12, 24))
    with av.open(str(out)) as inp:
        assert inp.format.name.startswith("mov,mp4")
        assert inp.streams.audio[0].codec_context.name == "aac"


def test_sound_an_mp4_copy_does_not_take_is_encoded_as_aac(tmp_path: Path) -> None:
    """H.264 from a keyframe, but Opus sound: the cut is encoded again, sound and all."""
    clip = tmp_path / "opus.mkv"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        sound = out.add_stream("libopus", rate=48000)
        for n in range(24):
            frame = av.VideoFrame.from_ndarray(np.full((36, 64, 3), n * 10, np.uint8), format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        for offset in range(0, 96000, 960):
            chunk = av.AudioFrame.from_ndarray(
                np.zeros((1, 960), np.float32) + 0.1, format="flt", layout="mono"
            )
            chunk.sample_rate, chunk.pts, chunk.time_base = 48000, offset, Fraction(1, 48000)
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))
    out_path = tmp_path / "cut.mp4"
    cut = cut_clip(clip, out_path, 0, 1)
    assert not cut.copied
    video = played(out_path)
    assert len(video.times) == 12 and video.audio is not None and abs(video.audio - 1) < 1 / FPS
    with av.open(str(out_path)) as inp:
        assert inp.streams.audio[0].codec_context.name == "aac"


def test_the_timing_is_what_cuts_count_from(counter: Path, tmp_path: Path) -> None:
    assert clip_timing(counter) == ClipTiming(duration=3.0, fps=12.0)
    late = clip_timing(make_counter_clip(tmp_path / "late.mp4", seconds=2, fps=FPS, start=4))
    assert late == ClipTiming(duration=2.0, fps=12.0)
    with pytest.raises(InvalidInput, match="does not exist"):
        clip_timing(tmp_path / "gone.mp4")


def test_an_odd_sized_clip_comes_out_even(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "odd.mp4", seconds=1, size=(63, 35))
    out = tmp_path / "cut.mp4"
    cut_clip(clip, out, 0.25, 0.75)
    video = played(out)
    assert (video.width, video.height, video.pix_fmt) == (62, 34, "yuv420p")
    assert len(video.times) == 6


@pytest.mark.parametrize("start", [0.0, 0.5], ids=["copy", "encode"])
def test_sound_that_starts_late_keeps_its_place(tmp_path: Path, start: float) -> None:
    """A tone from 1 s is heard 1 - start seconds into the cut, not at its start."""
    clip = make_clip(tmp_path / "quiet.mp4", seconds=3, audio_from=1.0)
    out = tmp_path / "cut.mp4"
    cut_clip(clip, out, start, 2.5)
    samples, rate = audio_samples(out)
    loud = np.flatnonzero(np.abs(samples) > 0.1)
    with av.open(str(out)) as inp:
        first_audio = next(inp.decode(audio=0)).time or 0.0
    assert abs(first_audio + loud[0] / rate - (1 - start)) < 0.05


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        (math.nan, 2, "finite"),
        (0, math.inf, "finite"),
        (-1, 2, "before the clip's start"),
        (2, 2, "empty"),
        (2, 1, "empty"),
        (3, 4, "past the clip's end"),
        (1, 3.5, "past the clip's end"),
        (1.0, 1.05, "fewer than two frames"),
    ],
)
def test_a_span_the_clip_does_not_hold_is_refused_before_anything_is_written(
    tmp_path: Path, counter: Path, start: float, end: float, words: str
) -> None:
    out = tmp_path / "cut.mp4"
    with pytest.raises(InvalidInput, match=words):
        cut_clip(counter, out, start, end)
    assert list(tmp_path.iterdir()) == []


def test_the_check_takes_one_frame_of_slack_at_the_end_and_refuses_non_numbers() -> None:
    assert check_trim(0, 3.05, 3.0, slack=1 / FPS) == (0.0, 3.0)
    with pytest.raises(InvalidInput, match="past the clip's end"):
        check_trim(0, 3.05, 3.0)
    for bad in ("1", True, None):
        with pytest.raises(InvalidInput, match="finite number"):
            check_trim(bad, 2, 3)  # type: ignore[arg-type]


def test_an_end_a_hair_past_the_last_frame_cuts_to_the_end(tmp_path: Path, counter: Path) -> None:
    out = tmp_path / "cut.mp4"
    cut = cut_clip(counter, out, 2, 3.04)
    assert indices(out) == list(range(24, 36)) and cut.copied


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"hello, not a video", "not a video"), (b"<!doctype html><html></html>", "HTML")],
)
def test_what_is_not_a_video_is_refused(tmp_path: Path, content: bytes, words: str) -> None:
    src = tmp_path / "fake.mp4"
    src.write_bytes(content)
    with pytest.raises(InvalidInput, match=words):
        cut_clip(src, tmp_path / "cut.mp4", 0, 1)
    assert not (tmp_path / "cut.mp4").exists()


def test_sound_without_a_picture_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    sound = tmp_path / "sound.mp4"
    with av.open(str(sound), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 44100, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(InvalidInput, match="no video stream"):
        cut_clip(sound, tmp_path / "cut.mp4", 0, 1)
    with pytest.raises(InvalidInput, match="does not exist"):
        cut_clip(tmp_path / "gone.mp4", tmp_path / "cut.mp4", 0, 1)


def test_a_truncated_clip_is_refused_as_damaged(tmp_path: Path, counter: Path) -> None:
    """Its index (at the end, as encoders write it) is gone: refused, naming what it looked like."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(counter.read_bytes()[: counter.stat().st_size // 2])
    with pytest.raises(InvalidInput, match="The video to cut looks like an MP4/MOV video but is damaged"):
        cut_clip(broken, tmp_path / "cut.mp4", 0.5, 1.5)
    assert not (tmp_path / "cut.mp4").exists()
