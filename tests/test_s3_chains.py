"""Chains, trims and the before/after sheet with the archive in an object store (moto's S3 on 127.0.0.1):
a parent's video is fetched from the bucket into the intake's private copy, the kept input and the sheet
are objects, and nothing is written to a local archive folder."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import mcp.types as types
import pytest
from mcp import Client
from PIL import Image

from aleph_mcp.config import Settings
from aleph_mcp.edits import chains
from aleph_mcp.media.objectstore import S3Archive
from aleph_mcp.providers.local import LocalProvider
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.runway import FakeRunway
from .media import LEFT, RIGHT, first_frame, indices, make_counter_clip
from .s3 import SECRET, S3Endpoint
from .test_before_after import near, rows, status_image
from .test_chains import FAKE, finished, refused, started
from .test_cli import BOUNDED, Cli, cli  # noqa: F401  (the fixture)

PREFIX = "team/videos"


@asynccontextmanager
async def bucket_client(
    tmp_path: Path, s3: S3Endpoint, bucket: str, fake: FakeRunway | None = None
) -> AsyncIterator[tuple[Client, Settings]]:
    """local (and runway against its fake) on one server whose archive is `bucket`."""
    fake = fake or FakeRunway(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        settings = make_settings(
            tmp_path,
            default_provider="local",
            archive_url=f"s3://{bucket}/{PREFIX}",
            runway_api_key=TEST_KEY,
            runway_base_url=FAKE,
        )
        providers: dict[str, Any] = {
            "local": LocalProvider(settings.data_dir / "local-jobs"),
            "runway": RunwayProvider(http, api_key=TEST_KEY, base_url=FAKE),
        }
        server = create_server(settings, providers=providers, store=InMemoryEditStore(), http=http)
        async with Client(server) as client:
            yield client, settings


def fetched(s3: S3Endpoint, bucket: str, location: str, dest: Path) -> Path:
    """The object at `location` as a file of the test's own, read with boto3."""
    assert location.startswith(f"s3://{bucket}/{PREFIX}/"), location
    dest.write_bytes(s3.body(bucket, location.removeprefix(f"s3://{bucket}/")))
    return dest


def no_local_archive(settings: Settings) -> bool:
    folder = settings.archive_dir
    return not folder.exists() or not any(folder.iterdir())


async def test_a_chain_step_on_a_parent_in_the_bucket(tmp_path: Path, clip: Path, s3_env: S3Endpoint) -> None:
    """Mirrored twice: the parent is fetched from the bucket, edited, archived there; lineage shown."""
    bucket = s3_env.bucket()
    async with bucket_client(tmp_path, s3_env, bucket) as (client, settings):
        parent = await finished(
            client, (await started(client, prompt="mirror it", video=str(clip)))["edit_id"]
        )
        child = await finished(
            client, (await started(client, prompt="mirror it", from_edit=parent["edit_id"]))["edit_id"]
        )
    assert child["parent_edit_id"] == parent["edit_id"]
    assert [s["edit_id"] for s in child["lineage"]] == [parent["edit_id"], child["edit_id"]]
    once = first_frame(fetched(s3_env, bucket, parent["local_path"], tmp_path / "once.mp4"))
    twice = first_frame(fetched(s3_env, bucket, child["local_path"], tmp_path / "twice.mp4"))
    assert near(tuple(once[20, 4]), RIGHT) and near(tuple(twice[20, 4]), LEFT)
    assert no_local_archive(settings)
    assert not any(k.endswith(".input.mp4") for k in s3_env.keys(bucket))  # kept inputs went with the sheets


async def test_a_bucket_parent_is_uploaded_to_another_provider_byte_for_byte(
    tmp_path: Path, clip: Path, s3_env: S3Endpoint
) -> None:
    """local then runway: the object's bytes go through runway's upload route."""
    bucket, fake = s3_env.bucket(), FakeRunway(TEST_KEY)
    async with bucket_client(tmp_path, s3_env, bucket, fake) as (client, _):
        parent = await finished(client, (await started(client, prompt="sepia", video=str(clip)))["edit_id"])
        await started(client, prompt="night", from_edit=parent["edit_id"], provider="runway")
    key = parent["local_path"].removeprefix(f"s3://{bucket}/")
    assert len(fake.uploads) == 1 and fake.uploads[0]["content"] == s3_env.body(bucket, key)
    assert fake.creates[0].json["videoUri"].startswith("runway://")


async def test_a_trim_of_a_bucket_parent_edits_only_that_part(
    tmp_path: Path, inputs: Path, s3_env: S3Endpoint
) -> None:
    """Seconds 1-2 of a 3 s counter clip archived in the bucket: the child shows frames 12..23 only."""
    counter = make_counter_clip(inputs / "counter.mp4", seconds=3, fps=12, size=(96, 54))
    bucket = s3_env.bucket()
    async with bucket_client(tmp_path, s3_env, bucket) as (client, settings):
        parent = await finished(
            client, (await started(client, prompt="make it black and white", video=str(counter)))["edit_id"]
        )
        begun = await started(
            client,
            prompt="make it black and white",
            from_edit=parent["edit_id"],
            start_seconds=1,
            end_seconds=2,
        )
        child = await finished(client, begun["edit_id"])
    assert child["parent_edit_id"] == parent["edit_id"] and child["trim"] == "1-2 s"
    assert indices(fetched(s3_env, bucket, child["local_path"], tmp_path / "cut.mp4")) == list(range(12, 24))
    assert no_local_archive(settings)


async def test_a_bucket_parent_larger_than_the_fetch_bound_is_refused_with_nothing_sent(
    tmp_path: Path, clip: Path, s3_env: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket, fake = s3_env.bucket(), FakeRunway(TEST_KEY)
    async with bucket_client(tmp_path, s3_env, bucket, fake) as (client, _):
        parent = await finished(client, (await started(client, prompt="sepia", video=str(clip)))["edit_id"])
        monkeypatch.setattr(chains, "PARENT_MAX_BYTES", 1000)
        message = await refused(client, prompt="night", from_edit=parent["edit_id"], provider="runway")
    assert "this server fetches to edit further" in message and "Nothing was sent" in message
    assert fake.uploads == [] and fake.creates == []


async def test_a_parent_gone_from_the_bucket_is_refused(
    tmp_path: Path, clip: Path, s3_env: S3Endpoint
) -> None:
    bucket = s3_env.bucket()
    async with bucket_client(tmp_path, s3_env, bucket) as (client, _):
        parent = await finished(client, (await started(client, prompt="sepia", video=str(clip)))["edit_id"])
        s3_env.client.delete_object(Bucket=bucket, Key=parent["local_path"].removeprefix(f"s3://{bucket}/"))
        message = await refused(client, prompt="invert", from_edit=parent["edit_id"])
    assert "archived video" in message and "is gone" in message


async def test_the_compare_sheet_is_made_in_the_bucket_and_served_inline_and_as_a_resource(
    tmp_path: Path, clip: Path, s3_env: S3Endpoint
) -> None:
    """Mirrored: the input's red left half above the output's blue one, read back from the bucket."""
    bucket = s3_env.bucket()
    async with bucket_client(tmp_path, s3_env, bucket) as (client, settings):
        done = await finished(client, (await started(client, prompt="mirror it", video=str(clip)))["edit_id"])
        result, inline = await status_image(client, done["edit_id"])
        resource = (await client.read_resource(f"aleph://edits/{done['edit_id']}/compare")).contents[0]
    edit_id = done["edit_id"]
    assert f"aleph://edits/{edit_id}/compare" in [
        str(b.uri) for b in result.content if isinstance(b, types.ResourceLink)
    ]
    assert isinstance(resource, types.BlobResourceContents) and resource.mime_type == "image/jpeg"
    stored = s3_env.body(bucket, f"{PREFIX}/{edit_id}.compare.jpg")
    assert base64.b64decode(resource.blob) == stored
    with Image.open(io.BytesIO(stored)) as served:
        assert served.format == "JPEG" and served.size == inline.size and inline.width > inline.height
    top, bottom = rows(inline)
    assert near(top, LEFT) and near(bottom, RIGHT), (top, bottom)
    assert s3_env.keys(bucket) == sorted(
        f"{PREFIX}/{edit_id}{s}" for s in (".compare.jpg", ".mp4", ".thumb.jpg")
    )
    assert no_local_archive(settings)


async def test_a_whole_chain_step_in_the_bucket_compares_with_its_parents_video(
    tmp_path: Path, clip: Path, s3_env: S3Endpoint
) -> None:
    """No input is kept for a step on a whole parent: the sheet's top row is the parent's object."""
    bucket = s3_env.bucket()
    async with bucket_client(tmp_path, s3_env, bucket) as (client, _):
        parent = await finished(
            client, (await started(client, prompt="mirror it", video=str(clip)))["edit_id"]
        )
        child = await finished(
            client, (await started(client, prompt="mirror it", from_edit=parent["edit_id"]))["edit_id"]
        )
        _, sheet = await status_image(client, child["edit_id"])
    top, bottom = rows(sheet)
    assert near(top, RIGHT) and near(bottom, LEFT), (top, bottom)


async def test_kept_inputs_in_the_bucket_are_swept_by_age_and_nothing_else_goes(s3_env: S3Endpoint) -> None:
    bucket = s3_env.bucket()
    archive = S3Archive.from_url(f"s3://{bucket}/{PREFIX}", s3_env.env)
    for name in ("ed_a.input.mp4", "ed_b.input.mp4", "ed_a.mp4", "ed_a.compare.jpg"):
        s3_env.client.put_object(Bucket=bucket, Key=f"{PREFIX}/{name}", Body=b"x")
    s3_env.client.put_object(Bucket=bucket, Key="elsewhere/ed_c.input.mp4", Body=b"x")  # outside the prefix
    assert await archive.sweep_inputs(3600, time.time()) == 0  # all fresh
    assert await archive.sweep_inputs(3600, time.time() + 7200) == 2
    assert s3_env.keys(bucket) == [
        "elsewhere/ed_c.input.mp4",
        f"{PREFIX}/ed_a.compare.jpg",
        f"{PREFIX}/ed_a.mp4",
    ]


def test_open_compare_gives_a_presigned_link_to_the_sheet_in_the_bucket(
    cli: Cli,  # noqa: F811  (the fixture)
    clip: Path,
    s3_env: S3Endpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bucket = s3_env.bucket()
    monkeypatch.setenv("ALEPH_MCP_ARCHIVE_URL", f"s3://{bucket}/{PREFIX}")
    record = cli("edit", *BOUNDED, str(clip), "mirror", "--json").json
    assert record["status"] == "succeeded"
    opened = cli("open", record["edit_id"], "--compare", "--json")
    printed = cli("open", record["edit_id"], "--compare")
    assert opened.code == 0 and SECRET not in opened.out
    link = opened.json["compare"]
    assert "X-Amz-Signature=" in link and printed.out.strip().startswith(f"{s3_env.endpoint}/{bucket}/")
    answer = httpx2.get(link)
    assert answer.status_code == 200
    assert answer.content == s3_env.body(bucket, f"{PREFIX}/{record['edit_id']}.compare.jpg")
    with Image.open(io.BytesIO(answer.content)) as sheet:
        assert sheet.format == "JPEG" and sheet.width > sheet.height
