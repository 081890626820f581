"""Quotes price what the model will process: the video stream's own length, from its first frame."""

from __future__ import annotations

from pathlib import Path

import pytest

from aleph_mcp.edits.preflight import probe_bytes_or_file, probe_file
from aleph_mcp.pricing.catalog import quote

from .media import make_clip


def test_quotes_price_the_video_from_its_first_frame(inputs: Path) -> None:
    """A 2-second video starting at 3 s next to sound from 0 is priced as 2 s, not the container's 5 s."""
    clip = make_clip(inputs / "offset.mp4", seconds=2, start=3)
    with_sound = make_clip(inputs / "offset-tone.mp4", seconds=2, start=3, audio_from=0)
    assert probe_bytes_or_file(str(clip), None).duration == pytest.approx(2, abs=0.01)
    assert probe_bytes_or_file(str(with_sound), None).duration == pytest.approx(2, abs=0.01)


async def test_an_offset_clip_is_quoted_for_its_own_seconds_within_the_window(inputs: Path) -> None:
    """gen4_aleph bills 2 s for a 2 s video after 3 s of sound; 7 s of video still bill the 5 s cap."""
    short = await probe_file(make_clip(inputs / "short.mp4", seconds=2, start=3, audio_from=0))
    long = await probe_file(make_clip(inputs / "long.mp4", seconds=7, start=3, audio_from=0))
    assert quote("runway", "gen4_aleph", short.duration).billed_seconds == pytest.approx(2, abs=0.01)
    assert quote("runway", "gen4_aleph", long.duration).billed_seconds == 5.0
