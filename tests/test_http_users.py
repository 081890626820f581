"""Two signed-in users on one server: neither sees, reads, cancels, subscribes to or completes the other's."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import mcp.types as types
import pytest
from mcp import MCPError
from mcp.shared.exceptions import MCPDeprecationWarning

from .conftest import make_settings
from .http_server import http_client, served_http
from .task_clients import TaskCreated, TasksClient, TaskSnapshot, task_request

UNKNOWN = "ed_00000000000000000000"


def settings_for(tmp_path: Path, clip: Path, **overrides: Any) -> Any:
    return make_settings(
        tmp_path,
        http_tokens="alice=alice-token,bob=bob-token",
        http_allowed_dirs=str(clip.parent),
        default_provider="local",
        poll_interval=0.1,
        poll_max_interval=0.2,
        **overrides,
    )


def text(result: types.CallToolResult) -> str:
    return " ".join(b.text for b in result.content if isinstance(b, types.TextContent))


async def finished(client: Any, edit_id: str) -> dict[str, Any]:
    with anyio.fail_after(30):
        while True:
            result = await client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": 5})
            record = result.structured_content
            assert isinstance(record, dict), text(result)
            if record["status"] == "succeeded":
                return record


async def test_another_users_edit_answers_exactly_like_an_unknown_id(tmp_path: Path, clip: Path) -> None:
    """Status, cancel, resource reads, listings and completions hide alice's edit from bob completely."""
    async with served_http(settings_for(tmp_path, clip)) as base:
        async with http_client(base, "alice-token") as alice:
            started = await alice.call_tool("edit_video", {"prompt": "black and white", "video": str(clip)})
            assert isinstance(started.structured_content, dict), text(started)
            edit_id = started.structured_content["edit_id"]
            await finished(alice, edit_id)
            assert len((await alice.list_resources()).resources) == 1
        async with http_client(base, "bob-token") as bob:
            for tool in ("get_edit_status", "cancel_edit"):
                theirs = await bob.call_tool(tool, {"edit_id": edit_id})
                unknown = await bob.call_tool(tool, {"edit_id": UNKNOWN})
                assert theirs.is_error and unknown.is_error
                assert text(theirs).replace(edit_id, UNKNOWN) == text(unknown)
            listed = (await bob.call_tool("list_edits", {})).structured_content
            assert isinstance(listed, dict) and listed["edits"] == []
            assert (await bob.list_resources()).resources == []
            for suffix in ("", "/video", "/thumbnail", "/compare"):
                errors = []
                for target in (edit_id, UNKNOWN):
                    try:
                        await bob.read_resource(f"aleph://edits/{target}{suffix}")
                    except Exception as exc:  # the SDK raises the server's error answer
                        errors.append(str(exc).replace(edit_id, UNKNOWN))
                assert len(errors) == 2 and errors[0] == errors[1]
            ref = types.ResourceTemplateReference(type="ref/resource", uri="aleph://edits/{edit_id}")
            completion = await bob.complete(ref, {"name": "edit_id", "value": "ed_"})
            assert completion.completion.values == []


async def test_same_requests_and_keys_from_two_users_make_two_edits(tmp_path: Path, clip: Path) -> None:
    """Duplicate detection and idempotency keys are per user: bob's identical call is bob's own edit."""
    call = {"prompt": "mirrored", "video": str(clip), "idempotency_key": "job-1"}
    async with served_http(settings_for(tmp_path, clip)) as base:
        async with http_client(base, "alice-token") as alice:
            first = (await alice.call_tool("edit_video", call)).structured_content
            again = (await alice.call_tool("edit_video", call)).structured_content
        async with http_client(base, "bob-token") as bob:
            other = (await bob.call_tool("edit_video", call)).structured_content
    assert isinstance(first, dict) and isinstance(again, dict) and isinstance(other, dict)
    assert again["edit_id"] == first["edit_id"]
    assert other["edit_id"] != first["edit_id"] and other["duplicate_of_request"] is False


async def test_a_subscription_to_another_users_edit_hears_nothing(tmp_path: Path, clip: Path) -> None:
    """bob subscribes to alice's edit on both eras; alice's edit runs to its end; bob is told nothing."""
    heard: list[Any] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            heard.append(message)

    async with (
        served_http(settings_for(tmp_path, clip)) as base,
        http_client(base, "alice-token") as alice,
        http_client(base, "bob-token", mode="legacy", message_handler=on_message) as bob_legacy,
        http_client(base, "bob-token") as bob_modern,
    ):
        started = await alice.call_tool("edit_video", {"prompt": "sepia", "video": str(clip)})
        assert isinstance(started.structured_content, dict)
        edit_id = started.structured_content["edit_id"]
        uri = f"aleph://edits/{edit_id}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await bob_legacy.subscribe_resource(uri)
        async with bob_modern.listen(resource_subscriptions=[uri]) as subscription:
            await finished(alice, edit_id)
            with anyio.move_on_after(1):  # anything meant for bob would have arrived by now
                async for event in subscription:
                    heard.append(event)
    assert heard == []


async def test_local_paths_from_http_callers_are_refused_without_http_allowed_dirs(
    tmp_path: Path, clip: Path
) -> None:
    """Over HTTP a local path would name the server's files: refused, naming the alternatives."""
    settings = make_settings(tmp_path, http_tokens="alice=alice-token", allowed_dirs=str(clip.parent))
    async with served_http(settings) as base, http_client(base, "alice-token") as alice:
        refused = await alice.call_tool(
            "edit_video", {"prompt": "sepia", "video": str(clip), "provider": "local"}
        )
        listed = (await alice.call_tool("list_edits", {})).structured_content
    assert refused.is_error and "https URL or a data: URI" in text(refused)
    assert isinstance(listed, dict) and listed["edits"] == []


async def test_another_users_task_answers_exactly_like_an_unknown_task(tmp_path: Path, clip: Path) -> None:
    """Over HTTP, alice's edit as a task: bob's tasks/get and tasks/cancel get the unknown-task error."""
    async with served_http(settings_for(tmp_path, clip)) as base:
        tasks = [TasksClient(lambda seconds: anyio.lowlevel.checkpoint())]
        async with http_client(base, "alice-token", extensions=tasks) as alice:
            created = await alice.session.call_tool(
                "edit_video", {"prompt": "black and white", "video": str(clip)}, allow_claimed=True
            )
            assert isinstance(created, TaskCreated), created
            mine = await alice.session.send_request(task_request("tasks/get", created.task_id), TaskSnapshot)
            assert mine.task_id == created.task_id
        async with http_client(base, "bob-token", extensions=tasks) as bob:
            for method in ("tasks/get", "tasks/cancel"):
                answers = []
                for target in (created.task_id, UNKNOWN):
                    with pytest.raises(MCPError) as refused:
                        await bob.session.send_request(task_request(method, target), TaskSnapshot)
                    answers.append(refused.value.error)
                assert answers[0] == answers[1] and answers[0].code == types.INVALID_PARAMS


async def test_each_user_is_held_to_their_own_budget(tmp_path: Path, clip: Path) -> None:
    """With a per-user cap, alice's spend refuses alice's next edit while bob's still fits."""
    prices = {"local": {"usd": 0.5, "per": "edit"}}
    settings = settings_for(tmp_path, clip, budget_usd_per_user=0.75, prices=prices)
    async with served_http(settings) as base:
        async with http_client(base, "alice-token") as alice:
            first = await alice.call_tool("edit_video", {"prompt": "sepia", "video": str(clip)})
            second = await alice.call_tool("edit_video", {"prompt": "mirrored", "video": str(clip)})
        async with http_client(base, "bob-token") as bob:
            theirs = await bob.call_tool("edit_video", {"prompt": "sepia", "video": str(clip)})
    assert not first.is_error and not theirs.is_error, (text(first), text(theirs))
    assert second.is_error and "ALEPH_MCP_BUDGET_USD_PER_USER" in text(second)
