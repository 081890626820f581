"""Local videos in, previews out (issue 3): probing, uploads and data URIs, roots, thumbnails, size caps."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import Client, MCPError

from aleph_mcp.edits.preflight import Probe, check_probe, probe_file
from aleph_mcp.errors import InvalidInput
from aleph_mcp.media.thumbnails import extract_poster
from aleph_mcp.providers.aimlapi import AimlapiProvider
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.aimlapi import FakeAimlapi
from .fakes.base import FakeAPI
from .fakes.runway import FakeRunway
from .media import make_clip
from .results import text_of

CDN = "cdn.test"


def cdn_handler(files: dict[str, bytes]) -> Callable[[httpx2.Request], httpx2.Response]:
    """A CDN answering HEAD and ranged GETs for `files`, like a real static host."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        body = files.get(request.url.path)
        if body is None:
            return httpx2.Response(404)
        headers = {"content-type": "video/mp4", "content-length": str(len(body))}
        if request.method == "HEAD":
            return httpx2.Response(200, headers=headers)
        start, _, end = request.headers.get("range", "bytes=0-").removeprefix("bytes=").partition("-")
        part = body[int(start) : int(end) + 1 if end else None]
        return httpx2.Response(206, content=part, headers={"content-type": "video/mp4"})

    return handle


@asynccontextmanager
async def served(
    tmp_path: Path, fake: FakeAPI, name: str, cdn: dict[str, bytes] | None = None, **kw: Any
) -> AsyncIterator[Client]:
    handler = cdn_handler(cdn or {})
    # Fetches of a public host go to the address checked for it, naming the host in the Host header.
    transport = httpx2.MockTransport(lambda r: handler(r) if r.headers["host"] == CDN else fake(r))
    async with httpx2.AsyncClient(transport=transport) as http:
        base = "http://fake.invalid"
        adapters: dict[str, Any] = {
            "runway": lambda: RunwayProvider(http, api_key=TEST_KEY, base_url=base),
            "aimlapi": lambda: AimlapiProvider(http, api_key=TEST_KEY, base_url=base),
        }
        settings_kw = {"default_provider": name, f"{name}_api_key": TEST_KEY, f"{name}_base_url": base}
        settings_kw |= kw.pop("settings", {})
        server = create_server(
            make_settings(tmp_path, **settings_kw),
            providers={name: adapters[name]()},
            store=InMemoryEditStore(),
            http=http,
            resolver=public_dns,
        )
        async with Client(server, **kw) as client:
            yield client


async def public_dns(host: str, port: int) -> list[str]:
    """The CDN resolves to a public address (no test resolves a real name)."""
    return ["93.184.215.14"]


async def finish(client: Client, edit_id: str) -> types.CallToolResult:
    with anyio.fail_after(20):
        while True:
            result = await client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": 1})
            if result.structured_content["status"] in ("succeeded", "failed"):
                return result


# -- probing ---------------------------------------------------------------------------------------
async def test_a_real_clip_is_probed_for_duration_resolution_and_size(clip: Path) -> None:
    """PyAV reads the container: about 1 s, 160x96, h264, the file's size."""
    probe = await probe_file(clip)
    assert probe.width == 160 and probe.height == 96 and probe.codec == "h264"
    assert probe.size == clip.stat().st_size
    assert probe.duration is not None and 0.9 <= probe.duration <= 1.2


async def test_a_seven_second_clip_is_accepted_with_a_five_second_warning(inputs: Path) -> None:
    """Hosts that render 5 s get a warning naming the cut; aleph2 (30 s) gets none."""
    probe = await probe_file(make_clip(inputs / "long.mp4", seconds=7, fps=6))
    warnings = check_probe(probe, "kie", "aleph", limit=None)
    assert len(warnings) == 1 and "first 5 s" in warnings[0] and "7.0 s" in warnings[0]
    assert check_probe(probe, "runway", "aleph2", limit=None) == []


def test_a_file_over_the_providers_limit_is_refused_naming_other_providers() -> None:
    """kie takes 10 MB; 11 MB is refused with a route that works."""
    with pytest.raises(InvalidInput, match=r"at most 10.0 MB.*runway uploads take up to 200 MB"):
        check_probe(Probe(3.0, 640, 360, "h264", 11 * 1024 * 1024), "kie", "aleph", limit=10 * 1024 * 1024)


async def test_a_file_that_is_not_a_video_is_refused(inputs: Path) -> None:
    """A text file named .mp4 is refused before anything is sent."""
    fake = path = inputs / "notes.mp4"
    path.write_text("just some notes, not a video")
    with pytest.raises(InvalidInput, match="not a video"):
        await probe_file(fake)


async def test_refused_local_files_send_nothing_and_store_nothing(tmp_path: Path, inputs: Path) -> None:
    """Oversize for the data-URI route and non-video files never reach the provider or the edit list."""
    fake = FakeAimlapi(TEST_KEY)
    big = inputs / "big.mp4"
    big.write_bytes(b"\0" * (16 * 1024 * 1024 + 1))
    (inputs / "text.mp4").write_text("hello")
    async with served(tmp_path, fake, "aimlapi") as client:
        for path, expected in (
            (big, "runway uploads take up to 200 MB"),
            (inputs / "text.mp4", "not a video"),
        ):
            result = await client.call_tool("edit_video", {"prompt": "snow", "video": str(path)})
            assert result.is_error and expected in text_of(result)
        listed = await client.call_tool("list_edits", {})
        assert listed.structured_content == {"edits": [], "next_cursor": None}
    assert fake.requests == []


async def test_a_long_url_video_gets_a_warning_after_a_ranged_probe(tmp_path: Path, inputs: Path) -> None:
    """The URL is probed with HEAD and one ranged GET; a 7 s clip is accepted with the warning."""
    clip = make_clip(inputs / "seven.mp4", seconds=7, fps=6).read_bytes()
    fake = FakeRunway(TEST_KEY)
    async with served(tmp_path, fake, "runway", cdn={"/seven.mp4": clip}) as client:
        result = await client.call_tool(
            "edit_video", {"prompt": "snow", "video": f"https://{CDN}/seven.mp4", "model": "gen4_aleph"}
        )
        assert not result.is_error, result.content
        warnings = result.structured_content["warnings"]
        assert len(warnings) == 1 and "first 5 s" in warnings[0]
    assert len(fake.creates) == 1


async def test_an_oversize_url_is_refused_from_its_content_length(tmp_path: Path) -> None:
    """HEAD says 40 MB; Runway takes 32 MB by URL; nothing is created."""
    fake = FakeRunway(TEST_KEY)
    async with served(tmp_path, fake, "runway", cdn={"/big.mp4": b"\0" * (40 * 1024 * 1024)}) as client:
        result = await client.call_tool("edit_video", {"prompt": "snow", "video": f"https://{CDN}/big.mp4"})
        assert result.is_error and "at most 32.0 MB" in text_of(result)
    assert fake.creates == []


async def test_an_unreachable_url_is_not_refused_but_warned_about(tmp_path: Path) -> None:
    """The provider fetches from its own network: a URL this machine cannot read still goes ahead."""
    fake = FakeRunway(TEST_KEY)
    async with served(tmp_path, fake, "runway") as client:
        result = await client.call_tool("edit_video", {"prompt": "snow", "video": f"https://{CDN}/gone.mp4"})
        assert not result.is_error
        assert "could not be checked" in result.structured_content["warnings"][0]
    assert len(fake.creates) == 1


# -- routes for local files --------------------------------------------------------------------------
async def test_a_local_file_reaches_aimlapi_as_a_data_uri(tmp_path: Path, clip: Path) -> None:
    """AI/ML API has no upload route: the file travels inline as a data URI of its exact bytes."""
    fake = FakeAimlapi(TEST_KEY)
    async with served(tmp_path, fake, "aimlapi") as client:
        result = await client.call_tool("edit_video", {"prompt": "snow", "video": str(clip)})
        assert not result.is_error, result.content
        assert result.structured_content["warnings"] == []
    sent = fake.creates[0].json["video_url"]
    assert sent.startswith("data:video/mp4;base64,")
    assert base64.b64decode(sent.split(",", 1)[1]) == clip.read_bytes()


async def test_a_local_file_is_uploaded_to_runway_with_progress(tmp_path: Path, clip: Path) -> None:
    """Runway gets the file through /v1/uploads and the create names the runway:// URI."""
    fake = FakeRunway(TEST_KEY)
    messages: list[str] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")

    async with served(tmp_path, fake, "runway") as client:
        result = await client.call_tool(
            "edit_video", {"prompt": "snow", "video": str(clip)}, progress_callback=on_progress
        )
        assert not result.is_error, result.content
    assert fake.creates[0].json["videoUri"].startswith("runway://")
    assert any(m.startswith("Uploading clip.mp4 to runway") for m in messages)


async def test_files_inside_the_clients_roots_are_allowed_and_others_are_not(tmp_path: Path) -> None:
    """With no ALLOWED_DIRS, a root the client declared admits its files; a file outside stays refused."""
    root = tmp_path / "project"
    root.mkdir()
    inside = make_clip(root / "shot.mp4")
    outside = make_clip(tmp_path / "elsewhere.mp4")

    async def list_roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri=root.as_uri(), name="project")])

    fake = FakeRunway(TEST_KEY)
    async with served(
        tmp_path, fake, "runway", mode="legacy", list_roots_callback=list_roots, settings={"allowed_dirs": ""}
    ) as client:
        ok = await client.call_tool("edit_video", {"prompt": "snow", "video": str(inside)})
        assert not ok.is_error, ok.content
        refused = await client.call_tool("edit_video", {"prompt": "snow", "video": str(outside)})
        assert refused.is_error and "outside the allowed directories" in text_of(refused)
    assert len(fake.creates) == 1


async def test_without_roots_or_allowed_dirs_local_files_are_refused_with_how_to_allow(
    tmp_path: Path,
) -> None:
    """The message says how to allow a folder."""
    clip = make_clip(tmp_path / "clip.mp4")
    async with served(tmp_path, FakeRunway(TEST_KEY), "runway", settings={"allowed_dirs": ""}) as client:
        result = await client.call_tool("edit_video", {"prompt": "snow", "video": str(clip)})
        assert result.is_error and "ALEPH_MCP_ALLOWED_DIRS" in text_of(result)


# -- previews out ------------------------------------------------------------------------------------
def test_a_poster_is_extracted_from_a_real_mp4_as_a_small_jpeg(tmp_path: Path, clip: Path) -> None:
    """extract_poster writes a JPEG of the video's size (capped at 480 px wide)."""
    dest = tmp_path / "poster.jpg"
    extract_poster(clip, dest)
    data = dest.read_bytes()
    assert data[:3] == b"\xff\xd8\xff" and len(data) < 100_000


async def test_a_finished_edit_shows_an_inline_thumbnail_and_a_link_to_its_video(
    tmp_path: Path, inputs: Path
) -> None:
    """get_edit_status on success: text summary, record link, video link and an image under 1 MB."""
    fake = FakeRunway(TEST_KEY)
    fake.video_bytes = make_clip(inputs / "out.mp4").read_bytes()
    async with served(tmp_path, fake, "runway") as client:
        started = await client.call_tool("edit_video", {"prompt": "snow", "video": f"https://{CDN}/x.mp4"})
        done = await finish(client, started.structured_content["edit_id"])
        kinds = [block.type for block in done.content]
        assert kinds == ["text", "resource_link", "resource_link", "image"]
        image = done.content[3]
        assert isinstance(image, types.ImageContent) and image.mime_type == "image/jpeg"
        assert len(base64.b64decode(image.data)) < 1024 * 1024
        assert "succeeded" in text_of(done)
        thumb = await client.read_resource(done.structured_content["thumbnail_uri"])
        assert thumb.contents[0].mime_type == "image/jpeg"


async def test_reading_a_video_over_the_cap_gives_the_path_and_url_instead(tmp_path: Path) -> None:
    """Above ALEPH_MCP_MAX_RESOURCE_BYTES the read fails with where to find the file."""
    fake = FakeRunway(TEST_KEY)
    async with served(tmp_path, fake, "runway", settings={"max_resource_bytes": 100}) as client:
        started = await client.call_tool("edit_video", {"prompt": "snow", "video": f"https://{CDN}/x.mp4"})
        done = (await finish(client, started.structured_content["edit_id"])).structured_content
        with pytest.raises(MCPError, match="ALEPH_MCP_MAX_RESOURCE_BYTES") as caught:
            await client.read_resource(done["video_uri"])
        assert done["local_path"] in str(caught.value) and done["output_url"] in str(caught.value)
