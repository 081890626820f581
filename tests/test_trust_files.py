"""Local files are checked and used as the same file, and media is opened as media: a symlink swapped in at
any step, a playlist naming a file outside the allowed folder, or a picture passed as a video never gets
another file's bytes to a provider, an upload or a render."""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import av
import httpx2
import numpy as np
import pytest

import aleph_mcp.edits.intake as intake_module
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.edits.service import EditService
from aleph_mcp.errors import InvalidInput
from aleph_mcp.providers.local import LocalProvider
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.store import InMemoryEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.base import FAKE_IMAGE
from .fakes.runway import FakeRunway
from .media import GRAY, first_frame, make_clip

BASE = "http://fake.invalid"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A video outside every allowed folder, gray all over: its pixels would show if it were read."""
    outside = tmp_path / "outside"
    outside.mkdir()
    return make_clip(outside / "secret.mp4", halves=(GRAY, GRAY))


def swap(path: Path, target: Path) -> None:
    """Replace `path` by a symlink to `target`, as an attacker racing the server would."""
    path.unlink()
    path.symlink_to(target)


def runway_service(tmp_path: Path, http: httpx2.AsyncClient) -> EditService:
    settings = make_settings(tmp_path, runway_api_key=TEST_KEY, runway_base_url=BASE)
    provider = RunwayProvider(http, api_key=TEST_KEY, base_url=BASE)
    return EditService(InMemoryEditStore(), {"runway": provider}, settings, owner="t")


def sent_bytes(fake: FakeRunway) -> list[bytes]:
    return [r.body for r in fake.requests if isinstance(r.body, bytes)]


def wrap_after(monkeypatch: pytest.MonkeyPatch, name: str, then: Callable[[], None]) -> None:
    """Make intake's `name` run `then` right after it returns (the race window after that step)."""
    real = getattr(intake_module, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        then()
        return result

    monkeypatch.setattr(intake_module, name, wrapped)


async def test_a_symlink_swapped_in_after_validation_is_refused_before_anything_is_read(
    tmp_path: Path, clip: Path, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked as a file, opened as a symlink: the open refuses it and nothing is sent."""
    wrap_after(monkeypatch, "validate_args", lambda: swap(clip, secret))
    fake = FakeRunway(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        service = runway_service(tmp_path, http)
        with pytest.raises(InvalidInput, match="symlink"):
            await service.submit(EditArgs(prompt="snow", video=str(clip), provider="runway"))
    assert fake.requests == []


async def test_a_folder_swapped_for_a_symlink_after_validation_is_refused(
    tmp_path: Path, inputs: Path, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last component is a file, but the folder above it now leads outside: refused as changed."""
    folder = inputs / "shots"
    folder.mkdir()
    clip = make_clip(folder / "secret.mp4")

    def swap_folder() -> None:
        clip.unlink()
        folder.rmdir()
        folder.symlink_to(secret.parent)

    wrap_after(monkeypatch, "validate_args", swap_folder)
    fake = FakeRunway(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        with pytest.raises(InvalidInput, match="changed while it was being opened"):
            await runway_service(tmp_path, http).submit(EditArgs(prompt="snow", video=str(clip)))
    assert fake.requests == []


async def test_a_symlink_swapped_in_before_the_probe_or_the_upload_never_reaches_the_provider(
    tmp_path: Path, clip: Path, secret: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Swapped after the private copy (before the probe), then the upload: only the checked bytes go out."""
    original = clip.read_bytes()
    wrap_after(monkeypatch, "private_copy", lambda: swap(clip, secret))
    fake = FakeRunway(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        service = runway_service(tmp_path, http)
        intake = await service.check(EditArgs(prompt="snow", video=str(clip), provider="runway"))
        assert intake.video.display == str(clip)
        edit, _ = await service.start(intake)
    assert edit.provider_task_id is not None
    assert [u["content"] for u in fake.uploads] == [original]
    assert not any(secret.read_bytes() in body for body in sent_bytes(fake))
    assert not (tmp_path / "data" / "inputs").exists() or list((tmp_path / "data" / "inputs").iterdir()) == []


async def test_a_symlink_swapped_in_before_a_re_render_does_not_reach_the_render(
    tmp_path: Path, clip: Path, secret: Path
) -> None:
    """A local job re-rendered after a crash reads its own copy, not the path it was once given."""
    jobs = tmp_path / "jobs"
    provider = LocalProvider(jobs)
    service = EditService(InMemoryEditStore(), {"local": provider}, make_settings(tmp_path), owner="t")
    edit, _ = await service.submit(EditArgs(prompt="mirror", video=str(clip), provider="local"))
    task = edit.provider_task_id
    assert task is not None
    await wait_rendered(provider, task)
    swap(clip, secret)
    job_file = jobs / task / "job.json"
    job = json.loads(job_file.read_text()) | {"status": "running", "heartbeat": 0, "pid": None}
    job_file.write_text(json.dumps(job))
    provider.output_file(task).unlink()  # the crash lost the result: it must be rendered again
    await wait_rendered(provider, task)
    left = first_frame(provider.output_file(task))[48, 10]
    assert abs(int(left[2]) - int(left[0])) > 100  # red and blue halves, never the secret's gray


async def wait_rendered(provider: LocalProvider, task: str) -> None:
    with anyio.fail_after(30):
        while (await provider.poll(task)).status != "succeeded":
            await anyio.sleep(0.02)


@contextmanager
def watched_fifo(path: Path) -> Iterator[list[str]]:
    """A FIFO at `path`; the list fills if anything ever opens it for reading (it is then unblocked)."""
    os.mkfifo(path)
    opened: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # succeeds only while a reader has it
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader
                    raise
                time.sleep(0.005)
                continue
            opened.append(str(path))
            os.close(fd)  # the reader sees the end of the file and goes on

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        stop.set()
        thread.join(timeout=5)


@pytest.mark.parametrize("name", ["clip.m3u8", "clip.mp4"])
async def test_a_playlist_in_an_allowed_folder_never_opens_the_file_it_names_outside(
    tmp_path: Path, inputs: Path, name: str
) -> None:
    """An HLS playlist (however named) is refused before FFmpeg opens it; its outside segment stays unread."""
    outside = tmp_path / "outside"
    outside.mkdir()
    segment = outside / "segment.ts"
    playlist = inputs / name
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{segment}\n#EXT-X-ENDLIST\n")
    fake = FakeRunway(TEST_KEY)
    with watched_fifo(segment) as opened:
        async with httpx2.AsyncClient(transport=fake.transport()) as http:
            with anyio.fail_after(10), pytest.raises(InvalidInput, match="HLS playlist"):
                await runway_service(tmp_path, http).submit(EditArgs(prompt="snow", video=str(playlist)))
    assert opened == [] and fake.requests == []


async def test_a_jpeg_given_as_the_video_is_refused_before_anything_is_sent(
    tmp_path: Path, inputs: Path
) -> None:
    """A picture is not a video, even named .mp4."""
    picture = inputs / "holiday.mp4"
    with av.open(str(inputs / "holiday.jpg"), "w", format="image2") as out:
        stream = out.add_stream("mjpeg")
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuvj420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), dtype=np.uint8), format="rgb24")
        out.mux(stream.encode(frame.reformat(format="yuvj420p")))
        out.mux(stream.encode(None))
    (inputs / "holiday.jpg").rename(picture)
    fake = FakeRunway(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        with pytest.raises(InvalidInput, match="JPEG image, not a video"):
            await runway_service(tmp_path, http).submit(EditArgs(prompt="snow", video=str(picture)))
    assert fake.requests == []


async def test_a_one_frame_video_is_refused_as_a_still_picture(tmp_path: Path, inputs: Path) -> None:
    """An MP4 holding a single frame has no motion to edit: refused before anything is sent."""
    still = make_clip(inputs / "still.mp4", seconds=1 / 12)
    fake = FakeRunway(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        with pytest.raises(InvalidInput, match="still picture"):
            await runway_service(tmp_path, http).submit(EditArgs(prompt="snow", video=str(still)))
    assert fake.requests == []


async def test_a_reference_image_that_is_a_video_or_a_playlist_is_refused(
    tmp_path: Path, clip: Path, inputs: Path
) -> None:
    """reference_image is checked as an image by the same allowlist; a real PNG passes."""
    (inputs / "style.png").write_bytes(FAKE_IMAGE)
    (inputs / "style.m3u8").write_text("#EXTM3U\n#EXTINF:1,\n/etc/passwd\n")
    settings = make_settings(tmp_path, runway_api_key=TEST_KEY)
    async with httpx2.AsyncClient(transport=FakeRunway(TEST_KEY).transport()) as http:
        provider = RunwayProvider(http, api_key=TEST_KEY, base_url=BASE)
        service = EditService(InMemoryEditStore(), {"runway": provider}, settings, owner="t")
        for bad in (clip, inputs / "style.m3u8"):
            args = EditArgs("snow", str(clip), "runway", "gen4_aleph", reference_image=str(bad))
            with pytest.raises(InvalidInput, match="not an image"):
                await service.check(args)
        good = await service.check(
            EditArgs("snow", str(clip), "runway", "gen4_aleph", reference_image=str(inputs / "style.png"))
        )
        good.discard()
