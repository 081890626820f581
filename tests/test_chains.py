"""Chains: an earlier result as the next input (from_edit, aleph://edits/{id}/video), with its lineage."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import Client

from aleph_mcp.models import Edit, EditStatus
from aleph_mcp.providers.crun import CrunProvider
from aleph_mcp.providers.local import LocalProvider
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.runway import FakeRunway
from .http_server import http_client, served_http
from .media import duration_and_frames, first_frame
from .results import text_of

FAKE = "https://fake.invalid"  # the fakes answer in-process: https here only names the origin


async def finished(client: Client, edit_id: str) -> dict[str, Any]:
    with anyio.fail_after(30):
        while True:
            result = await client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": 5})
            record = result.structured_content
            assert isinstance(record, dict), text_of(result)
            if record["status"] in ("succeeded", "failed", "cancelled"):
                assert record["status"] == "succeeded", record
                return record


async def started(client: Client, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool("edit_video", arguments)
    assert not result.is_error, text_of(result)
    assert isinstance(result.structured_content, dict)
    return result.structured_content


async def refused(client: Client, **arguments: Any) -> str:
    result = await client.call_tool("edit_video", arguments)
    assert result.is_error, result.structured_content
    return text_of(result)


@asynccontextmanager
async def local_client(tmp_path: Path, **overrides: Any) -> AsyncIterator[Client]:
    settings = make_settings(tmp_path, default_provider="local", **overrides)
    async with Client(create_server(settings)) as client:
        yield client


@asynccontextmanager
async def mixed_client(tmp_path: Path, fake: FakeRunway) -> AsyncIterator[tuple[Client, InMemoryEditStore]]:
    """local, runway (against its fake) and crun (never reached) on one server."""
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        settings = make_settings(
            tmp_path, default_provider="local", runway_api_key=TEST_KEY, runway_base_url=FAKE
        )
        providers: dict[str, Any] = {
            "local": LocalProvider(settings.data_dir / "local-jobs"),
            "runway": RunwayProvider(http, api_key=TEST_KEY, base_url=FAKE),
            "crun": CrunProvider(http, api_key=TEST_KEY, base_url=FAKE),
        }
        store = InMemoryEditStore()
        server = create_server(settings, providers=providers, store=store, http=http)
        async with Client(server) as client:
            yield client, store


def steps(record: dict[str, Any]) -> list[tuple[str, str]]:
    return [(step["edit_id"], step["prompt"]) for step in record["lineage"] or []]


async def test_a_three_step_chain_shows_its_lineage_at_every_step(tmp_path: Path, clip: Path) -> None:
    """Edit, then edit the result twice (from_edit and the video URI): each record leads back to the clip."""
    async with local_client(tmp_path) as client:
        first = await finished(
            client, (await started(client, prompt="mirror it", video=str(clip)))["edit_id"]
        )
        assert first["lineage"] is None and first["parent_edit_id"] is None
        one = first["edit_id"]

        second = await started(client, prompt="make it black and white", from_edit=one)
        assert second["parent_edit_id"] == one
        assert steps(second) == [(one, "mirror it"), (second["edit_id"], "make it black and white")]
        assert second["lineage"][0]["input"] == str(clip)  # the root input
        assert second["lineage"][1]["input"] == f"aleph://edits/{one}/video"
        two = (await finished(client, second["edit_id"]))["edit_id"]

        third = await started(client, prompt="invert", video=f"aleph://edits/{two}/video")
        done = await finished(client, third["edit_id"])
        assert steps(done) == [
            (one, "mirror it"),
            (two, "make it black and white"),
            (done["edit_id"], "invert"),
        ]
        resource = (await client.read_resource(f"aleph://edits/{done['edit_id']}")).contents[0]
        assert isinstance(resource, types.TextResourceContents)
        shown = json.loads(resource.text)["lineage"]
        assert [s["edit_id"] for s in shown] == [one, two, done["edit_id"]] and shown[0]["input"] == str(clip)

        listed = (await client.call_tool("list_edits", {"parent": one})).structured_content
        assert isinstance(listed, dict) and [e["edit_id"] for e in listed["edits"]] == [two]
        assert (await client.call_tool("list_edits", {"parent": done["edit_id"]})).structured_content == {
            "edits": [],
            "next_cursor": None,
        }
    # Each step worked on the one before: mirrored red-left becomes red-right, then grey, then inverted grey.
    seconds, frames = duration_and_frames(Path(done["local_path"]))
    assert frames >= 10 and seconds > 0.5
    mirrored = first_frame(Path(first["local_path"]))[48, 10].astype(int)  # blue on the left now
    last = first_frame(Path(done["local_path"]))[48, 10].astype(int)  # then grey, then inverted
    assert mirrored[2] > mirrored[0] + 80 and abs(last[0] - last[2]) <= 6


async def test_the_same_parent_output_is_the_same_input_for_duplicates(tmp_path: Path, clip: Path) -> None:
    """from_edit and the video URI name one input: the second call returns the first edit; a trim differs."""
    async with local_client(tmp_path) as client:
        parent = await finished(client, (await started(client, prompt="sepia", video=str(clip)))["edit_id"])
        one = await started(client, prompt="invert", from_edit=parent["edit_id"])
        again = await started(client, prompt="invert", video=f"aleph://edits/{parent['edit_id']}/video")
        trimmed = await started(client, prompt="invert", from_edit=parent["edit_id"], end_seconds=0.5)
    assert again["edit_id"] == one["edit_id"] and again["duplicate_of_request"] is True
    assert trimmed["edit_id"] != one["edit_id"] and trimmed["duplicate_of_request"] is False


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"from_edit": "ed_00000000000000000000"}, "No edit 'ed_00000000000000000000' of yours"),
        ({"from_edit": "../../etc/passwd"}, "is not an edit id"),
        ({"from_edit": "ed_0000000000000000000/"}, "is not an edit id"),
        ({"video": "aleph://edits/../../archive/x.mp4/video"}, "must be aleph://edits/{edit_id}/video"),
        ({"video": "aleph://edits/..%2F..%2Fx/video"}, "is not an edit id"),
        (
            {"video": "aleph://edits/ed_00000000000000000000/thumbnail"},
            "must be aleph://edits/{edit_id}/video",
        ),
        ({"video": "aleph://etc/passwd"}, "must be aleph://edits/{edit_id}/video"),
    ],
)
async def test_a_made_up_or_malformed_parent_is_refused_before_anything_is_stored(
    tmp_path: Path, clip: Path, arguments: dict[str, str], words: str
) -> None:
    """Unknown ids, path separators and other aleph: URIs are refused clearly; no edit is recorded."""
    async with local_client(tmp_path) as client:
        message = await refused(client, prompt="invert", **arguments)
        listed = (await client.call_tool("list_edits", {})).structured_content
    assert words in message and "Nothing was sent" in message
    assert isinstance(listed, dict) and listed["edits"] == []


async def test_both_video_and_a_different_from_edit_are_refused(tmp_path: Path, clip: Path) -> None:
    """Two inputs at once is a mistake worth naming; neither is used."""
    async with local_client(tmp_path) as client:
        message = await refused(client, prompt="invert", video=str(clip), from_edit="ed_00000000000000000000")
        nothing = await refused(client, prompt="invert")
    assert "either `video` or `from_edit`" in message
    assert "Pass `video`" in nothing


async def test_an_unfinished_or_failed_parent_is_refused(tmp_path: Path, clip: Path) -> None:
    """A running edit has no result yet, a failed one never will: both refused, saying which it is."""
    store = InMemoryEditStore()
    statuses: list[tuple[str, EditStatus]] = [("ed_" + "1" * 20, "running"), ("ed_" + "2" * 20, "failed")]
    for edit_id, status in statuses:
        await store.add(
            Edit(edit_id=edit_id, provider="local", model="ffmpeg", prompt="x", video="/v", status=status)
        )
    settings = make_settings(tmp_path, default_provider="local")
    async with Client(create_server(settings, store=store)) as client:
        running = await refused(client, prompt="invert", from_edit="ed_" + "1" * 20)
        failed = await refused(client, prompt="invert", from_edit="ed_" + "2" * 20)
    assert "still running" in running and "wait for it to finish" in running
    assert "failed and has no video" in failed


async def test_a_parent_whose_archived_video_is_gone_is_refused(tmp_path: Path, clip: Path) -> None:
    """The archive is the parent's only source: a deleted file is said, not sent as nothing."""
    async with local_client(tmp_path) as client:
        parent = await finished(client, (await started(client, prompt="sepia", video=str(clip)))["edit_id"])
        Path(parent["local_path"]).unlink()
        message = await refused(client, prompt="invert", from_edit=parent["edit_id"])
    assert "archived video" in message and "is gone" in message


async def test_the_archive_is_read_even_outside_the_allowed_folders(tmp_path: Path, clip: Path) -> None:
    """The parent's file lies in the data dir, not in ALEPH_MCP_ALLOWED_DIRS: chained, it is still used;
    named as a path, it is still refused."""
    async with local_client(tmp_path) as client:
        parent = await finished(client, (await started(client, prompt="sepia", video=str(clip)))["edit_id"])
        as_path = await refused(client, prompt="invert", video=parent["local_path"])
        chained = await finished(
            client, (await started(client, prompt="invert", from_edit=parent["edit_id"]))["edit_id"]
        )
    assert "outside the allowed directories" in as_path
    assert chained["parent_edit_id"] == parent["edit_id"]


async def test_the_same_provider_gets_its_own_result_url_and_nothing_is_uploaded(tmp_path: Path) -> None:
    """runway after runway: the create names the parent's output URL; no upload is made."""
    fake = FakeRunway(TEST_KEY)
    async with mixed_client(tmp_path, fake) as (client, _):
        first = await started(
            client, prompt="snow", video="https://cdn.example.com/in.mp4", provider="runway"
        )
        parent = await finished(client, first["edit_id"])
        second = await started(client, prompt="night", from_edit=parent["edit_id"], provider="runway")
    assert fake.creates[1].json["videoUri"] == parent["output_url"]
    assert fake.uploads == [] and second["parent_edit_id"] == parent["edit_id"]


async def test_another_provider_gets_the_archived_file_uploaded(tmp_path: Path, clip: Path) -> None:
    """local then runway: the archived result goes through runway's upload route."""
    fake = FakeRunway(TEST_KEY)
    async with mixed_client(tmp_path, fake) as (client, _):
        parent = await finished(client, (await started(client, prompt="sepia", video=str(clip)))["edit_id"])
        await started(client, prompt="night", from_edit=parent["edit_id"], provider="runway")
    assert len(fake.uploads) == 1
    assert fake.uploads[0]["content"] == Path(parent["local_path"]).read_bytes()
    assert fake.creates[0].json["videoUri"].startswith("runway://")


async def test_an_expired_result_url_goes_by_upload_instead(tmp_path: Path) -> None:
    """A result URL older than the provider keeps it is not handed back: the archived file is uploaded."""
    fake = FakeRunway(TEST_KEY)
    async with mixed_client(tmp_path, fake) as (client, store):
        parent = await finished(
            client,
            (await started(client, prompt="snow", video="https://cdn.example.com/a.mp4", provider="runway"))[
                "edit_id"
            ],
        )
        edit = await store.get(parent["edit_id"])
        assert edit is not None and edit.finished_at is not None
        edit.finished_at -= 2 * 86400
        await store.save(edit)
        await started(client, prompt="night", from_edit=parent["edit_id"], provider="runway")
    assert len(fake.uploads) == 1 and fake.creates[1].json["videoUri"].startswith("runway://")


async def test_a_url_only_provider_is_refused_naming_one_that_can_take_it(tmp_path: Path, clip: Path) -> None:
    """crun takes only URLs; a local result cannot reach it: refused, naming local and runway."""
    fake = FakeRunway(TEST_KEY)
    async with mixed_client(tmp_path, fake) as (client, store):
        parent = await finished(client, (await started(client, prompt="sepia", video=str(clip)))["edit_id"])
        message = await refused(client, prompt="night", from_edit=parent["edit_id"], provider="crun")
        edits, _ = await store.list_edits()
    assert "crun cannot receive" in message and "local, runway" in message
    assert len(edits) == 1 and fake.creates == []


async def test_another_users_edit_cannot_be_a_parent_over_http(tmp_path: Path, clip: Path) -> None:
    """bob naming alice's finished edit reads exactly like naming an unknown id; nothing of his is stored."""
    unknown = "ed_00000000000000000000"
    settings = make_settings(
        tmp_path,
        http_tokens="alice=alice-token,bob=bob-token",
        http_allowed_dirs=str(clip.parent),
        default_provider="local",
        poll_interval=0.1,
        poll_max_interval=0.2,
    )
    async with served_http(settings) as base:
        async with http_client(base, "alice-token") as alice:
            parent = await finished(alice, (await started(alice, prompt="sepia", video=str(clip)))["edit_id"])
            mine = await started(alice, prompt="invert", from_edit=parent["edit_id"])
        async with http_client(base, "bob-token") as bob:
            theirs = await refused(bob, prompt="invert", from_edit=parent["edit_id"])
            made_up = await refused(bob, prompt="invert", from_edit=unknown)
            by_uri = await refused(bob, prompt="invert", video=f"aleph://edits/{parent['edit_id']}/video")
            listed = (await bob.call_tool("list_edits", {"parent": parent["edit_id"]})).structured_content
    assert mine["parent_edit_id"] == parent["edit_id"]
    assert theirs.replace(parent["edit_id"], unknown) == made_up == by_uri.replace(parent["edit_id"], unknown)
    assert isinstance(listed, dict) and listed["edits"] == []


async def test_a_dry_run_on_a_parent_shows_its_own_url_in_the_request(tmp_path: Path) -> None:
    """dry_run with from_edit: the exact create names the parent's URL; nothing is sent or stored."""
    fake = FakeRunway(TEST_KEY)
    async with mixed_client(tmp_path, fake) as (client, store):
        first = await started(
            client, prompt="snow", video="https://cdn.example.com/in.mp4", provider="runway"
        )
        parent = await finished(client, first["edit_id"])
        preview = await client.call_tool(
            "edit_video",
            {"prompt": "night", "from_edit": parent["edit_id"], "provider": "runway", "dry_run": True},
        )
        edits, _ = await store.list_edits()
    shown = preview.structured_content
    assert isinstance(shown, dict) and shown["dry_run"]["request"]["body"]["videoUri"] == parent["output_url"]
    assert shown["dry_run"]["uploads"] == [] and len(fake.creates) == 1 and len(edits) == 1


async def test_an_idempotency_key_on_a_parent_returns_that_edit_by_either_route(tmp_path: Path) -> None:
    """The same key and parent give the same edit even once the URL route gave way to an upload."""
    fake = FakeRunway(TEST_KEY)
    async with mixed_client(tmp_path, fake) as (client, store):
        first = await started(
            client, prompt="snow", video="https://cdn.example.com/in.mp4", provider="runway"
        )
        parent = await finished(client, first["edit_id"])
        call = {
            "prompt": "night",
            "from_edit": parent["edit_id"],
            "provider": "runway",
            "idempotency_key": "k1",
        }
        one = await started(client, **call)
        edit = await store.get(parent["edit_id"])
        assert edit is not None and edit.finished_at is not None
        edit.finished_at -= 2 * 86400  # its URL has lapsed: the archived file would be uploaded now
        await store.save(edit)
        again = await started(client, **call)
    assert again["edit_id"] == one["edit_id"] and len(fake.creates) == 2


@pytest.mark.parametrize("stored", ["file:///etc/passwd", "runway://elsewhere/x", "", "javascript:alert(1)"])
async def test_a_parent_url_that_is_not_a_web_url_is_never_handed_on(tmp_path: Path, stored: str) -> None:
    """Whatever the provider once answered as output_url, only an http(s) URL is reused; else upload."""
    fake = FakeRunway(TEST_KEY)
    async with mixed_client(tmp_path, fake) as (client, store):
        first = await started(
            client, prompt="snow", video="https://cdn.example.com/in.mp4", provider="runway"
        )
        parent = await finished(client, first["edit_id"])
        edit = await store.get(parent["edit_id"])
        assert edit is not None
        edit.output_url = stored or None
        await store.save(edit)
        await started(client, prompt="night", from_edit=parent["edit_id"], provider="runway")
    assert fake.creates[1].json["videoUri"].startswith("runway://ephemeral/") and len(fake.uploads) == 1
