"""The before/after contact sheet: a small JPEG whose top row is the input and bottom row the output, at
the same moments, upright, and clear refusals for what is not a video."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from aleph_mcp.errors import InvalidInput
from aleph_mcp.media.compare import GAP, MAX_BYTES, contact_sheet, sheet_times, tile_size
from aleph_mcp.providers.local.render import render
from aleph_mcp.providers.local.words import parse_prompt

from .media import make_clip, make_counter_clip

FPS = 12


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 7-second counter clip and the local engine's inverted first 5 seconds of it."""
    folder = tmp_path_factory.mktemp("compare")
    before = make_counter_clip(folder / "before.mp4", seconds=7, fps=FPS, size=(64, 36))
    after = folder / "after.mp4"
    render(before, after, parse_prompt("invert"))
    return before, after


def decoded(path: Path) -> list[tuple[float, np.ndarray]]:
    with av.open(str(path)) as inp:
        return [(float(f.time or 0), f.to_ndarray(format="rgb24")) for f in inp.decode(video=0)]


def tiles(sheet: Image.Image, columns: int, size: tuple[int, int]) -> list[list[np.ndarray]]:
    picture = np.asarray(sheet.convert("RGB")).astype(float)
    width, height = size
    return [
        [
            picture[
                GAP + row * (height + GAP) : GAP + row * (height + GAP) + height,
                GAP + column * (width + GAP) : GAP + column * (width + GAP) + width,
            ]
            for column in range(columns)
        ]
        for row in range(2)
    ]


def assert_row_shows(
    row: list[np.ndarray], frames: list[tuple[float, np.ndarray]], times: list[float]
) -> None:
    """Tile k is the frame nearest times[k]: its mean colour is that frame's, and no other frame of the
    clip matches its pixels better."""
    step = frames[1][0] - frames[0][0]
    for tile, at in zip(row, times, strict=True):
        wanted = next(i for i, (t, _) in enumerate(frames) if t - frames[0][0] >= at - step / 2 - 1e-6)
        assert np.abs(tile.mean(axis=(0, 1)) - frames[wanted][1].mean(axis=(0, 1))).max() < 5
        size = (tile.shape[1], tile.shape[0])
        errors = [
            np.abs(np.asarray(Image.fromarray(f).resize(size, Image.Resampling.BILINEAR)) - tile).mean()
            for _, f in frames
        ]
        assert int(np.argmin(errors)) == wanted


def test_the_top_row_is_the_input_and_the_bottom_row_the_output_at_the_same_moments(
    tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    before, after = pair
    out = contact_sheet(before, after, tmp_path / "sheet.jpg")
    assert out == tmp_path / "sheet.jpg" and out.stat().st_size < MAX_BYTES
    with Image.open(out) as sheet:
        assert sheet.format == "JPEG" and sheet.width <= 1024
        size = tile_size(64, 36, 4)
        assert sheet.size == (4 * (size[0] + GAP) + GAP, 2 * (size[1] + GAP) + GAP)
        top, bottom = tiles(sheet, 4, size)
    times = sheet_times(7, 5, 4)  # the output is the first 5 s: both rows show moments of those
    assert times == [0.625, 1.875, 3.125, 4.375]
    assert_row_shows(top, decoded(before), times)
    assert_row_shows(bottom, decoded(after), times)
    assert abs(top[0].mean() + bottom[0].mean() - 255) < 10  # the output is the input inverted


def test_the_number_of_columns_is_the_callers_within_limits(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    before, after = pair
    with Image.open(contact_sheet(before, after, tmp_path / "two.jpg", columns=2)) as sheet:
        size = tile_size(64, 36, 2)
        assert sheet.width == 2 * (size[0] + GAP) + GAP
        top, _ = tiles(sheet, 2, size)
    assert_row_shows(top, decoded(before), sheet_times(7, 5, 2))
    for bad in (0, 9, True, 2.5):
        with pytest.raises(InvalidInput, match="columns must be a whole number from 1 to 8"):
            contact_sheet(before, after, tmp_path / "bad.jpg", columns=bad)  # type: ignore[arg-type]
    assert not (tmp_path / "bad.jpg").exists()


def test_an_output_of_another_shape_is_letterboxed_into_the_inputs_tile(
    tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    """A 9:16 output of a 16:9 input: its tiles keep their shape, centred between dark bars."""
    before = pair[0]
    after = tmp_path / "tall.mp4"
    render(before, after, parse_prompt("invert"), aspect_ratio="9:16")
    with Image.open(contact_sheet(before, after, tmp_path / "sheet.jpg")) as sheet:
        size = tile_size(64, 36, 4)
        _, bottom = tiles(sheet, 4, size)
    frames = decoded(after)
    inner = round(size[1] * frames[0][1].shape[1] / frames[0][1].shape[0])  # the picture's width in the tile
    left = (size[0] - inner) // 2
    for tile in bottom:
        assert tile[:, : left - 3].mean() < 40 and tile[:, left + inner + 3 :].mean() < 40
    picture = bottom[0][:, left + 2 : left + inner - 2]
    wanted = next(f for t, f in frames if t >= 0.625 - 1 / 24 - 1e-6)
    assert np.abs(picture.mean(axis=(0, 1)) - wanted.mean(axis=(0, 1))).max() < 8


def test_a_phone_clip_is_shown_upright(tmp_path: Path) -> None:
    """Stored 160x96 with a -90 display matrix: a player shows it 96 wide, 160 tall, and so does the sheet."""
    before = make_clip(tmp_path / "phone.mp4", seconds=2, rotation=-90)
    after = tmp_path / "after.mp4"
    render(before, after, parse_prompt("mirror"))  # the local engine turns it upright
    with Image.open(contact_sheet(before, after, tmp_path / "sheet.jpg")) as sheet:
        size = tile_size(96, 160, 4)
        assert size[1] > size[0]
        top, bottom = tiles(sheet, 4, size)
    upright = np.rot90(make_rgb_of_first_frame(before), k=-1)  # clockwise, as the player turns it
    expected = np.asarray(Image.fromarray(upright).resize(size, Image.Resampling.BILINEAR)).astype(float)
    assert np.abs(top[0] - expected).mean() < 12
    assert np.abs(bottom[0][:, ::-1] - top[0]).mean() < 12  # the output is the upright input mirrored


def make_rgb_of_first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as inp:
        return next(inp.decode(video=0)).to_ndarray(format="rgb24")


def test_a_busy_large_picture_still_makes_a_small_sheet(tmp_path: Path) -> None:
    """Noise is the worst case for JPEG: the sheet steps its quality down to stay under the limit."""
    clip = tmp_path / "noise.mp4"
    rng = np.random.default_rng(7)
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for n in range(12):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (360, 640, 3), np.uint8), format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    out_path = contact_sheet(clip, clip, tmp_path / "sheet.jpg")
    assert out_path.stat().st_size <= MAX_BYTES
    with Image.open(out_path) as sheet:
        assert sheet.width <= 1024


@pytest.mark.parametrize("which", ["before", "after"])
def test_what_is_not_a_video_is_refused_naming_which(
    tmp_path: Path, pair: tuple[Path, Path], which: str
) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"<!doctype html><p>expired link</p>")
    before, after = (fake, pair[1]) if which == "before" else (pair[0], fake)
    what = "input video" if which == "before" else "output video"
    with pytest.raises(InvalidInput, match=f"The {what} is an HTML or XML page"):
        contact_sheet(before, after, tmp_path / "sheet.jpg")
    assert not (tmp_path / "sheet.jpg").exists()


def test_a_file_with_only_sound_is_refused(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    sound = tmp_path / "sound.mp4"
    with av.open(str(sound), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 44100, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(InvalidInput, match="The output video has no video stream"):
        contact_sheet(pair[0], sound, tmp_path / "sheet.jpg")
