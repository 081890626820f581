"""The MCP surface in-process: tools, resources, notifications, on both protocol eras."""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import Client, MCPError
from mcp.shared.exceptions import MCPDeprecationWarning

from aleph_mcp.providers.kie import KieProvider
from aleph_mcp.providers.krea import KreaProvider
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.base import FakeAPI
from .fakes.kie import FakeKie
from .fakes.krea import FakeKrea
from .fakes.runway import FakeRunway
from .results import text_of

VIDEO = "https://cdn.example.com/in/clip.mp4"


@asynccontextmanager
async def served(tmp_path: Path, fake: FakeAPI, name: str, **client_args: Any) -> AsyncIterator[Client]:
    """An in-process client against a server whose one hosted provider talks to `fake`."""
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        base = "http://fake.invalid"
        providers: dict[str, Any] = {
            "runway": lambda: RunwayProvider(http, api_key=TEST_KEY, base_url=base),
            "krea": lambda: KreaProvider(http, api_key=TEST_KEY, base_url=base),
            "kie": lambda: KieProvider(http, api_key=TEST_KEY, base_url=base, upload_base_url=base),
        }
        keyed = {f"{name}_api_key": TEST_KEY, f"{name}_base_url": base}  # results come from its origin
        settings = make_settings(tmp_path, default_provider=name, **keyed)
        server = create_server(
            settings, providers={name: providers[name]()}, store=InMemoryEditStore(), http=http
        )
        async with Client(server, **client_args) as client:
            yield client


async def wait_until_done(client: Client, edit_id: str) -> dict[str, Any]:
    with anyio.fail_after(20):
        while True:
            result = await client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": 1})
            record = result.structured_content
            assert isinstance(record, dict), record
            if record["status"] in ("succeeded", "failed", "cancelled"):
                return record


def output_schema(tool: types.Tool) -> dict[str, Any]:
    """The tool's output schema, which every tool of ours publishes."""
    assert tool.output_schema is not None
    return tool.output_schema


def hints(tool: types.Tool) -> types.ToolAnnotations:
    """The tool's behaviour hints, which every tool of ours publishes."""
    assert tool.annotations is not None
    return tool.annotations


async def test_the_four_tools_publish_output_schemas_and_annotations(tmp_path: Path) -> None:
    """tools/list shows edit_video, get_edit_status, list_edits, cancel_edit with schemas and hints."""
    async with served(tmp_path, FakeRunway(TEST_KEY), "runway") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"edit_video", "get_edit_status", "list_edits", "cancel_edit", "list_providers"}
        for tool in tools.values():
            assert output_schema(tool)["type"] == "object"
            assert tool.annotations is not None
        assert output_schema(tools["get_edit_status"])["properties"]["edit_id"]["type"] == "string"
        assert "dry_run" in output_schema(tools["edit_video"])["properties"]  # its one schema covers dry runs
        assert hints(tools["get_edit_status"]).read_only_hint is True
        assert hints(tools["cancel_edit"]).destructive_hint is True
        assert hints(tools["edit_video"]).open_world_hint is True
        assert "aspect_ratio" in tools["edit_video"].input_schema["properties"]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_instructions_explain_the_asynchronous_billed_workflow(tmp_path: Path, mode: str) -> None:
    """At initialize (or discover) the server explains billed async edits, checking back and dry runs."""
    async with served(tmp_path, FakeRunway(TEST_KEY), "runway", mode=mode) as client:
        text = client.instructions
    assert text is not None and "asynchronous" in text and "billed" in text
    steps = ("list_providers", "dry_run=true", "edit_video(prompt, video)", "get_edit_status", "subscribe")
    assert [step for step in steps if step not in text] == []


async def test_an_edit_runs_to_success_and_its_video_is_readable(tmp_path: Path) -> None:
    """edit_video returns at once; the poller finishes it; the archived bytes come back as a resource."""
    fake = FakeRunway(TEST_KEY)
    async with served(tmp_path, fake, "runway") as client:
        started = await client.call_tool(
            "edit_video", {"prompt": "make it snow", "video": VIDEO, "aspect_ratio": "9:16", "seed": 7}
        )
        assert not started.is_error
        record = started.structured_content
        assert record is not None and record["status"] == "queued" and record["provider"] == "runway"
        assert record["model"] == "aleph2" and record["check_again_in_seconds"] >= 1
        links = [b for b in started.content if isinstance(b, types.ResourceLink)]
        assert [str(link.uri) for link in links] == [f"aleph://edits/{record['edit_id']}"]
        assert fake.creates[0].json["targetAspectRatio"] == "9:16"

        done = await wait_until_done(client, record["edit_id"])
        assert done["status"] == "succeeded" and done["check_again_in_seconds"] is None
        assert done["video_uri"] == f"aleph://edits/{record['edit_id']}/video"
        video = await client.read_resource(done["video_uri"])
        content = video.contents[0]
        assert isinstance(content, types.BlobResourceContents) and content.mime_type == "video/mp4"
        assert Path(done["local_path"]).read_bytes() == fake.video_bytes
        assert len(fake.creates) == 1


async def test_a_vendor_failure_reaches_the_agent_with_the_vendors_reason(tmp_path: Path) -> None:
    """A FAILED task shows as failed with the provider's own message."""
    fake = FakeRunway(
        TEST_KEY, steps=("queued", "running", "failed"), failure_message="Flagged by moderation"
    )
    async with served(tmp_path, fake, "runway") as client:
        started = await client.call_tool("edit_video", {"prompt": "make it snow", "video": VIDEO})
        done = await wait_until_done(client, started.structured_content["edit_id"])
        assert done["status"] == "failed"
        assert "Flagged by moderation" in done["error"]["message"]


async def test_invalid_arguments_are_refused_before_any_request(tmp_path: Path) -> None:
    """Bad input gives a tool error that says what to change, and the provider hears nothing."""
    fake = FakeKrea(TEST_KEY)
    async with served(tmp_path, fake, "krea") as client:
        too_long = await client.call_tool("edit_video", {"prompt": "x" * 1001, "video": VIDEO})
        assert too_long.is_error and "1000" in text_of(too_long)
        bad_ratio = await client.call_tool(
            "edit_video", {"prompt": "snow", "video": VIDEO, "aspect_ratio": "2:1"}
        )
        assert bad_ratio.is_error
        bad_seed = await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO, "seed": -1})
        assert bad_seed.is_error
        watermark = await client.call_tool(
            "edit_video", {"prompt": "snow", "video": VIDEO, "watermark": "hi"}
        )
        assert watermark.is_error and "watermark" in text_of(watermark)
        unconfigured = await client.call_tool(
            "edit_video", {"prompt": "snow", "video": VIDEO, "provider": "kie"}
        )
        assert "ALEPH_MCP_KIE_API_KEY" in text_of(unconfigured)
    assert fake.requests == []


async def test_list_edits_pages_newest_first_with_a_cursor(tmp_path: Path) -> None:
    """Three edits in pages of two: newest first, a cursor for the rest, filters apply; the text sums up."""
    async with served(tmp_path, FakeRunway(TEST_KEY), "runway") as client:
        ids = []
        for prompt in ("one", "two", "three"):
            result = await client.call_tool("edit_video", {"prompt": prompt, "video": VIDEO})
            ids.append(result.structured_content["edit_id"])
        page = await client.call_tool("list_edits", {"limit": 2})
        first = page.structured_content
        assert first is not None and [e["edit_id"] for e in first["edits"]] == ids[::-1][:2]
        text = text_of(page)  # a summary of the page, not a JSON copy of the structured content
        assert text.startswith("2 edits, newest first (") and "{" not in text
        assert ids[2] in text and f"cursor={first['next_cursor']}" in text
        second = await client.call_tool("list_edits", {"limit": 2, "cursor": first["next_cursor"]})
        assert [e["edit_id"] for e in second.structured_content["edits"]] == [ids[0]]
        assert second.structured_content["next_cursor"] is None
        none = (await client.call_tool("list_edits", {"provider": "kie"})).structured_content
        assert none == {"edits": [], "next_cursor": None}


async def test_cancel_is_refused_where_the_provider_cannot_cancel(tmp_path: Path) -> None:
    """kie has no cancel API: the agent is told so, and nothing is sent."""
    fake = FakeKie(TEST_KEY, steps=("running",))
    async with served(tmp_path, fake, "kie") as client:
        started = await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
        result = await client.call_tool("cancel_edit", {"edit_id": started.structured_content["edit_id"]})
        assert result.is_error and "no cancel API" in text_of(result)


async def test_cancel_stops_a_krea_edit(tmp_path: Path) -> None:
    """krea edits are cancelled at the provider and recorded as cancelled."""
    fake = FakeKrea(TEST_KEY, steps=("queued",))
    async with served(tmp_path, fake, "krea") as client:
        started = await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
        edit_id = started.structured_content["edit_id"]
        result = await client.call_tool("cancel_edit", {"edit_id": edit_id})
        assert not result.is_error and result.structured_content["status"] == "cancelled"
        assert [r.method for r in fake.requests if r.method == "DELETE"] == ["DELETE"]


async def test_unknown_edits_and_unfinished_videos_are_clear_errors(tmp_path: Path) -> None:
    """Unknown ids are not-found errors; a video that is not ready says so."""
    async with served(tmp_path, FakeRunway(TEST_KEY, steps=("running",)), "runway") as client:
        missing = await client.call_tool("get_edit_status", {"edit_id": "ed_nope"})
        assert missing.is_error and "list_edits" in text_of(missing)
        with pytest.raises(MCPError):
            await client.read_resource("aleph://edits/ed_00000000000000000000")
        started = await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
        edit_id = started.structured_content["edit_id"]
        with pytest.raises(MCPError, match="no archived video"):
            await client.read_resource(f"aleph://edits/{edit_id}/video")


async def test_resources_list_shows_only_finished_videos(tmp_path: Path) -> None:
    """resources/list carries finished videos with size and MIME type."""
    async with served(tmp_path, FakeRunway(TEST_KEY), "runway") as client:
        assert (await client.list_resources()).resources == []
        started = await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
        done = await wait_until_done(client, started.structured_content["edit_id"])
        listed = (await client.list_resources()).resources
        assert [str(r.uri) for r in listed] == [done["video_uri"]]
        assert listed[0].mime_type == "video/mp4"
        assert listed[0].size == Path(done["local_path"]).stat().st_size


async def test_modern_clients_hear_each_status_change_of_a_subscribed_edit(tmp_path: Path) -> None:
    """A 2026-07-28 client listening on an edit's URI gets an update per change until it ends."""
    fake = FakeRunway(TEST_KEY, steps=("queued", "running", "succeeded"))
    async with served(tmp_path, fake, "runway") as client:
        started = await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
        uri = f"aleph://edits/{started.structured_content['edit_id']}"
        updates = 0
        async with client.listen(resource_subscriptions=[uri]) as subscription:
            with anyio.fail_after(20):
                async for event in subscription:
                    assert getattr(event, "uri", uri) == uri
                    updates += 1
                    record = await client.call_tool("get_edit_status", {"edit_id": uri.rsplit("/", 1)[1]})
                    if record.structured_content["status"] == "succeeded":
                        break
        assert updates >= 2


async def test_legacy_clients_get_resource_updated_and_list_changed(tmp_path: Path) -> None:
    """A 2025-era client that subscribed hears notifications/resources/updated and list_changed."""
    received: list[types.ServerNotification] = []
    finished = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceListChangedNotification):
            finished.set()
        if isinstance(message, types.ResourceUpdatedNotification | types.ResourceListChangedNotification):
            received.append(message)

    async with served(
        tmp_path, FakeRunway(TEST_KEY), "runway", mode="legacy", message_handler=on_message
    ) as c:
        caps = c.server_capabilities
        assert caps is not None and caps.resources is not None and caps.resources.subscribe is True
        started = await c.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
        uri = f"aleph://edits/{started.structured_content['edit_id']}"
        with warnings.catch_warnings():  # deprecated for 2026-07-28, but it is what 2025-era hosts send
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await c.subscribe_resource(uri)
        with anyio.fail_after(20):
            await finished.wait()
    updated = [m for m in received if isinstance(m, types.ResourceUpdatedNotification)]
    assert updated and all(str(m.params.uri) == uri for m in updated)


async def test_modern_clients_hear_the_resource_list_change_when_a_video_finishes(tmp_path: Path) -> None:
    """A 2026-07-28 client listening for resource-list changes is told when a finished video appears."""
    async with served(tmp_path, FakeRunway(TEST_KEY), "runway") as client:
        async with client.listen(resources_list_changed=True) as subscription:
            await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
            with anyio.fail_after(20):
                async for _event in subscription:
                    if (await client.list_resources()).resources:
                        break
        assert len((await client.list_resources()).resources) == 1


async def test_an_identical_request_returns_the_earlier_edit_unless_a_duplicate_is_asked_for(
    tmp_path: Path,
) -> None:
    """The same call twice is answered from the store (one create); allow_duplicate starts another."""
    fake = FakeRunway(TEST_KEY, steps=("running",))
    async with served(tmp_path, fake, "runway") as client:
        call = {"prompt": "make it snow", "video": VIDEO}
        first = (await client.call_tool("edit_video", call)).structured_content
        again = (await client.call_tool("edit_video", call)).structured_content
        assert again["edit_id"] == first["edit_id"] and again["duplicate_of_request"] is True
        assert len(fake.creates) == 1
        forced = (await client.call_tool("edit_video", call | {"allow_duplicate": True})).structured_content
        assert forced["edit_id"] != first["edit_id"] and forced["duplicate_of_request"] is False
        assert len(fake.creates) == 2
