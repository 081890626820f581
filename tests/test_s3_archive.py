"""The object-store archive against a real S3 API (moto's server on 127.0.0.1): finished videos and their
thumbnails land in the bucket, a download that breaks leaves nothing (no object, no open multipart upload),
resources stream back under the size cap with a presigned link for big files, doctor probes the bucket, and
no edit id or stored location reaches outside the prefix. Some run against both archives."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, MCPError

from aleph_mcp.app import open_archive
from aleph_mcp.cli.doctor import report, run_checks
from aleph_mcp.errors import ArchiveWriteFailed, InvalidInput
from aleph_mcp.media.archive import LocalArchive
from aleph_mcp.media.objectstore import S3Archive, parse_s3_url
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.base import FAKE_VIDEO
from .fakes.krea import FakeKrea
from .fakes.runway import FakeRunway
from .fakes.server import serve_fakes
from .media import make_clip
from .s3 import SECRET, S3Endpoint
from .test_cli import BOUNDED, Cli, cli  # noqa: F401  (the fixture)
from .test_poller import assert_jpeg, make_rig

PREFIX = "team/videos"
BIG = 12 * 1024 * 1024  # more than one multipart part (8 MiB)


def s3_archive(s3: S3Endpoint, bucket: str | None = None) -> tuple[S3Archive, str]:
    name = bucket or s3.bucket()
    return S3Archive.from_url(f"s3://{name}/{PREFIX}", s3.env), name


class _BreaksMidway(httpx2.AsyncByteStream):
    """A body that sends `before` bytes, then loses the connection."""

    def __init__(self, before: int) -> None:
        self.before = before

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        while sent < self.before:
            yield b"\0" * 1024 * 1024
            sent += 1024 * 1024
        raise httpx2.ReadError("connection lost")


class BrokenRunway(FakeRunway):
    def serve_file(self, path: str) -> httpx2.Response:
        if path.endswith(".mp4"):
            return httpx2.Response(200, stream=_BreaksMidway(BIG), headers={"content-type": "video/mp4"})
        return super().serve_file(path)


async def test_a_finished_edits_video_and_thumbnail_land_in_the_bucket(
    s3: S3Endpoint, tmp_path: Path
) -> None:
    """The video byte for byte and a JPEG still, under the prefix; nothing in a local archive folder."""
    fake = FakeRunway(steps=("succeeded",))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        archive, bucket = s3_archive(s3)
        rig.poller.archiver.archive = archive
        edit = await rig.submit()
        done = await rig.step(edit.edit_id)
    assert done.status == "succeeded", done.error_message
    assert done.local_path == f"s3://{bucket}/{PREFIX}/{edit.edit_id}.mp4"
    assert done.thumbnail_path == f"s3://{bucket}/{PREFIX}/{edit.edit_id}.thumb.jpg"
    assert s3.keys(bucket) == [f"{PREFIX}/{edit.edit_id}.mp4", f"{PREFIX}/{edit.edit_id}.thumb.jpg"]
    assert s3.body(bucket, f"{PREFIX}/{edit.edit_id}.mp4") == FAKE_VIDEO
    still = tmp_path / "still.jpg"
    still.write_bytes(s3.body(bucket, f"{PREFIX}/{edit.edit_id}.thumb.jpg"))
    assert_jpeg(still, (8, 8))
    assert rig.files() == set()


async def test_a_poster_frame_is_read_from_the_object_through_ranged_reads(
    s3: S3Endpoint, tmp_path: Path
) -> None:
    """No vendor still: the frame is decoded from the object in the bucket (PyAV over the ranged reader)."""
    clip = make_clip(tmp_path / "result.mp4")
    fake = FakeKrea(steps=("succeeded",), video_bytes=clip.read_bytes())
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        archive, bucket = s3_archive(s3)
        rig.poller.archiver.archive = archive
        edit = await rig.submit()
        done = await rig.step(edit.edit_id)
    assert done.status == "succeeded" and done.thumbnail_path is not None
    still = tmp_path / "still.jpg"
    still.write_bytes(s3.body(bucket, f"{PREFIX}/{edit.edit_id}.thumb.jpg"))
    assert_jpeg(still, (160, 96))


async def test_a_download_that_fails_midway_leaves_no_object_and_no_open_upload(
    s3: S3Endpoint, tmp_path: Path
) -> None:
    """12 MiB in (a part already uploaded), the connection drops: the upload is aborted, the edit retries."""
    fake = BrokenRunway(steps=("succeeded",))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        archive, bucket = s3_archive(s3)
        rig.poller.archiver.archive = archive
        edit = await rig.submit()
        done = await rig.step(edit.edit_id)
    assert done.status == "running" and done.local_path is None and done.poll_failures == 1
    assert s3.keys(bucket) == []
    assert s3.open_uploads(bucket) == []


async def test_a_result_that_is_not_a_video_is_deleted_from_the_bucket(
    s3: S3Endpoint, tmp_path: Path
) -> None:
    """The object is checked once complete; a web page instead of a video fails the edit and is removed."""
    fake = FakeRunway(steps=("succeeded",), video_bytes=b"<!doctype html><p>sign in</p>" * 100)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        archive, bucket = s3_archive(s3)
        rig.poller.archiver.archive = archive
        edit = await rig.submit()
        done = await rig.step(edit.edit_id)
    assert done.status == "failed" and done.error_code == "output_not_video"
    assert s3.keys(bucket) == []


async def test_a_bucket_that_is_gone_fails_the_write_as_archive_write_failed(
    s3: S3Endpoint, tmp_path: Path
) -> None:
    """No such bucket: archive_write_failed at once (no retry makes it exist), no credential in the text."""
    fake = FakeRunway(steps=("succeeded",))
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        rig = make_rig(fake, client, tmp_path)
        rig.poller.archiver.archive = s3_archive(s3, "no-such-bucket")[0]
        edit = await rig.submit()
        done = await rig.step(edit.edit_id)
    assert done.status == "failed" and done.error_code == "archive_write_failed"
    assert SECRET not in (done.error_message or "") and "no-such-bucket" in (done.error_message or "")


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest, s3: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The archive URL of each archive: unset (the local folder), or a fresh bucket."""
    if request.param == "local":
        return None
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    return f"s3://{s3.bucket()}/{PREFIX}"


async def _finished(client: Client) -> str:
    started = await client.call_tool(
        "edit_video", {"prompt": "snow", "video": "https://cdn.example.com/a.mp4"}
    )
    assert started.structured_content is not None, started.content
    edit_id = str(started.structured_content["edit_id"])
    with anyio.fail_after(20):
        while True:
            result = await client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": 1})
            assert isinstance(result.structured_content, dict)
            if result.structured_content["status"] == "succeeded":
                assert any(block.type == "image" for block in result.content)  # the still, read back
                return edit_id
            assert result.structured_content["status"] == "running", result.structured_content


async def test_resources_stream_back_from_either_archive_under_the_size_cap(
    where: str | None, tmp_path: Path
) -> None:
    """The video and thumbnail resources read back whole from the archive that holds them."""
    fake = FakeRunway(steps=("succeeded",))
    with serve_fakes({"runway": fake}) as origin:
        settings = make_settings(
            tmp_path,
            archive_url=where,
            default_provider="runway",
            runway_api_key=TEST_KEY,
            runway_base_url=f"{origin}/runway",
        )
        async with Client(create_server(settings, store=InMemoryEditStore())) as client:
            edit_id = await _finished(client)
            video = await client.read_resource(f"aleph://edits/{edit_id}/video")
            still = await client.read_resource(f"aleph://edits/{edit_id}/thumbnail")
            listed = await client.list_resources()
    import base64

    assert base64.b64decode(getattr(video.contents[0], "blob", "")) == FAKE_VIDEO
    assert base64.b64decode(getattr(still.contents[0], "blob", ""))[:3] == b"\xff\xd8\xff"
    assert [r.uri for r in listed.resources] == [f"aleph://edits/{edit_id}/video"]
    local = list(settings.archive_dir.glob("*.mp4")) if settings.archive_dir.is_dir() else []
    assert len(local) == (1 if where is None else 0)


async def test_a_big_video_is_offered_as_a_presigned_link_and_the_output_url(
    s3_env: S3Endpoint, tmp_path: Path
) -> None:
    """Over the cap: nothing sent, the error offers a presigned link that fetches the video, and no secret."""
    fake = FakeRunway(steps=("succeeded",))
    bucket = s3_env.bucket()
    with serve_fakes({"runway": fake}) as origin:
        settings = make_settings(
            tmp_path,
            archive_url=f"s3://{bucket}/{PREFIX}",
            max_resource_bytes=100,
            default_provider="runway",
            runway_api_key=TEST_KEY,
            runway_base_url=f"{origin}/runway",
        )
        async with Client(create_server(settings, store=InMemoryEditStore())) as client:
            edit_id = await _finished(client)
            with pytest.raises(MCPError) as refused:
                await client.read_resource(f"aleph://edits/{edit_id}/video")
    message = str(refused.value)
    assert "more than this server sends" in message and f"{origin}/runway/files/" in message
    link = message.split("Fetch it from ")[1].split(" ")[0]
    assert "X-Amz-Signature=" in link and SECRET not in message
    async with httpx2.AsyncClient() as http:
        fetched = await http.get(link)
        unsigned = await http.get(link.split("?")[0])
    assert fetched.status_code == 200 and fetched.content == FAKE_VIDEO
    assert unsigned.status_code == 403  # the bucket itself is not public: the signature is what lets it


async def test_doctor_checks_the_bucket_is_writable_and_leaves_nothing(
    s3_env: S3Endpoint, tmp_path: Path
) -> None:
    bucket = s3_env.bucket()
    settings = make_settings(tmp_path, archive_url=f"s3://{bucket}/{PREFIX}")
    checks = {c.name: c for c in await run_checks(settings)}
    assert checks["archive"].status == "ok", checks["archive"]
    assert checks["archive"].detail == f"s3://{bucket}/{PREFIX} (writable)"
    assert s3_env.keys(bucket) == []
    assert SECRET not in json.dumps(report(list(checks.values()), settings))


async def test_doctor_fails_a_bucket_it_cannot_write_without_showing_the_secret(
    s3_env: S3Endpoint, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, archive_url=f"s3://never-made-bucket/{PREFIX}")
    checks = {c.name: c for c in await run_checks(settings)}
    archive = checks["archive"]
    assert archive.status == "fail" and "never-made-bucket" in archive.detail
    assert "no such bucket" in archive.detail
    assert "AWS_ACCESS_KEY_ID" in archive.fix
    assert SECRET not in json.dumps(report(list(checks.values()), settings))


@pytest.mark.parametrize("edit_id", ["../escape", "ed_1/../../x", "", ".hidden", "ed 1", "ed_1\n", "a" * 200])
def test_hostile_edit_ids_name_nothing_in_either_archive(
    s3: S3Endpoint, tmp_path: Path, edit_id: str
) -> None:
    archive, _ = s3_archive(s3, "any-bucket")
    for each in (archive, LocalArchive(tmp_path / "archive")):
        with pytest.raises(InvalidInput):
            each.video_location(edit_id)
        with pytest.raises(InvalidInput):
            each.thumbnail_location(edit_id)


@pytest.mark.parametrize(
    "location",
    [
        "s3://other-bucket/team/videos/ed_1.mp4",
        "s3://any-bucket/team/ed_1.mp4",
        "s3://any-bucket/team/videos/../secret.mp4",
        "s3://any-bucket/team/videos/sub/ed_1.mp4",
        "s3://any-bucket/team/videos/..",
        "s3://any-bucket/team/videosX/ed_1.mp4",
        "/etc/passwd",
    ],
)
async def test_a_stored_location_outside_the_prefix_is_neither_read_nor_written(
    s3: S3Endpoint, location: str
) -> None:
    archive, _ = s3_archive(s3, "any-bucket")
    assert archive.key(location) is None
    assert await archive.size(location) is None
    assert await archive.link(location, 60) is None
    with pytest.raises(InvalidInput):
        async with archive.writer(location) as sink:
            await sink.write(b"x")


@pytest.mark.parametrize(
    "url", ["s3://", "s3://B/x", "s3://ok-bucket/../up", "http://ok-bucket/x", "s3://ok-bucket/a?b=1"]
)
def test_an_archive_url_that_is_not_a_bucket_and_plain_prefix_is_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        parse_s3_url(url)


async def test_the_archive_url_unset_is_the_local_folder_and_s3_is_the_bucket(
    s3: S3Endpoint, tmp_path: Path
) -> None:
    local = open_archive(make_settings(tmp_path))
    assert isinstance(local, LocalArchive) and local.root == tmp_path / "data" / "archive"
    remote = open_archive(make_settings(tmp_path, archive_url="s3://some-bucket/p"), s3.env)
    assert isinstance(remote, S3Archive) and remote.describe() == "s3://some-bucket/p"


async def test_a_write_refused_by_the_store_is_archive_write_failed(s3: S3Endpoint) -> None:
    archive, _ = s3_archive(s3, "missing-bucket-x")
    with pytest.raises(ArchiveWriteFailed) as failed:
        async with archive.writer(archive.video_location("ed_1")) as sink:
            await sink.write(b"\0" * BIG)
    assert failed.value.permanent and SECRET not in failed.value.message


def test_open_prints_a_presigned_link_when_the_archive_is_a_bucket(
    cli: Cli,  # noqa: F811  (the fixture)
    clip: Path,
    s3_env: S3Endpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A local render archived to the bucket; `open` gives a link that fetches it, and no secret."""
    bucket = s3_env.bucket()
    monkeypatch.setenv("ALEPH_MCP_ARCHIVE_URL", f"s3://{bucket}/{PREFIX}")
    record = cli("edit", *BOUNDED, str(clip), "mirror", "--json").json
    assert record["status"] == "succeeded" and record["local_path"].startswith(f"s3://{bucket}/{PREFIX}/")
    opened = cli("open", record["edit_id"], "--json")
    assert opened.code == 0 and SECRET not in opened.out
    link = opened.json["video"]
    assert "X-Amz-Signature=" in link and opened.json["location"] == record["local_path"]
    fetched = httpx2.get(link)
    key = record["local_path"].removeprefix(f"s3://{bucket}/")
    assert fetched.status_code == 200 and fetched.content == s3_env.body(bucket, key)
    assert not (Path(os.environ["ALEPH_MCP_DATA_DIR"]) / "archive").exists() or not any(
        (Path(os.environ["ALEPH_MCP_DATA_DIR"]) / "archive").iterdir()
    )


async def test_the_local_archive_probe_writes_and_removes_a_file(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    detail = await archive.check_writable()
    assert detail.startswith(f"{tmp_path / 'archive'} (writable, ") and list(archive.root.iterdir()) == []
    assert await archive.link(archive.video_location("ed_1"), 60) is None
    assert await archive.size(archive.video_location("ed_1")) is None
