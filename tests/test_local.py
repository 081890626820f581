"""The offline `local` provider: real filters with checkable pixels, a real background job, the main job."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import anyio
import av
import numpy as np
import pytest

from aleph_mcp.errors import CannotCancel
from aleph_mcp.models import EditRequest
from aleph_mcp.providers.base import local_result_url
from aleph_mcp.providers.local import LocalProvider
from aleph_mcp.providers.local.render import crop_for, render
from aleph_mcp.providers.local.words import parse_prompt

from .media import LEFT, duration_and_frames, first_frame, make_clip, played

ROOT = Path(__file__).resolve().parents[1]


def rendered(tmp_path: Path, prompt: str, clip: Path, ratio: str | None = None) -> Path:
    out = tmp_path / "out.mp4"
    render(clip, out, parse_prompt(prompt), aspect_ratio=ratio)
    return out


def test_black_and_white_gives_equal_channels(tmp_path: Path, clip: Path) -> None:
    """Grayscale output: R, G and B agree on every pixel (within codec noise)."""
    frame = first_frame(rendered(tmp_path, "make it black and white", clip)).astype(int)
    assert np.abs(frame[..., 0] - frame[..., 1]).max() <= 3
    assert np.abs(frame[..., 1] - frame[..., 2]).max() <= 3
    assert np.abs(first_frame(clip)[..., 0].astype(int) - first_frame(clip)[..., 2]).max() > 100


def test_mirror_flips_the_columns(tmp_path: Path, clip: Path) -> None:
    """Mirroring puts the red half on the right."""
    frame = first_frame(rendered(tmp_path, "mirror it", clip))
    height, width, _ = frame.shape
    right = frame[height // 2, width - 10]
    assert abs(int(right[0]) - LEFT[0]) < 25 and abs(int(right[2]) - LEFT[2]) < 25


def test_aspect_ratio_centre_crops(tmp_path: Path, clip: Path) -> None:
    """1:1 crops the 160x96 clip to 96x96."""
    assert first_frame(rendered(tmp_path, "sepia", clip, "1:1")).shape[:2] == (96, 96)
    assert crop_for(1920, 1080, "16:9") is None
    assert crop_for(1920, 1080, "9:16") == (606, 1080)


def test_only_the_first_five_seconds_are_processed(tmp_path: Path, inputs: Path) -> None:
    """A 7-second clip comes back at most 5 seconds long, like the hosted providers."""
    long_clip = make_clip(inputs / "long.mp4", seconds=7, fps=6)
    last, _ = duration_and_frames(rendered(tmp_path, "invert", long_clip))
    assert last < 5.0


def test_slow_motion_doubles_the_frames(tmp_path: Path, clip: Path) -> None:
    """Slow motion repeats frames, so the clip gets twice as long."""
    _, before = duration_and_frames(clip)
    _, after = duration_and_frames(rendered(tmp_path, "slow motion", clip))
    assert after == 2 * before


def test_instructions_it_cannot_do_are_listed_not_dropped() -> None:
    """Unknown clauses are reported, refused ones are left out; phrases spanning 'and' are kept whole."""
    recipe = parse_prompt("black and white, add a dragon; not blurry")
    assert recipe.filters == [("hue", "s=0")]
    assert recipe.not_understood == ["add a dragon"]
    assert recipe.declined == ["blur"]
    assert "not understood" in recipe.describe() and "left out on request: blur" in recipe.describe()


async def wait_done(provider: LocalProvider, task_id: str) -> str:
    with anyio.fail_after(30):
        while (status := (await provider.poll(task_id)).status) in ("queued", "running"):
            await anyio.sleep(0.05)
    return status


async def test_the_job_runs_in_the_background_to_a_result_only_the_local_provider_names(
    tmp_path: Path, clip: Path
) -> None:
    """submit returns at once; polls end with an aleph-local: name for the job, never a file:// URL."""
    provider = LocalProvider(tmp_path / "jobs")
    task_id = await provider.submit(EditRequest(prompt="invert", video=str(clip), model="ffmpeg"))
    assert await wait_done(provider, task_id) == "succeeded"
    final = await provider.poll(task_id)
    assert final.output_url == local_result_url(task_id)
    assert provider.output_file(task_id).is_file()
    assert final.notes is not None and "invert" in final.notes


async def test_a_job_whose_renderer_died_is_rendered_again(tmp_path: Path, clip: Path) -> None:
    """A 'running' job with a stale heartbeat and no live thread is picked up by the next poll."""
    provider = LocalProvider(tmp_path / "jobs")
    job_dir = tmp_path / "jobs" / "local-0123456789abcdef"
    job_dir.mkdir(parents=True)
    job = {
        "status": "running",
        "video": str(clip),
        "input": str(clip),
        "prompt": "mirror",
        "aspect_ratio": None,
        "progress": 0.4,
        "heartbeat": time.time() - 600,
    }
    (job_dir / "job.json").write_text(json.dumps(job))
    assert await wait_done(provider, "local-0123456789abcdef") == "succeeded"


async def test_cancel_stops_a_queued_job_and_refuses_a_finished_one(tmp_path: Path, clip: Path) -> None:
    """Cancelling a finished job is refused; a cancel file ends a running one as cancelled."""
    provider = LocalProvider(tmp_path / "jobs")
    task_id = await provider.submit(EditRequest(prompt="blur", video=str(clip), model="ffmpeg"))
    await wait_done(provider, task_id)
    with pytest.raises(CannotCancel):
        await provider.cancel(task_id)


def test_the_readme_main_job_edits_the_sample_offline(tmp_path: Path) -> None:
    """examples/pipeline.py (what `make demo` runs) produces a grayscale, mirrored MP4 with no key that
    plays as long as the sample, and a thumbnail that is a frame of it."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pipeline.py"), "--data-dir", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    video = Path(next(line for line in result.stdout.splitlines() if line.startswith("video: "))[7:])
    frame = first_frame(video).astype(int)
    assert np.abs(frame[..., 0] - frame[..., 2]).max() <= 3  # grayscale
    source = first_frame(ROOT / "examples" / "sample.mp4").astype(float).mean(axis=2).ravel()
    gray = frame[..., 0].astype(float)
    mirrored = np.corrcoef(gray[:, ::-1].ravel(), source)[0, 1]
    unmirrored = np.corrcoef(gray.ravel(), source)[0, 1]
    assert mirrored > 0.6 and mirrored - unmirrored > 0.5
    video_facts, source_facts = played(video), played(ROOT / "examples" / "sample.mp4")
    assert (video_facts.rate, len(video_facts.times)) == (source_facts.rate, len(source_facts.times))
    assert video_facts.duration == source_facts.duration and np.all(np.diff(video_facts.times) > 0)
    thumbnail = Path(next(line for line in result.stdout.splitlines() if line.startswith("thumbnail: "))[11:])
    still = first_frame(thumbnail).astype(float).mean(axis=2).ravel()
    with av.open(str(video)) as inp:
        frames = [f.to_ndarray(format="gray").astype(float).ravel() for f in inp.decode(video=0)]
    assert still.std() > 30 and max(np.corrcoef(still, f)[0, 1] for f in frames) > 0.95  # one of its frames


def exited_process_id() -> int:
    """The id of a process that has already ended."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)


async def test_a_job_whose_renderer_process_exited_is_rendered_again_at_once(
    tmp_path: Path, clip: Path
) -> None:
    """A fresh heartbeat does not hold things up when the recorded renderer process no longer exists."""
    dead_pid = exited_process_id()
    provider = LocalProvider(tmp_path / "jobs")
    job_dir = tmp_path / "jobs" / "local-00000000000000aa"
    job_dir.mkdir(parents=True)
    job = {
        "status": "running",
        "video": str(clip),
        "input": str(clip),
        "prompt": "mirror",
        "aspect_ratio": None,
        "progress": 0.1,
        "heartbeat": time.time(),
        "pid": dead_pid,
    }
    (job_dir / "job.json").write_text(json.dumps(job))
    with anyio.fail_after(5):  # well under the 15 s heartbeat timeout
        assert await wait_done(provider, "local-00000000000000aa") == "succeeded"
