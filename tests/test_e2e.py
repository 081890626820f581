"""End to end: `python -m aleph_mcp` over stdio, the official MCP client, loopback fake provider APIs."""

from __future__ import annotations

import base64
import contextlib
import sqlite3
from pathlib import Path

import mcp.types as types
import pytest

from .conftest import TEST_KEY
from .fakes.base import State
from .fakes.vendors import FAKES
from .s3 import SECRET, S3Endpoint
from .stdio import REASON, VIDEO, kill_servers, served_fakes, server_env, stdio_server, wait_for

FAILS: tuple[State, ...] = ("queued", "running", "failed")


@pytest.mark.parametrize("provider", list(FAKES))
async def test_an_edit_succeeds_through_each_provider_and_the_video_is_readable(
    provider: str, tmp_path: Path
) -> None:
    """queued -> running -> succeeded through the real server; the video resource holds the vendor's bytes."""
    with served_fakes() as (origin, apis), (tmp_path / "server.log").open("w") as log:
        async with stdio_server(server_env(origin, tmp_path / "data", provider), log) as client:
            tools = await client.list_tools()
            assert all(tool.output_schema for tool in tools.tools)
            started = await client.call_tool("edit_video", {"prompt": "make it snow", "video": VIDEO})
            assert not started.is_error, started.content
            record = started.structured_content
            assert record is not None and record["status"] in ("queued", "running")
            assert record["provider"] == provider and record["provider_task_id"]
            done = await wait_for(client, record["edit_id"], ("succeeded", "failed"))
            assert done["status"] == "succeeded", done
            video = await client.read_resource(done["video_uri"])
            blob = video.contents[0]
            assert isinstance(blob, types.BlobResourceContents)
            assert base64.b64decode(blob.blob) == apis[provider].video_bytes
        assert len(apis[provider].creates) == 1


async def test_a_video_archived_to_a_bucket_is_read_back_over_stdio_and_no_secret_leaks(
    tmp_path: Path, s3: S3Endpoint
) -> None:
    """ALEPH_MCP_ARCHIVE_URL=s3://…: the server process writes the video and still to the bucket (nothing
    to a local archive folder), reads the resource back from it, and the AWS secret is in no output."""
    bucket = s3.bucket()
    with served_fakes() as (origin, apis), (tmp_path / "server.log").open("w") as log:
        env = server_env(origin, tmp_path / "data", "runway") | s3.env | {"ALEPH_MCP_LOG_LEVEL": "DEBUG"}
        env["ALEPH_MCP_ARCHIVE_URL"] = f"s3://{bucket}/e2e"
        async with stdio_server(env, log) as client:
            started = await client.call_tool("edit_video", {"prompt": "make it snow", "video": VIDEO})
            done = await wait_for(client, started.structured_content["edit_id"], ("succeeded", "failed"))
            assert done["status"] == "succeeded", done
            assert done["local_path"] == f"s3://{bucket}/e2e/{done['edit_id']}.mp4"
            video = await client.read_resource(done["video_uri"])
            status = await client.call_tool("get_edit_status", {"edit_id": done["edit_id"]})
    blob = video.contents[0]
    assert isinstance(blob, types.BlobResourceContents)
    assert base64.b64decode(blob.blob) == apis["runway"].video_bytes
    assert any(block.type == "image" for block in status.content)
    assert s3.keys(bucket) == [f"e2e/{done['edit_id']}.mp4", f"e2e/{done['edit_id']}.thumb.jpg"]
    archive = tmp_path / "data" / "archive"
    assert not archive.exists() or list(archive.iterdir()) == []
    log_text = (tmp_path / "server.log").read_text()
    assert "DEBUG" in log_text
    for text in (log_text, str(done), status.model_dump_json()):
        assert SECRET not in text


@pytest.mark.parametrize("provider", list(FAKES))
async def test_a_vendor_failure_reaches_the_agent_through_each_provider(
    provider: str, tmp_path: Path
) -> None:
    """A failed render ends as `failed` with the vendor's reason in the record."""
    with (
        served_fakes(**{provider: FAILS}) as (origin, _),
        (tmp_path / "server.log").open("w") as log,
    ):
        async with stdio_server(server_env(origin, tmp_path / "data", provider), log) as client:
            started = await client.call_tool("edit_video", {"prompt": "make it snow", "video": VIDEO})
            done = await wait_for(client, started.structured_content["edit_id"], ("succeeded", "failed"))
            assert done["status"] == "failed"
            assert REASON in done["error"]["message"]


async def test_a_server_killed_mid_edit_finishes_it_after_restart_without_a_second_create(
    tmp_path: Path,
) -> None:
    """SIGKILL while the render runs; a new process on the same data dir archives it; one create in all."""
    with (
        served_fakes(runway=("queued",) + ("running",) * 1000) as (origin, apis),
        (tmp_path / "server.log").open("w") as log,
    ):
        # A kill may land while the poller holds the edit's lease: keep it short (4 s) for the restart.
        env = server_env(origin, tmp_path / "data", "runway") | {"ALEPH_MCP_REQUEST_TIMEOUT": "1"}
        killed: list[int] = []
        with contextlib.suppress(Exception):  # the transport breaks when its server dies
            async with stdio_server(env, log) as client:
                started = await client.call_tool("edit_video", {"prompt": "make it snow", "video": VIDEO})
                edit_id = started.structured_content["edit_id"]
                await wait_for(client, edit_id, ("running",))
                killed = await kill_servers()
        assert len(killed) == 1
        assert apis["runway"].tasks and len(apis["runway"].creates) == 1
        task = next(iter(apis["runway"].tasks.values()))
        task.steps = ("succeeded",)
        task.position = 0
        async with stdio_server(env, log) as client:
            done = await wait_for(client, edit_id, ("succeeded", "failed"))
        assert done["status"] == "succeeded"
        assert len(apis["runway"].creates) == 1


async def test_two_processes_on_one_data_dir_see_the_same_edits(tmp_path: Path) -> None:
    """A second client's server lists and follows an edit the first started; one create."""
    with served_fakes() as (origin, apis), (tmp_path / "server.log").open("w") as log:
        env = server_env(origin, tmp_path / "data", "krea")
        async with stdio_server(env, log) as first, stdio_server(env, log) as second:
            started = await first.call_tool("edit_video", {"prompt": "make it snow", "video": VIDEO})
            edit_id = started.structured_content["edit_id"]
            listed = (await second.call_tool("list_edits", {})).structured_content
            assert [e["edit_id"] for e in listed["edits"]] == [edit_id]
            done = await wait_for(second, edit_id, ("succeeded", "failed"))
            assert done["status"] == "succeeded"
        assert len(apis["krea"].creates) == 1


async def test_no_api_key_appears_in_results_resources_logs_or_the_database(tmp_path: Path) -> None:
    """Every output channel of a full run is free of the keys, even when a vendor echoes one back."""
    seen: list[str] = []
    with (
        served_fakes(krea=("queued", "running", "failed")) as (origin, apis),
        (tmp_path / "server.log").open("w") as log,
    ):
        apis["krea"].failure_message = f"bad token {TEST_KEY} rejected"
        env = server_env(origin, tmp_path / "data", "krea") | {"ALEPH_MCP_LOG_LEVEL": "DEBUG"}
        env["ALEPH_MCP_CRUN_API_KEY"] = "crun-secret-abcdef"
        async with stdio_server(env, log) as client:
            for provider in ("krea", "runway"):
                started = await client.call_tool(
                    "edit_video", {"prompt": "snow", "video": VIDEO, "provider": provider}
                )
                seen.append(started.model_dump_json())
                edit_id = started.structured_content["edit_id"]
                done = await wait_for(client, edit_id, ("succeeded", "failed"))
                seen.append(str(done))
                seen.append((await client.read_resource(f"aleph://edits/{edit_id}")).model_dump_json())
            seen.append((await client.call_tool("list_edits", {})).model_dump_json())
            seen.append(
                (
                    await client.call_tool("edit_video", {"prompt": "x" * 5000, "video": VIDEO})
                ).model_dump_json()
            )
            seen.append((await client.list_resources()).model_dump_json())
    seen.append((tmp_path / "server.log").read_text())
    # closing(): a connection's own `with` only commits; left open it is a ResourceWarning on 3.13.
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "edits.sqlite3")) as db:
        seen.append(repr(db.execute("SELECT * FROM edits").fetchall()))
    assert "rejected" in "".join(seen)  # the vendor's reason got through, scrubbed
    assert "DEBUG" in seen[-2]  # the log really was verbose
    for text in seen:
        assert TEST_KEY not in text and "crun-secret-abcdef" not in text
