"""Long clips: windows planned within the limits, and their results stitched back with every frame of the
original exactly once and the original's sound over the whole."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from aleph_mcp.errors import InvalidInput
from aleph_mcp.media.cutting import cut_clip
from aleph_mcp.media.windows import StitchFailed, Window, plan_windows, stitch
from aleph_mcp.providers.local.render import render
from aleph_mcp.providers.local.words import parse_prompt

from .media import audio_samples, chirp_time, indices, make_counter_clip, pitch_at, played

FPS = 12
SECONDS = 14


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_counter_clip(tmp_path_factory.mktemp("long") / "long.mp4", seconds=SECONDS, fps=FPS)


def test_a_fourteen_second_clip_is_three_five_second_windows_sharing_half_a_second() -> None:
    assert plan_windows(14, 5, 0.5, 6) == [Window(0, 0, 5), Window(1, 4.5, 9.5), Window(2, 9, 14)]


def test_a_clip_within_the_window_is_one_window() -> None:
    assert plan_windows(4.2, 5, 0.5, 1) == [Window(0, 0, 4.2)]


@pytest.mark.parametrize("fps", [None, 12, 24, 30, 29.97])
def test_windows_cover_the_clip_within_the_window_sharing_the_overlap(fps: float | None) -> None:
    for tenths in range(51, 301, 7):
        duration = tenths / 10
        windows = plan_windows(duration, 5, 0.5, 10, fps=fps)
        assert windows[0].start == 0 and windows[-1].end == duration
        assert [w.index for w in windows] == list(range(len(windows)))
        assert all(w.duration <= 5 + 1e-9 for w in windows)
        assert all(a.end - b.start >= 0.5 - 1e-9 for a, b in itertools.pairwise(windows))
        fewer = len(windows) - 1  # could not cover it (to a frame: bounds fall on frames)
        assert fewer * 5 - (fewer - 1) * 0.5 < duration + (1 / fps if fps else 0)
        if fps:  # every bound but the clip's own end is a frame's time
            bounds = [w.start for w in windows] + [w.end for w in windows[:-1]]
            assert all(abs(b * fps - round(b * fps)) < 1e-6 for b in bounds)


def test_too_many_windows_are_refused_naming_the_limit_and_the_count() -> None:
    with pytest.raises(InvalidInput, match=r"needs 9 windows, more than the limit of 6"):
        plan_windows(40, 5, 0.5, 6)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((math.nan, 5, 0.5, 6), "finite"),
        ((14, math.inf, 0.5, 6), "finite"),
        ((-1, 5, 0.5, 6), "more than 0"),
        ((14, 0, 0, 6), "more than 0"),
        ((14, 5, 5, 6), "shorter than the window"),
        ((14, 5, -1, 6), "at least 0"),
        ((14, 5, 0.5, 0), "window limit"),
        ((14, 5, 0.5, True), "window limit"),
    ],
)
def test_bad_plans_are_refused(args: tuple[float, float, float, int], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        plan_windows(*args)


def _windows_cut(long_clip: Path, folder: Path) -> tuple[list[Window], list[Path]]:
    windows = plan_windows(SECONDS, 5, 0.5, 6, fps=FPS)
    parts = [folder / f"window{w.index}.mp4" for w in windows]
    for window, part in zip(windows, parts, strict=True):
        cut_clip(long_clip, part, window.start, window.end)
    return windows, parts


def assert_whole(out: Path, original: Path) -> None:
    """Every frame of the original once, in order, stamped n / 12 from 0; the original's sound."""
    assert indices(out) == list(range(SECONDS * FPS))
    video = played(out)
    assert video.times[0] == 0 and np.allclose(np.diff(video.times), 1 / FPS)
    assert abs(video.duration - SECONDS) < 1 / FPS
    assert video.audio is not None and abs(video.audio - SECONDS) < 1 / FPS
    samples, rate = audio_samples(out)
    for at in (0.5, 4.6, 4.75, 9.1, 9.25, 13.5):  # across both overlaps
        assert abs(chirp_time(pitch_at(samples, rate, at)) - at) < 0.05
    source, _ = audio_samples(original)
    middle = slice(rate, 13 * rate)
    assert np.corrcoef(samples[middle], source[middle])[0, 1] > 0.95


def test_windows_cut_and_stitched_as_they_are_give_back_the_clip(tmp_path: Path, long_clip: Path) -> None:
    windows, parts = _windows_cut(long_clip, tmp_path)
    assert [indices(p)[0] for p in parts] == [0, 54, 108]  # they do overlap: 6 frames each seam
    out = stitch(parts, windows, long_clip, tmp_path / "whole.mp4")
    assert out == tmp_path / "whole.mp4"
    assert_whole(out, long_clip)
    assert played(out).codec == "h264"


def test_windows_edited_by_the_local_provider_stitch_into_the_edited_clip(
    tmp_path: Path, long_clip: Path
) -> None:
    """Each window goes through the local engine (black and white); the stitch is the whole clip, grey."""
    windows, cuts = _windows_cut(long_clip, tmp_path)
    parts = [tmp_path / f"edited{w.index}.mp4" for w in windows]
    for cut, part in zip(cuts, parts, strict=True):
        render(cut, part, parse_prompt("black and white"))
    out = stitch(parts, windows, long_clip, tmp_path / "whole.mp4")
    assert_whole(out, long_clip)
    with av.open(str(out)) as inp:
        for frame in inp.decode(video=0):
            picture = frame.to_ndarray(format="rgb24").astype(int)
            assert np.abs(picture[..., 0] - picture[..., 2]).mean() < 6


def test_an_original_whose_timestamps_start_late_gets_its_sound_from_its_first_frame(tmp_path: Path) -> None:
    """The clip's first frame is stamped 2 s; the stitched sound at t is still the clip's at t."""
    clip = make_counter_clip(tmp_path / "late.mp4", seconds=7, fps=FPS, start=2)
    windows = plan_windows(7, 5, 0.5, 6, fps=FPS)
    parts = [tmp_path / f"w{w.index}.mp4" for w in windows]
    for window, part in zip(windows, parts, strict=True):
        cut_clip(clip, part, window.start, window.end)
    out = stitch(parts, windows, clip, tmp_path / "whole.mp4")
    assert indices(out) == list(range(7 * FPS))
    samples, rate = audio_samples(out)
    for at in (0.5, 3.5, 6.5):
        assert abs(chirp_time(pitch_at(samples, rate, at)) - at) < 0.05


@pytest.mark.parametrize(
    "plan", [(7, 3, 0.35), (7, 2.9, 0.3), (7, 1.5, 0.0), (7, 3.1, 1.4)], ids=["a", "b", "no-overlap", "wide"]
)
def test_windows_planned_off_the_frames_still_stitch_every_frame_once(
    tmp_path: Path, plan: tuple[float, float, float]
) -> None:
    """Without `fps`, window bounds fall between frames; cut and stitch snap them alike."""
    clip = make_counter_clip(tmp_path / "seven.mp4", seconds=7, fps=FPS, tone=False)
    windows = plan_windows(*plan, 6)
    assert any(abs(w.start * FPS - round(w.start * FPS)) > 0.1 for w in windows)
    parts = [tmp_path / f"w{w.index}.mp4" for w in windows]
    for window, part in zip(windows, parts, strict=True):
        cut_clip(clip, part, window.start, window.end)
    out = stitch(parts, windows, clip, tmp_path / "whole.mp4")
    assert indices(out) == list(range(7 * FPS))
    assert played(out).audio is None


def _reshaped(src: Path, dst: Path, size: tuple[int, int]) -> Path:
    """`src`'s frames at another size, without sound (as a model may send a window back)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for n, frame in enumerate(inp.decode(video=0)):
            picture = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            picture.pts, picture.time_base = n, Fraction(1, FPS)
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    return dst


def test_silent_results_of_other_sizes_are_scaled_to_the_first_and_get_the_original_sound(
    tmp_path: Path, long_clip: Path
) -> None:
    windows, cuts = _windows_cut(long_clip, tmp_path)
    sizes = [(64, 36), (128, 72), (96, 54)]
    parts = [
        _reshaped(c, tmp_path / f"sized{i}.mp4", s) for i, (c, s) in enumerate(zip(cuts, sizes, strict=True))
    ]
    assert played(parts[1]).audio is None and played(parts[1]).width == 128
    out = stitch(parts, windows, long_clip, tmp_path / "whole.mp4")
    assert (played(out).width, played(out).height) == (64, 36)
    assert_whole(out, long_clip)


def test_a_result_that_stops_short_of_its_seam_fails_naming_the_window(
    tmp_path: Path, long_clip: Path
) -> None:
    windows, parts = _windows_cut(long_clip, tmp_path)
    cut_clip(long_clip, parts[1], windows[1].start, windows[1].start + 3)
    with pytest.raises(StitchFailed, match=r"Window 2's result holds only 3\.00 s of its 5\.00 s"):
        stitch(parts, windows, long_clip, tmp_path / "whole.mp4")
    assert not (tmp_path / "whole.mp4").exists()


def test_a_last_window_that_stops_short_fails_too(tmp_path: Path, long_clip: Path) -> None:
    windows, parts = _windows_cut(long_clip, tmp_path)
    cut_clip(long_clip, parts[2], windows[2].start, windows[2].end - 1)
    with pytest.raises(StitchFailed, match="Window 3's result"):
        stitch(parts, windows, long_clip, tmp_path / "whole.mp4")


def test_a_result_that_is_not_a_video_or_is_missing_fails_clearly(tmp_path: Path, long_clip: Path) -> None:
    windows, parts = _windows_cut(long_clip, tmp_path)
    parts[1].write_bytes(b"<html>expired</html>")
    with pytest.raises(StitchFailed, match="result of window 2 is an HTML or XML page"):
        stitch(parts, windows, long_clip, tmp_path / "whole.mp4")
    parts[1].unlink()
    with pytest.raises(StitchFailed, match="Window 2's result is missing"):
        stitch(parts, windows, long_clip, tmp_path / "whole.mp4")
    with pytest.raises(StitchFailed, match="2 results were given for 3 windows"):
        stitch(parts[:2], windows, long_clip, tmp_path / "whole.mp4")
    with pytest.raises(StitchFailed, match="not in order, or leave a gap"):
        stitch(parts, windows[::-1], long_clip, tmp_path / "whole.mp4")
    gap = [windows[0], Window(1, 6, 9.5), windows[2]]
    with pytest.raises(StitchFailed, match="not in order, or leave a gap"):
        stitch(parts, gap, long_clip, tmp_path / "whole.mp4")
    assert not (tmp_path / "whole.mp4").exists()
