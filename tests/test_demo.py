"""`aleph-mcp demo`: the first command after an install edits the package's own sample clip end to end."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import av
import numpy as np


def test_demo_prints_a_played_through_grayscale_mirrored_video_and_its_thumbnail(tmp_path: Path) -> None:
    """The demo exits 0 and its video is the sample, 2 s at 24 fps, black and white and mirrored."""
    done = subprocess.run(
        [sys.executable, "-m", "aleph_mcp", "demo", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    video, thumbnail = Path(lines["video"]), Path(lines["thumbnail"])
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert stream.average_rate == 24
        assert container.duration is not None and abs(container.duration / 1e6 - 2.0) < 1 / 24
    pts = [f.pts if f.pts is not None else -1 for f in frames]
    assert len(frames) == 48 and pts[0] == 0 and all(b > a for a, b in itertools.pairwise(pts))
    first = frames[0].to_ndarray(format="rgb24").astype(int)
    assert np.abs(first[..., 0] - first[..., 2]).mean() < 6  # no colour left
    # The sample's bars run white (left) to blue (right); mirrored and grey, the bright bar is on the right.
    assert first[:, -10:].mean() > first[:, :10].mean() + 100
    with av.open(str(thumbnail)) as still:
        image = next(still.decode(video=0))
        assert image.width > 0 and image.height > 0
