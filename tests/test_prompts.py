"""MCP prompts for the common Aleph jobs and completions, on both protocol eras."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from mcp import Client, MCPError

from aleph_mcp.models import Edit, EditStatus
from aleph_mcp.server import create_server
from aleph_mcp.store import InMemoryEditStore

from .conftest import make_settings

VIDEO = "https://cdn.example.com/in/clip.mp4"
ERAS = [pytest.param({}, id="2026"), pytest.param({"mode": "legacy"}, id="legacy")]
PROMPTS = {
    "restyle": {"video", "style", "provider"},
    "relight": {"video", "lighting", "direction", "provider"},
    "add_object": {"video", "object", "where", "transition", "provider"},
    "remove_object": {"video", "object", "provider"},
    "change_camera": {"video", "camera_move", "subject", "provider"},
    "change_weather_or_time": {"video", "change", "transition", "provider"},
    "continue_shot": {"video", "next_action", "camera_move", "provider"},
    "refine": {"edit_id", "change", "provider"},
}
# (prompt, arguments, words the Aleph prompt must contain)
RENDERS = [
    ("restyle", {"style": "watercolor painting"}, ["Transform the entire video into watercolor painting"]),
    (
        "relight",
        {"lighting": "moonlight", "direction": "from the left"},
        ["Relight", "moonlight, coming from"],
    ),
    (
        "add_object",
        {"object": "a red kite", "where": "in the sky"},
        ["Add a red kite in the sky", "first frame"],
    ),
    (
        "add_object",
        {"object": "a fox", "where": "on the left", "transition": "gradually over the shot"},
        ["appears gradually"],
    ),
    ("remove_object", {"object": "the logo on the wall"}, ["Remove the logo on the wall", "background"]),
    (
        "change_camera",
        {"camera_move": "slow dolly in", "subject": "the dancer"},
        ["new camera: slow dolly in on the dancer"],
    ),
    ("change_weather_or_time", {"change": "heavy snowfall"}, ["Change the scene to heavy snowfall"]),
    (
        "change_weather_or_time",
        {"change": "night", "transition": "gradually over the shot"},
        ["Gradually transform the scene into night"],
    ),
    (
        "continue_shot",
        {"next_action": "the car turns into an alley.", "camera_move": "tracking shot"},
        ["next shot", "end of this clip: the car turns into an alley. Camera: tracking shot."],
    ),
]


@asynccontextmanager
async def prompt_client(
    tmp_path: Path, store: InMemoryEditStore, **client_args: Any
) -> AsyncIterator[Client]:
    """An in-process client against a keyless server (only `local`) over `store`."""
    server = create_server(make_settings(tmp_path), store=store)
    async with Client(server, **client_args) as client:
        yield client


def edit(edit_id: str, status: EditStatus, created_at: float) -> Edit:
    return Edit(
        edit_id=edit_id,
        provider="local",
        model="ffmpeg",
        prompt="sepia",
        video="/in.mp4",
        status=status,
        created_at=created_at,
    )


@pytest.mark.parametrize("era", ERAS)
async def test_the_eight_prompts_are_listed_with_their_arguments(tmp_path: Path, era: dict[str, Any]) -> None:
    """prompts/list names every job with its arguments; the video (or edit) and the subject are required."""
    async with prompt_client(tmp_path, InMemoryEditStore(), **era) as client:
        listed = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(listed) == set(PROMPTS)
    for name, arguments in PROMPTS.items():
        args = {a.name: a for a in listed[name].arguments or []}
        assert set(args) == arguments, name
        assert args["edit_id" if name == "refine" else "video"].required is True
        assert args["provider"].required is False
        assert listed[name].description and listed[name].title
    assert {a.name for a in listed["restyle"].arguments or [] if a.required} == {"video", "style"}


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize(("name", "arguments", "expected"), RENDERS)
async def test_each_prompt_renders_an_aleph_prompt_and_the_call_to_make(
    tmp_path: Path, era: dict[str, Any], name: str, arguments: dict[str, str], expected: list[str]
) -> None:
    """The message holds an Aleph prompt describing the change and tells the agent to call edit_video."""
    async with prompt_client(tmp_path, InMemoryEditStore(), **era) as client:
        result = await client.get_prompt(name, {"video": VIDEO, **arguments})
    assert len(result.messages) == 1 and result.messages[0].role == "user"
    content = result.messages[0].content
    assert isinstance(content, types.TextContent)
    aleph_prompt = content.text.split("Aleph prompt:\n", 1)[1].split("\n\n", 1)[0]
    for words in expected:
        assert words in aleph_prompt, (words, aleph_prompt)
    assert ".." not in aleph_prompt  # a trailing period in an argument is not doubled
    assert f'Call edit_video with video="{VIDEO}"' in content.text


async def test_a_named_provider_is_carried_into_the_call(tmp_path: Path) -> None:
    """With provider=runway the instruction names it; an unknown provider is refused."""
    async with prompt_client(tmp_path, InMemoryEditStore()) as client:
        result = await client.get_prompt("restyle", {"video": VIDEO, "style": "anime", "provider": "runway"})
        content = result.messages[0].content
        assert isinstance(content, types.TextContent) and 'provider="runway"' in content.text
        with pytest.raises(MCPError):
            await client.get_prompt("restyle", {"video": VIDEO, "style": "anime", "provider": "runwayy"})
        with pytest.raises(MCPError):
            await client.get_prompt("restyle", {"video": VIDEO})


@pytest.mark.parametrize("era", ERAS)
async def test_prompt_arguments_complete_from_their_vocabulary(tmp_path: Path, era: dict[str, Any]) -> None:
    """A prefix brings matching styles, camera moves, changes and providers; the capability is announced."""
    async with prompt_client(tmp_path, InMemoryEditStore(), **era) as client:
        assert client.server_capabilities is not None
        assert client.server_capabilities.completions is not None

        async def complete(prompt: str, argument: str, value: str) -> list[str]:
            ref = types.PromptReference(name=prompt)
            result = await client.complete(ref, {"name": argument, "value": value})
            return result.completion.values

        assert await complete("restyle", "style", "wat") == ["watercolor painting"]
        assert await complete("change_camera", "camera_move", "dolly") == ["dolly out", "slow dolly in"]
        assert await complete("change_weather_or_time", "change", "SN") == ["heavy snowfall"]
        assert await complete("restyle", "provider", "k") == ["kie", "krea"]
        assert await complete("restyle", "video", "https") == []


@pytest.mark.parametrize("era", ERAS)
async def test_edit_ids_complete_by_prefix_from_the_store(tmp_path: Path, era: dict[str, Any]) -> None:
    """The record template offers every matching id, newest first; video and thumbnail only finished ones."""
    store = InMemoryEditStore()
    await store.add(edit("ed_aaaa0000000000000001", "succeeded", 1.0))
    await store.add(edit("ed_aaaa0000000000000002", "running", 2.0))
    await store.add(edit("ed_bbbb0000000000000003", "succeeded", 3.0))
    async with prompt_client(tmp_path, store, **era) as client:

        async def complete(uri: str, value: str) -> list[str]:
            ref = types.ResourceTemplateReference(uri=uri)
            return (await client.complete(ref, {"name": "edit_id", "value": value})).completion.values

        assert await complete("aleph://edits/{edit_id}", "ed_a") == [
            "ed_aaaa0000000000000002",
            "ed_aaaa0000000000000001",
        ]
        assert await complete("aleph://edits/{edit_id}/video", "ed_a") == ["ed_aaaa0000000000000001"]
        assert await complete("aleph://edits/{edit_id}/thumbnail", "") == [
            "ed_bbbb0000000000000003",
            "ed_aaaa0000000000000001",
        ]
        assert await complete("aleph://edits/{edit_id}", " ED_BB") == ["ed_bbbb0000000000000003"]
        assert await complete("aleph://edits/{edit_id}", "ed_z") == []
        assert await complete("aleph://other/{edit_id}", "ed_") == []


async def refine_text(client: Client, arguments: dict[str, str]) -> str:
    result = await client.get_prompt("refine", arguments)
    assert len(result.messages) == 1 and result.messages[0].role == "user"
    content = result.messages[0].content
    assert isinstance(content, types.TextContent)
    return content.text


@pytest.mark.parametrize("era", ERAS)
async def test_refine_writes_the_follow_up_call_on_the_previous_result(
    tmp_path: Path, era: dict[str, Any]
) -> None:
    """refine names the edit as from_edit, keeps its provider, and asks only for the new change."""
    store = InMemoryEditStore()
    done = edit("ed_" + "a" * 20, "succeeded", 1.0)
    done.provider = "runway"
    await store.add(done)
    async with prompt_client(tmp_path, store, **era) as client:
        text = await refine_text(client, {"edit_id": done.edit_id, "change": "now make it night."})
        other = await refine_text(client, {"edit_id": done.edit_id, "change": "snow", "provider": "kie"})
    aleph_prompt = text.split("Aleph prompt:\n", 1)[1].split("\n\n", 1)[0]
    assert aleph_prompt.startswith("Now make it night, applied consistently in every frame.")
    assert "Keep everything else as it is" in aleph_prompt and ".." not in aleph_prompt
    assert f'from_edit="{done.edit_id}", provider="runway"' in text and '"sepia"' in text
    assert "start_seconds" in text and "lineage" in text
    assert 'provider="kie"' in other


async def test_refine_refuses_an_unfinished_a_failed_and_an_unknown_edit(tmp_path: Path) -> None:
    """Only a succeeded edit of the caller's has a result to refine; the others are errors, not calls."""
    store = InMemoryEditStore()
    await store.add(edit("ed_" + "b" * 20, "running", 1.0))
    await store.add(edit("ed_" + "c" * 20, "failed", 2.0))
    theirs = edit("ed_" + "d" * 20, "succeeded", 3.0)
    theirs.owner = "token:mallory"
    await store.add(theirs)
    async with prompt_client(tmp_path, store) as client:
        messages = []
        for edit_id in ("b", "c", "d", "../x"):
            with pytest.raises(MCPError) as caught:
                await client.get_prompt(
                    "refine",
                    {"edit_id": "ed_" + edit_id * 20 if len(edit_id) == 1 else edit_id, "change": "night"},
                )
            messages.append(str(caught.value))
    assert "running" in messages[0] and "get_edit_status" in messages[0]
    assert "failed" in messages[1]
    assert "No edit" in messages[2] and "No edit" in messages[3]


async def test_refine_completes_edit_ids_of_finished_edits_only(tmp_path: Path) -> None:
    """The edit_id of refine completes from the caller's succeeded edits by prefix, like /video does."""
    store = InMemoryEditStore()
    await store.add(edit("ed_" + "a" * 20, "succeeded", 1.0))
    await store.add(edit("ed_" + "a" * 19 + "b", "running", 2.0))
    await store.add(edit("ed_" + "c" * 20, "succeeded", 3.0))
    async with prompt_client(tmp_path, store) as client:
        ref = types.PromptReference(type="ref/prompt", name="refine")
        found = await client.complete(ref, {"name": "edit_id", "value": "ed_a"})
        sheet = types.ResourceTemplateReference(type="ref/resource", uri="aleph://edits/{edit_id}/compare")
        sheets = await client.complete(sheet, {"name": "edit_id", "value": "ed_"})
    assert found.completion.values == ["ed_" + "a" * 20]
    assert sheets.completion.values == ["ed_" + "c" * 20, "ed_" + "a" * 20]
