"""The `local` provider's output is a correct video: timestamps, length, rotation, sizes, sound, format."""

from __future__ import annotations

import struct
from pathlib import Path

import anyio
import numpy as np
import pytest

from aleph_mcp.models import EditRequest
from aleph_mcp.providers.local import LocalProvider
from aleph_mcp.providers.local.render import render
from aleph_mcp.providers.local.words import parse_prompt

from .media import LEFT, RIGHT, first_frame, make_clip, played


def edited(
    tmp_path: Path, clip: Path, prompt: str = "", watermark: str | None = None, name: str = "out.mp4"
) -> tuple[Path, list[str]]:
    out = tmp_path / name
    notes = render(clip, out, parse_prompt(prompt), watermark=watermark)
    return out, notes


def assert_plays(path: Path, seconds: float, fps: int) -> None:
    """Frames at exactly 1/fps apart from 0, for `seconds` (within one frame)."""
    video = played(path)
    assert video.rate == fps
    assert video.times[0] == 0
    assert np.allclose(np.diff(video.times), 1 / fps)
    assert abs(video.duration - seconds) <= 1 / fps
    assert abs(len(video.times) / fps - seconds) <= 1 / fps


@pytest.mark.parametrize(("prompt", "factor"), [("invert", 1), ("slow motion", 2), ("speed up", 0.5)])
def test_timestamps_rise_from_zero_at_the_source_rate_for_the_processed_length(
    tmp_path: Path, inputs: Path, prompt: str, factor: float
) -> None:
    """Plain, slow-motion and sped-up edits play at 12 fps for 2 s, 4 s and 1 s."""
    clip = make_clip(inputs / "two.mp4", seconds=2)
    out, _ = edited(tmp_path, clip, prompt)
    assert_plays(out, 2 * factor, 12)


def test_the_five_second_window_counts_from_the_first_frame(tmp_path: Path, inputs: Path) -> None:
    """A 7-second clip whose first frame is at 3 s comes back as 5 full seconds starting at 0."""
    clip = make_clip(inputs / "late.mp4", seconds=7, start=3)
    assert played(clip).times[0] == 3
    out, _ = edited(tmp_path, clip, "mirror")
    assert_plays(out, 5, 12)


@pytest.mark.parametrize(
    ("name", "rotation", "tag"), [("phone.mp4", -90, None), ("tagged.mkv", 0, 90)], ids=["matrix", "tag"]
)
def test_a_phone_clip_comes_out_upright_without_rotation_metadata(
    tmp_path: Path, inputs: Path, name: str, rotation: int, tag: int | None
) -> None:
    """A 160x96 clip shown turned 90 degrees clockwise comes out 96x160: red on top, the square top right."""
    clip = make_clip(inputs / name, rotation=rotation, rotate_tag=tag)
    assert played(clip).rotated == (tag is None)
    out, _ = edited(tmp_path, clip)
    video = played(out)
    assert (video.width, video.height) == (96, 160) and not video.rotated
    frame = first_frame(out).astype(int)
    assert np.abs(frame[60, 48] - LEFT).max() < 25 and np.abs(frame[120, 48] - RIGHT).max() < 25
    assert frame[4:10, 82:90].min() > 200  # the square, drawn near the source's top-left corner


def test_odd_sizes_come_out_even_with_a_watermark(tmp_path: Path, inputs: Path) -> None:
    """A 321x241 clip with a watermark renders 320x240 yuv420p, text drawn bottom right."""
    clip = make_clip(inputs / "odd.mp4", size=(321, 241))
    plain, _ = edited(tmp_path, clip)
    marked, _ = edited(tmp_path, clip, watermark="aleph-mcp", name="marked.mp4")
    video = played(marked)
    assert (video.width, video.height, video.pix_fmt) == (320, 240, "yuv420p")
    diff = np.abs(first_frame(marked).astype(int) - first_frame(plain).astype(int)).max(axis=2)
    changed = np.argwhere(diff > 40)
    assert len(changed) > 50 and changed[:, 0].min() > 240 * 3 // 4 and changed[:, 1].min() > 320 // 2


@pytest.mark.parametrize(("prompt", "factor"), [("invert", 1), ("slow motion", 2), ("speed up", 0.5)])
def test_the_sound_is_kept_and_retimed_with_the_picture(
    tmp_path: Path, inputs: Path, prompt: str, factor: float
) -> None:
    """A clip with a tone keeps an audio stream as long as the video at every speed; retiming is noted."""
    clip = make_clip(inputs / "tone.mp4", seconds=2, audio_from=0)
    out, notes = edited(tmp_path, clip, prompt)
    video = played(out)
    assert video.audio is not None and abs(video.audio - video.duration) < 0.1
    assert abs(video.duration - 2 * factor) <= 1 / 12
    assert (notes == []) if factor == 1 else any("atempo" in note for note in notes)


def test_a_late_start_keeps_the_sound_of_the_window(tmp_path: Path, inputs: Path) -> None:
    """Picture from 3 s to 10 s and sound from 0 s: the sound is cut to the picture's 5 s window."""
    clip = make_clip(inputs / "late-tone.mp4", seconds=7, start=3, audio_from=0)
    video = played(edited(tmp_path, clip)[0])
    assert video.audio is not None and abs(video.audio - 5) < 0.1 and abs(video.duration - 5) <= 1 / 12


def top_level_boxes(path: Path) -> list[str]:
    data, boxes, offset = path.read_bytes(), [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append(kind.decode())
        offset += size
    return boxes


def test_the_output_is_h264_yuv420p_with_its_index_first(tmp_path: Path, clip: Path) -> None:
    """Browsers and phones start playing at once: H.264 4:2:0, the moov box before the media data."""
    out, _ = edited(tmp_path, clip, "sepia")
    video = played(out)
    assert (video.codec, video.pix_fmt) == ("h264", "yuv420p")
    boxes = top_level_boxes(out)
    assert boxes.index("moov") < boxes.index("mdat")


async def test_the_job_notes_say_how_the_sound_was_retimed(tmp_path: Path, inputs: Path) -> None:
    """A finished slow-motion job with sound reports the atempo retime next to the applied effects."""
    clip = make_clip(inputs / "tone.mp4", audio_from=0)
    provider = LocalProvider(tmp_path / "jobs")
    task_id = await provider.submit(EditRequest(prompt="slow motion", video=str(clip), model="ffmpeg"))
    with anyio.fail_after(30):
        while (status := await provider.poll(task_id)).status in ("queued", "running"):
            await anyio.sleep(0.05)
    assert status.notes is not None and "slow motion" in status.notes and "atempo" in status.notes
