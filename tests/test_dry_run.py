"""edit_video(dry_run=true): the quote and the exact create request for every provider, with nothing uploaded,
sent or stored; and the cost every real edit carries in its record."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client

from aleph_mcp.edits.dry_run import EditVideoResult, preview
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.edits.service import EditService
from aleph_mcp.errors import InvalidInput
from aleph_mcp.pricing.catalog import quote
from aleph_mcp.providers.aimlapi import AimlapiProvider
from aleph_mcp.providers.base import Provider
from aleph_mcp.providers.crun import CrunProvider
from aleph_mcp.providers.kie import KieProvider
from aleph_mcp.providers.krea import KreaProvider
from aleph_mcp.providers.local import LocalProvider
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.base import FakeAPI
from .fakes.runway import FakeRunway
from .fakes.vendors import FAKES
from .results import text_of

BASE = "http://fake.invalid"
VIDEO = "https://cdn.example.com/in/clip.mp4"
# Every option each provider takes, so each body mapping is previewed.
OPTIONS: dict[str, dict[str, Any]] = {
    "kie": {"aspect_ratio": "9:16", "seed": 7, "watermark": "aleph", "reference_image": VIDEO + ".png"},
    "aimlapi": {"aspect_ratio": "16:9", "seed": 7, "reference_image": VIDEO + ".png"},
    "crun": {},
    "krea": {"aspect_ratio": "1:1", "seed": 3, "reference_image": VIDEO + ".png"},
    "runway": {"model": "gen4_aleph", "aspect_ratio": "4:3", "seed": 9, "reference_image": VIDEO + ".png"},
}


def adapter(name: str, http: httpx2.AsyncClient) -> Provider:
    if name == "kie":
        return KieProvider(http, api_key=TEST_KEY, base_url=BASE, upload_base_url=BASE)
    classes: dict[str, Any] = {
        "aimlapi": AimlapiProvider,
        "crun": CrunProvider,
        "krea": KreaProvider,
        "runway": RunwayProvider,
    }
    provider: Provider = classes[name](http, api_key=TEST_KEY, base_url=BASE)
    return provider


@asynccontextmanager
async def rig(
    tmp_path: Path, name: str, **settings: Any
) -> AsyncIterator[tuple[FakeAPI, EditService, InMemoryEditStore]]:
    """A service whose one hosted provider talks to a fake API through a mock transport."""
    fake = FAKES[name](TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        store = InMemoryEditStore()
        config = make_settings(tmp_path, **{f"{name}_api_key": TEST_KEY}, **settings)
        service = EditService(store, {name: adapter(name, http)}, config, owner="test")
        yield fake, service, store


async def dry(service: EditService, args: EditArgs, roots: list[Path] | None = None) -> EditVideoResult:
    return await preview(service, await service.check(args, roots=roots or []))


@pytest.mark.parametrize("name", list(FAKES))
async def test_a_dry_run_sends_and_stores_nothing_and_previews_the_exact_create(
    tmp_path: Path, name: str
) -> None:
    """Nothing reaches the fake API or the store; a real submit then sends the previewed method, URL, body."""
    async with rig(tmp_path, name) as (fake, service, store):
        args = EditArgs(prompt="make it snow", video=VIDEO, provider=name, **OPTIONS[name])
        result = await dry(service, args)
        assert fake.requests == []
        assert (await store.list_edits(limit=10))[0] == []
        assert result.dry_run is not None and result.edit_id is None and result.status is None
        shown = result.dry_run.request

        edit, _ = await service.submit(args)
        (create,) = fake.creates
        assert shown.body == create.json
        assert (shown.method, shown.url) == (create.method, f"http://{create.host}{create.path}")
        for header, value in shown.headers.items():  # the same headers, the key masked
            assert create.headers[header] == (value.replace("***", TEST_KEY) if "***" in value else value)
        assert TEST_KEY not in result.model_dump_json() and "***" in json.dumps(shown.headers)
    expected = quote(name, edit.model, None).usd
    assert result.estimated_cost_usd == result.dry_run.quote.usd == edit.estimated_cost_usd == expected


async def test_runway_gen4_aleph_is_quoted_for_five_seconds_when_the_length_is_unknown(
    tmp_path: Path,
) -> None:
    """A URL this server does not read is quoted for the most the model processes, and says so."""
    async with rig(tmp_path, "runway") as (_, service, _):
        result = await dry(service, EditArgs("snow", VIDEO, "runway", "gen4_aleph"))
    assert result.estimated_cost_usd == 0.75
    assert result.cost_basis is not None and result.cost_basis.startswith(
        "5 s × $0.15/s; input length unknown"
    )


async def test_a_local_file_shows_as_an_upload_placeholder_and_is_quoted_on_its_length(
    tmp_path: Path, clip: Path
) -> None:
    """The clip is probed (1 s: $0.15), not uploaded; the real create names the uploaded file instead."""
    async with rig(tmp_path, "runway") as (fake, service, store):
        args = EditArgs(prompt="make it snow", video=str(clip), provider="runway", model="gen4_aleph", seed=1)
        result = await dry(service, args)
        assert fake.requests == [] and (await store.list_edits())[0] == []
        assert result.dry_run is not None
        assert result.dry_run.request.body["videoUri"] == "<uploaded to runway: clip.mp4>"
        assert result.dry_run.uploads == [
            f"clip.mp4 ({clip.stat().st_size} bytes) would first be uploaded to runway; not uploaded"
        ]
        assert result.dry_run.quote.billed_seconds == pytest.approx(1.0, abs=0.1)
        assert result.estimated_cost_usd == pytest.approx(0.15, abs=0.015)

        edit, _ = await service.submit(args)
        sent = fake.creates[0].json
        assert sent["videoUri"].startswith("runway://")
        assert {**sent, "videoUri": "<uploaded to runway: clip.mp4>"} == result.dry_run.request.body
    assert edit.estimated_cost_usd == result.estimated_cost_usd
    assert edit.cost_basis == result.cost_basis


async def test_data_uris_are_abbreviated_in_the_preview(tmp_path: Path, clip: Path) -> None:
    """A data URI (given, or a local file aimlapi would inline) appears shortened, never with its data."""
    payload = base64.b64encode(clip.read_bytes()).decode()
    async with rig(tmp_path, "aimlapi") as (fake, service, _):
        given = await dry(service, EditArgs("snow", f"data:video/mp4;base64,{payload}", "aimlapi"))
        inlined = await dry(service, EditArgs("snow", str(clip), "aimlapi"))
    size = clip.stat().st_size
    assert given.dry_run is not None and inlined.dry_run is not None
    assert given.dry_run.request.body["video_url"] == f"data:video/mp4;base64,… ({size} bytes)"
    assert (
        inlined.dry_run.request.body["video_url"] == f"data:video/mp4;base64,… ({size} bytes, from clip.mp4)"
    )
    assert payload[:40] not in given.model_dump_json() + inlined.model_dump_json()
    assert fake.requests == []


async def test_a_local_dry_run_starts_no_render_and_previews_the_job(tmp_path: Path, clip: Path) -> None:
    """The local preview is the job it would run (RENDER); no job folder appears until a real edit."""
    jobs = tmp_path / "jobs"
    store = InMemoryEditStore()
    provider = LocalProvider(jobs)
    service = EditService(store, {"local": provider}, make_settings(tmp_path), owner="test")
    args = EditArgs(prompt="black and white", video=str(clip), provider="local", watermark="me")
    result = await dry(service, args)
    assert result.dry_run is not None and result.dry_run.request.method == "RENDER"
    assert list(jobs.iterdir()) == [] and (await store.list_edits())[0] == []
    assert result.estimated_cost_usd == 0 and result.cost_basis == "free"

    edit, _ = await service.submit(args)
    assert edit.provider_task_id is not None
    job = json.loads((jobs / edit.provider_task_id / "job.json").read_text())
    body = result.dry_run.request.body
    # Each call reads its own private copy of the file (same name), so only that path differs.
    assert Path(body["video"]).name == Path(job["video"]).name == "clip.mp4"
    assert {key: job[key] for key in body if key != "video"} == {
        k: v for k, v in body.items() if k != "video"
    }


async def test_a_dry_run_refuses_what_a_real_call_refuses(tmp_path: Path) -> None:
    """Invalid arguments fail the dry run with the same message, and nothing is sent."""
    async with rig(tmp_path, "runway") as (fake, service, _):
        args = EditArgs(prompt="snow", video=VIDEO, provider="runway", watermark="hi")
        with pytest.raises(InvalidInput) as dry_error:
            await dry(service, args)
        with pytest.raises(InvalidInput) as real_error:
            await service.submit(args)
    assert dry_error.value.message == real_error.value.message
    assert fake.requests == []


@asynccontextmanager
async def served(tmp_path: Path, mode: str, **settings: Any) -> AsyncIterator[tuple[Client, FakeRunway]]:
    fake = FakeRunway(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        config = make_settings(
            tmp_path, default_provider="runway", runway_api_key=TEST_KEY, probe_urls=False, **settings
        )
        provider = RunwayProvider(http, api_key=TEST_KEY, base_url=BASE)
        server = create_server(config, providers={"runway": provider}, store=InMemoryEditStore(), http=http)
        async with Client(server, mode=mode) as client:
            yield client, fake


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_tool_answers_a_dry_run_within_its_published_schema(tmp_path: Path, mode: str) -> None:
    """dry_run=true: a valid structured answer (no edit id, the masked request), a readable text, no edit."""
    async with served(tmp_path, mode) as (client, fake):
        result = await client.call_tool(
            "edit_video", {"prompt": "snow", "video": VIDEO, "model": "gen4_aleph", "dry_run": True}
        )
        assert not result.is_error, result.content
        data = result.structured_content
        assert data is not None and data["edit_id"] is None and data["status"] is None
        assert data["dry_run"]["request"]["headers"]["authorization"] == "Bearer ***"
        assert data["dry_run"]["request"]["url"] == f"{BASE}/v1/video_to_video"
        assert data["estimated_cost_usd"] == 0.75 and data["dry_run"]["budget"] is None
        text = text_of(result)
        assert text.startswith("Dry run: nothing was uploaded, sent or stored.") and "$0.75" in text
        listed = await client.call_tool("list_edits", {})
        assert listed.structured_content == {"edits": [], "next_cursor": None}
    assert fake.requests == []


async def test_a_real_edit_reports_its_estimated_cost_in_the_result_and_the_record(tmp_path: Path) -> None:
    """edit_video's record and text carry the quote; get_edit_status shows the same stored figure."""
    async with served(tmp_path, "auto") as (client, _):
        started = await client.call_tool(
            "edit_video", {"prompt": "snow", "video": VIDEO, "model": "gen4_aleph"}
        )
        record = started.structured_content
        assert record is not None and record["estimated_cost_usd"] == 0.75
        assert record["cost_basis"].startswith("5 s × $0.15/s") and "dry_run" not in record
        assert "Estimated $0.75 (5 s × $0.15/s" in text_of(started)
        status = await client.call_tool("get_edit_status", {"edit_id": record["edit_id"]})
        assert status.structured_content is not None
        assert status.structured_content["estimated_cost_usd"] == 0.75


async def test_edit_video_publishes_nullable_ids_while_other_tools_keep_them_required(tmp_path: Path) -> None:
    """Only edit_video's schema allows a null edit_id (its dry run); get_edit_status always has one."""
    async with served(tmp_path, "auto") as (client, _):
        tools = {t.name: t for t in (await client.list_tools()).tools}
    edit_schema, status_schema = tools["edit_video"].output_schema, tools["get_edit_status"].output_schema
    assert edit_schema is not None and status_schema is not None
    assert "null" in edit_schema["properties"]["edit_id"]["type"]  # written as a type list, not an anyOf
    assert "dry_run" in edit_schema["properties"] and "dry_run" not in status_schema["properties"]
    assert status_schema["properties"]["edit_id"]["type"] == "string"
    assert "edit_id" in status_schema["required"]
