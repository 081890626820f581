"""Write failures are failures: a full archive is retried with backoff up to the deadline, a read-only one
fails the edit at once as archive_write_failed, and the provider's output_url stays in the record.

CI runs as root, where chmod does not stop writes, so the archive's one write hook (`LocalArchive.part_path`,
the temp name of every write) raises the OSError a read-only or full disk gives."""

from __future__ import annotations

import errno
import gc
import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest

from aleph_mcp.app import build_app
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.media.archive import LocalArchive
from aleph_mcp.media.fetch import FetchPolicy
from aleph_mcp.media.transfer import download
from aleph_mcp.providers.local import LocalProvider
from aleph_mcp.store import InMemoryEditStore

from .conftest import make_settings
from .fakes.base import FAKE_VIDEO
from .fakes.runway import FakeRunway
from .test_poller import POLICY, make_rig


class FailingArchive(LocalArchive):
    """An archive whose writes fail with `code` the first `times` times (0: always)."""

    def __init__(self, root: Path, code: int, times: int = 0) -> None:
        super().__init__(root)
        self.code, self.times, self.tried = code, times, 0

    def part_path(self, dest: Path) -> Path:
        self.tried += 1
        if self.times == 0 or self.tried <= self.times:
            raise OSError(self.code, "injected", str(dest))
        return super().part_path(dest)


async def test_a_read_only_archive_fails_the_edit_at_once_and_keeps_the_output_url(tmp_path: Path) -> None:
    """EROFS: no retry can help; archive_write_failed with the URL the person can still fetch."""
    fake = FakeRunway(steps=("succeeded",))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        rig.poller.archiver.archive = FailingArchive(tmp_path / "archive", errno.EROFS)
        edit = await rig.submit()
        done = await rig.step(edit.edit_id)
    assert done.status == "failed" and done.error_code == "archive_write_failed"
    assert done.output_url is not None and done.output_url in (done.error_message or "")
    assert done.local_path is None


async def test_a_full_archive_is_retried_with_backoff_and_succeeds_once_space_frees_up(
    tmp_path: Path,
) -> None:
    """ENOSPC twice, then room: the edit stays running between tries and then succeeds."""
    fake = FakeRunway(steps=("succeeded",))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        full = rig.poller.archiver.archive = FailingArchive(tmp_path / "archive", errno.ENOSPC, times=2)
        edit = await rig.submit()
        first = await rig.step(edit.edit_id)
        assert (
            first.status == "running" and first.next_poll_at is not None and first.next_poll_at > rig.clock()
        )
        await rig.step(edit.edit_id)
        done = await rig.step(edit.edit_id)
    assert done.status == "succeeded" and full.tried > 2 and Path(done.local_path or "").is_file()


async def test_a_disk_that_stays_full_fails_the_edit_at_its_deadline_as_archive_write_failed(
    tmp_path: Path,
) -> None:
    """Still no room at the deadline: archive_write_failed (not timeout), output_url kept."""
    fake = FakeRunway(steps=("succeeded",))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        rig.poller.archiver.archive = FailingArchive(tmp_path / "archive", errno.ENOSPC)
        edit = await rig.submit()
        await rig.step(edit.edit_id)
        rig.clock.advance(POLICY.edit_timeout + 1)
        done = await rig.step(edit.edit_id)
    assert done.status == "failed" and done.error_code == "archive_write_failed"
    assert done.output_url is not None


async def test_a_local_result_is_kept_once_its_job_folder_goes_after_archiving(
    tmp_path: Path, clip: Path
) -> None:
    """The job folder (its input copy and output) is removed once the video is in the archive."""
    settings = make_settings(tmp_path, poll_interval=0.01, poll_max_interval=0.02)
    async with httpx2.AsyncClient() as http:
        provider = LocalProvider(settings.data_dir / "local-jobs")
        app = build_app(settings, InMemoryEditStore(), http, {"local": provider})
        edit, _ = await app.service.submit(EditArgs(prompt="mirror", video=str(clip), provider="local"))
        with anyio.fail_after(30):
            while not (current := await app.service.get(edit.edit_id)).is_terminal:
                await app.poller.poll_once()
                await anyio.sleep(0.01)
    assert current.status == "succeeded" and Path(current.local_path or "").is_file()
    assert list((settings.data_dir / "local-jobs").iterdir()) == []
    assert list((settings.data_dir / "inputs").iterdir()) == []


class GzipRunway(FakeRunway):
    """A file host that compresses the video on the wire (Content-Encoding: gzip)."""

    def serve_file(self, path: str) -> httpx2.Response:
        if path.endswith(".mp4"):
            body = gzip.compress(self.video_bytes)
            return httpx2.Response(200, content=body, headers={"content-encoding": "gzip"})
        return super().serve_file(path)


async def test_a_compressed_download_is_archived_decoded(tmp_path: Path) -> None:
    """Raw copying is for identity bodies only: a gzip-encoded result lands as the video, not as gzip."""
    fake = GzipRunway(steps=("succeeded",))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        edit = await rig.submit()
        done = await rig.step(edit.edit_id)
    assert done.status == "succeeded", done.error_message
    assert Path(done.local_path or "").read_bytes() == FAKE_VIDEO


async def test_no_archive_write_lists_the_archive_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy archive holds many files: a download never globs or lists the folder; a leftover temp file
    of a killed attempt is overwritten, not kept."""
    fake = FakeRunway(steps=("succeeded",))

    def refuse(self: Path, *args: object) -> None:
        raise AssertionError(f"the archive folder was listed: {self}")

    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        (rig.archive.root / ".ed_0001.mp4.part").write_bytes(b"left by a killed attempt")
        monkeypatch.setattr(Path, "glob", refuse)
        monkeypatch.setattr(Path, "iterdir", refuse)
        edit = await rig.submit()
        done = await rig.step(edit.edit_id)
        monkeypatch.undo()
    assert done.status == "succeeded" and Path(done.local_path or "").read_bytes() == FAKE_VIDEO
    assert sorted(p.name for p in rig.archive.root.iterdir()) == [
        f"{edit.edit_id}.mp4",
        f"{edit.edit_id}.thumb.jpg",
    ]


class _StallsAfterTwoMiB(httpx2.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"\0" * (2 * 1024 * 1024)
        await anyio.sleep(30)
        yield b""


async def test_a_cancelled_download_leaves_no_temp_file_and_no_open_file(tmp_path: Path) -> None:
    """A download cancelled midway (a shutdown, a lost lease) cleans up even while being cancelled."""
    archive = LocalArchive(tmp_path / "archive")
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, stream=_StallsAfterTwoMiB()))
    policy = FetchPolicy.trusting(["http://files.test"])
    async with httpx2.AsyncClient(transport=transport) as client:
        with anyio.move_on_after(0.5) as scope:
            await download(
                client,
                "http://files.test/r.mp4",
                archive.video_location("ed_1"),
                archive=archive,
                policy=policy,
            )
    gc.collect()  # an unclosed file would warn (an error in this suite) here
    assert scope.cancelled_caught
    assert list(archive.root.iterdir()) == []
