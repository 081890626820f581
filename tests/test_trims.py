"""Trims: start_seconds with end_seconds or duration_seconds edit only that part, cut here before sending."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client

from aleph_mcp.providers import runway
from aleph_mcp.server import create_server

from .conftest import TEST_KEY, make_settings
from .fakes.runway import FakeRunway
from .media import indices, make_clip, make_counter_clip, played
from .results import text_of
from .test_chains import finished, local_client, mixed_client, refused, started
from .test_inputs import CDN, cdn_handler, public_dns, served

FPS = 12


@pytest.fixture
def counter(inputs: Path) -> Path:
    """3 s at 12 fps, a keyframe every second (frames 0, 12, 24), B-frames between, a chirp."""
    return make_counter_clip(inputs / "counter.mp4", seconds=3, fps=FPS, size=(96, 54))


@pytest.mark.parametrize(
    ("trim", "first", "frames", "shown"),
    [
        ({"start_seconds": 1, "end_seconds": 2}, 12, 12, "1-2 s"),  # on keyframes: a stream copy
        ({"start_seconds": 0.5, "duration_seconds": 1.5}, 6, 18, "0.5-2 s"),  # off: re-encoded
        ({"start_seconds": 2.5}, 30, 6, "2.5-3 s"),  # to the end
        ({"end_seconds": 0.75}, 0, 9, "0-0.75 s"),  # from the start
    ],
    ids=["on-keyframes", "off-keyframes", "to-the-end", "from-the-start"],
)
async def test_a_trim_edits_only_that_part_of_the_clip(
    tmp_path: Path, counter: Path, trim: dict[str, float], first: int, frames: int, shown: str
) -> None:
    """The local render gets the cut: the output shows exactly the frames of the trim, as long as it."""
    async with local_client(tmp_path) as client:
        begun = await started(client, prompt="make it black and white", video=str(counter), **trim)
        assert begun["trim"] == shown
        done = await finished(client, begun["edit_id"])
    out = Path(done["local_path"])
    assert indices(out) == list(range(first, first + frames))
    video = played(out)
    assert abs(video.duration - frames / FPS) < 1 / FPS and video.times[0] == 0
    assert video.audio is not None and abs(video.audio - video.duration) < 0.1


@pytest.mark.parametrize(
    ("trim", "words"),
    [
        ({"start_seconds": 4}, "past the clip's end"),
        ({"start_seconds": 1, "end_seconds": 9}, "past the clip's end"),
        ({"start_seconds": 2, "end_seconds": 1}, "The trim is empty"),
        ({"start_seconds": 1, "end_seconds": 1}, "The trim is empty"),
        ({"end_seconds": 2, "duration_seconds": 1}, "end_seconds or duration_seconds, not both"),
        ({"duration_seconds": 0}, "greater than 0"),
        ({"start_seconds": -1}, "greater than or equal to 0"),
    ],
)
async def test_a_trim_outside_the_clip_or_empty_is_refused_with_nothing_stored(
    tmp_path: Path, counter: Path, trim: dict[str, float], words: str
) -> None:
    """Each bad trim is refused with a message saying what is wrong; no edit exists afterwards."""
    async with local_client(tmp_path) as client:
        message = await refused(client, prompt="invert", video=str(counter), **trim)
        listed = (await client.call_tool("list_edits", {})).structured_content
    assert words in message, message
    assert isinstance(listed, dict) and listed["edits"] == []


async def test_the_window_warning_and_the_quote_apply_to_the_cut(tmp_path: Path, inputs: Path) -> None:
    """A 7 s clip for a 5 s model: warned and quoted 5 s whole; a 3 s trim of it neither, quoted 3 s."""
    clip = make_clip(inputs / "long.mp4", seconds=7, fps=6)
    call: dict[str, Any] = {"prompt": "snow", "video": str(clip), "model": "gen4_aleph", "dry_run": True}
    async with served(tmp_path, FakeRunway(TEST_KEY), "runway") as client:
        whole = (await client.call_tool("edit_video", call)).structured_content
        part = await client.call_tool("edit_video", {**call, "start_seconds": 2, "duration_seconds": 3})
    cut = part.structured_content
    assert isinstance(whole, dict) and isinstance(cut, dict)
    assert any("first 5 s" in w for w in whole["warnings"]) and whole["cost_basis"].startswith("5 s")
    assert cut["warnings"] == [] and cut["cost_basis"].startswith("3 s"), cut
    assert cut["dry_run"]["trim"] == "2-5 s"
    assert "Only 2-5 s of the input is edited" in text_of(part)


async def test_a_url_input_is_fetched_cut_and_uploaded(tmp_path: Path, counter: Path) -> None:
    """A trimmed URL input is fetched under the fetch policy, cut here and uploaded as a file."""
    fake = FakeRunway(TEST_KEY)
    url = f"https://{CDN}/clips/counter.mp4"
    async with served(tmp_path, fake, "runway", cdn={"/clips/counter.mp4": counter.read_bytes()}) as client:
        begun = await started(client, prompt="snow", video=url, start_seconds=1, end_seconds=3)
    assert begun["trim"] == "1-3 s" and len(fake.uploads) == 1
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(fake.uploads[0]["content"])
    assert indices(cut) == list(range(12, 36))
    assert fake.creates[0].json["videoUri"].startswith("runway://")


async def test_a_trimmed_url_at_a_private_address_is_refused(tmp_path: Path) -> None:
    """Fetching to cut follows the fetch policy: a loopback URL is refused, nothing sent."""
    fake = FakeRunway(TEST_KEY)
    async with served(tmp_path, fake, "runway") as client:
        message = await refused(client, prompt="snow", video="https://127.0.0.1/x.mp4", end_seconds=1)
    assert "cannot be used" in message and fake.creates == [] and fake.uploads == []


async def test_a_data_uri_input_is_decoded_and_cut(tmp_path: Path, counter: Path) -> None:
    """A trimmed data: URI becomes a cut file sent by the provider's file route."""
    fake = FakeRunway(TEST_KEY)
    data = "data:video/mp4;base64," + base64.b64encode(counter.read_bytes()).decode()
    async with served(tmp_path, fake, "runway") as client:
        begun = await started(client, prompt="snow", video=data, duration_seconds=2)
    assert begun["trim"] == "0-2 s" and len(fake.uploads) == 1


async def test_the_trim_is_part_of_the_duplicate_fingerprint(tmp_path: Path, counter: Path) -> None:
    """The same trim again is the same edit; another trim of the same clip is a new one."""
    async with local_client(tmp_path) as client:
        one = await started(client, prompt="invert", video=str(counter), start_seconds=1, end_seconds=2)
        same = await started(client, prompt="invert", video=str(counter), start_seconds=1, duration_seconds=1)
        other = await started(client, prompt="invert", video=str(counter), start_seconds=0, end_seconds=2)
        whole = await started(client, prompt="invert", video=str(counter))
    assert same["edit_id"] == one["edit_id"] and same["duplicate_of_request"] is True
    assert len({one["edit_id"], other["edit_id"], whole["edit_id"]}) == 3


async def test_a_trim_for_a_url_only_provider_is_refused_naming_those_that_take_files(
    tmp_path: Path, counter: Path
) -> None:
    """crun takes only URLs and a trim is a file cut here: refused, naming local and runway, nothing sent."""
    fake = FakeRunway(TEST_KEY)
    async with mixed_client(tmp_path, fake) as (client, store):
        message = await refused(
            client, prompt="snow", video="https://cdn.example.com/a.mp4", provider="crun", end_seconds=1
        )
        edits, _ = await store.list_edits()
    assert "takes only URLs" in message and "local, runway" in message
    assert edits == [] and fake.creates == []


async def test_a_chain_and_a_trim_dry_run_shows_the_route_and_the_part(tmp_path: Path, counter: Path) -> None:
    """The dry run of a trimmed chain names the upload of the cut and the part; nothing is uploaded."""
    fake = FakeRunway(TEST_KEY)
    async with mixed_client(tmp_path, fake) as (client, store):
        parent = await finished(
            client, (await started(client, prompt="sepia", video=str(counter)))["edit_id"]
        )
        preview = await client.call_tool(
            "edit_video",
            {
                "prompt": "night",
                "from_edit": parent["edit_id"],
                "provider": "runway",
                "start_seconds": 1,
                "dry_run": True,
            },
        )
        edits, _ = await store.list_edits()
    shown = preview.structured_content
    assert isinstance(shown, dict) and shown["edit_id"] is None
    assert shown["dry_run"]["trim"] == "1-3 s" and "would first be uploaded" in shown["dry_run"]["uploads"][0]
    assert fake.uploads == [] and fake.creates == [] and len(edits) == 1


async def test_a_url_trimmed_for_local_is_fetched_and_rendered(tmp_path: Path, counter: Path) -> None:
    """local takes no URLs, but a trim of one is a local file: fetched, cut and rendered here."""
    handler = cdn_handler({"/clips/counter.mp4": counter.read_bytes()})
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as http:
        server = create_server(
            make_settings(tmp_path, default_provider="local"), http=http, resolver=public_dns
        )
        async with Client(server) as client:
            url = f"https://{CDN}/clips/counter.mp4"
            whole = await refused(client, prompt="invert", video=url)
            begun = await started(client, prompt="make it black and white", video=url, start_seconds=2)
            done = await finished(client, begun["edit_id"])
    assert "edits files on this machine" in whole
    assert indices(Path(done["local_path"])) == list(range(24, 36))


async def test_the_size_limit_applies_to_the_cut_not_the_whole_clip(
    tmp_path: Path, inputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clip over runway's upload limit is refused whole, but a small trim of it goes through."""
    clip = make_counter_clip(inputs / "big.mp4", seconds=3, fps=FPS, size=(96, 54))
    limit = clip.stat().st_size - 1
    caps = runway.CAPABILITIES
    monkeypatch.setattr(runway.RunwayProvider, "capabilities", replace(caps, upload_max_bytes=limit))
    async with served(tmp_path, FakeRunway(TEST_KEY), "runway") as client:
        whole = await refused(client, prompt="snow", video=str(clip))
        part = await started(client, prompt="snow", video=str(clip), end_seconds=1)
    assert "accepts at most" in whole and part["trim"] == "0-1 s"
