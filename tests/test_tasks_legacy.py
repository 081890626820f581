"""Tasks on 2025-11-25 (the spec's experimental core Tasks): `python -m aleph_mcp` over stdio, spoken to in
raw JSON-RPC (the SDK's client cannot receive a CreateTaskResult), checked against the SDK's 2025-11-25
task types and the spec's field names."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

import anyio
import mcp.types as types
import pytest
from mcp import MCPError

from .fakes.base import State
from .stdio import VIDEO, served_fakes, server_env
from .task_clients import RawSession, raw_stdio

ARGS: dict[str, Any] = {"prompt": "make it snow", "video": VIDEO}
EDIT: dict[str, Any] = {"name": "edit_video", "arguments": ARGS, "task": {"ttl": 60000}}
LONG: tuple[State, ...] = ("queued",) + ("running",) * 1000
SLOW: tuple[State, ...] = ("queued",) + ("running",) * 10 + ("succeeded",)
TASK_KEYS = {"taskId", "status", "statusMessage", "createdAt", "lastUpdatedAt", "ttl", "pollInterval"}
RELATED = "io.modelcontextprotocol/related-task"


def checked_task(task: dict[str, Any]) -> types.Task:
    """A Task as the spec spells it: its keys only, ttl present (null: unlimited), valid as the SDK type."""
    assert set(task) <= TASK_KEYS and "ttl" in task and task["ttl"] is None, task
    return types.Task.model_validate(task, by_name=False)


async def create(session: RawSession) -> types.Task:
    created = await session.request("tools/call", EDIT)
    assert set(created) == {"task", "_meta"}, created
    assert created["_meta"]["io.modelcontextprotocol/model-immediate-response"].startswith("Edit ed_")
    types.CreateTaskResult.model_validate(created, by_name=False)
    return checked_task(created["task"])


async def get(session: RawSession, task_id: str) -> types.Task:
    return checked_task(await session.request("tasks/get", {"taskId": task_id}))


async def protocol_error(session: RawSession, method: str, params: dict[str, Any]) -> types.ErrorData:
    with pytest.raises(MCPError) as refused:
        await session.request(method, params)
    return refused.value.error


def open_log(tmp_path: Path) -> TextIO:
    return (tmp_path / "server.log").open("a")


async def test_the_handshake_advertises_tasks_and_edit_video_alone_offers_them(tmp_path: Path) -> None:
    """capabilities.tasks with list, cancel and tools.call; taskSupport optional on edit_video only."""
    with served_fakes() as (origin, _), open_log(tmp_path) as log:
        async with raw_stdio(server_env(origin, tmp_path / "data", "runway"), log) as session:
            listed = await session.request("tools/list")
    capabilities = session.initialized["capabilities"]
    assert capabilities["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    assert "extensions" not in capabilities  # the 2026 extension is not defined on this revision
    support = {tool["name"]: tool.get("execution") for tool in listed["tools"]}
    assert support.pop("edit_video") == {"taskSupport": "optional"}
    assert set(support.values()) == {None}


async def test_a_task_augmented_edit_runs_to_its_result_and_is_listed(tmp_path: Path) -> None:
    """CreateTaskResult -> tasks/get working with pollInterval -> tasks/result (blocks) = get_edit_status."""
    with served_fakes() as (origin, _), open_log(tmp_path) as log:
        async with raw_stdio(server_env(origin, tmp_path / "data", "runway"), log) as session:
            task = await create(session)
            assert task.status == "working" and task.poll_interval is not None
            assert task.poll_interval >= 1000 and task.poll_interval % 1000 == 0
            polled = await get(session, task.task_id)
            assert polled.task_id == task.task_id and polled.created_at == task.created_at
            with anyio.fail_after(30):
                payload = await session.request("tasks/result", {"taskId": task.task_id})
            direct = await session.request(
                "tools/call", {"name": "get_edit_status", "arguments": {"edit_id": task.task_id}}
            )
            done = await get(session, task.task_id)
            listed = await session.request("tasks/list")
            error = await protocol_error(session, "tasks/cancel", {"taskId": task.task_id})
    assert payload["_meta"][RELATED] == {"taskId": task.task_id}
    assert {k: v for k, v in payload.items() if k != "_meta"} == {
        k: v for k, v in direct.items() if k != "_meta"
    }
    assert payload["structuredContent"]["status"] == "succeeded" and payload["isError"] is False
    assert done.status == "completed" and done.poll_interval is None
    assert [checked_task(t).task_id for t in listed["tasks"]] == [task.task_id]
    assert error.code == types.INVALID_PARAMS and "terminal status 'completed'" in error.message


async def test_a_failed_edit_is_a_failed_task_whose_result_is_an_error_result(tmp_path: Path) -> None:
    """2025-11-25: a tool result with isError makes the task `failed`, with the reason as statusMessage."""
    with served_fakes(runway=("queued", "running", "failed")) as (origin, _), open_log(tmp_path) as log:
        async with raw_stdio(server_env(origin, tmp_path / "data", "runway"), log) as session:
            task = await create(session)
            with anyio.fail_after(30):
                payload = await session.request("tasks/result", {"taskId": task.task_id})
            failed = await get(session, task.task_id)
    assert payload["isError"] is True and payload["structuredContent"]["status"] == "failed"
    assert failed.status == "failed" and failed.status_message is not None
    assert "moderator" in failed.status_message


async def test_tasks_cancel_answers_the_cancelled_task_and_refuses_where_the_provider_cannot(
    tmp_path: Path,
) -> None:
    """runway: CancelTaskResult with status cancelled; kie (no cancel API): -32602 in cancel_edit's words."""
    with served_fakes(runway=LONG, kie=LONG) as (origin, _), open_log(tmp_path) as log:
        async with raw_stdio(server_env(origin, tmp_path / "data", "runway"), log) as session:
            task = await create(session)
            with anyio.fail_after(10):
                while not await sent(session, task.task_id):
                    await anyio.sleep(0.05)
            cancelled = checked_task(await session.request("tasks/cancel", {"taskId": task.task_id}))
            payload = await session.request("tasks/result", {"taskId": task.task_id})
            at_kie = await session.request("tools/call", {**EDIT, "arguments": {**ARGS, "provider": "kie"}})
            refused = await protocol_error(session, "tasks/cancel", {"taskId": at_kie["task"]["taskId"]})
    assert cancelled.status == "cancelled" and cancelled.task_id == task.task_id
    assert payload["structuredContent"]["status"] == "cancelled"
    assert refused.code == types.INVALID_PARAMS and "kie has no cancel API" in refused.message


async def sent(session: RawSession, edit_id: str) -> bool:
    answer = await session.request(
        "tools/call", {"name": "get_edit_status", "arguments": {"edit_id": edit_id}}
    )
    return bool(answer["structuredContent"]["provider_task_id"])


async def test_bad_task_ids_other_tools_and_2026_methods_are_protocol_errors(tmp_path: Path) -> None:
    """Unknown, empty or malformed ids and cursors: -32602; tasks on other tools, tasks/update: -32601."""
    with served_fakes() as (origin, _), open_log(tmp_path) as log:
        async with raw_stdio(server_env(origin, tmp_path / "data", "runway"), log) as session:
            errors = [
                await protocol_error(session, "tasks/get", {"taskId": "ed_00000000000000000000"}),
                await protocol_error(session, "tasks/result", {"taskId": ""}),
                await protocol_error(session, "tasks/cancel", {"taskId": "x" * 5000}),
                await protocol_error(session, "tasks/get", {"taskId": 7}),
                await protocol_error(session, "tasks/get", {}),
                await protocol_error(session, "tasks/list", {"cursor": "not-ours"}),
                await protocol_error(session, "tools/call", {**EDIT, "task": "soon"}),
            ]
            not_found = [
                await protocol_error(
                    session, "tools/call", {"name": "list_edits", "arguments": {}, "task": {}}
                ),
                await protocol_error(session, "tasks/update", {"taskId": "x", "inputResponses": {}}),
            ]
            plain = await session.request("tools/call", {k: v for k, v in EDIT.items() if k != "task"})
            dry = await session.request("tools/call", {**EDIT, "arguments": {**ARGS, "dry_run": True}})
    assert [e.code for e in errors] == [types.INVALID_PARAMS] * len(errors)
    assert [e.code for e in not_found] == [types.METHOD_NOT_FOUND] * 2
    assert plain["structuredContent"]["status"] == "queued" and "task" not in plain
    assert "task" not in dry and dry["isError"] is False


async def test_an_older_handshake_sees_no_tasks(tmp_path: Path) -> None:
    """2025-06-18 predates Tasks: no capability, tasks/get is -32601, params.task is ignored."""
    with served_fakes() as (origin, _), open_log(tmp_path) as log:
        async with raw_stdio(server_env(origin, tmp_path / "data", "runway"), log, "2025-06-18") as session:
            refused = await protocol_error(session, "tasks/get", {"taskId": "x"})
            plain = await session.request("tools/call", EDIT)
    assert "tasks" not in session.initialized["capabilities"]
    assert refused.code == types.METHOD_NOT_FOUND
    assert plain["structuredContent"]["status"] == "queued"


async def test_a_task_survives_a_restart_and_another_process_serves_its_result(tmp_path: Path) -> None:
    """Created in one process; a second one on the data dir sees it; after the first exits, a third serves
    tasks/result; one create at the provider in all."""
    with served_fakes(runway=SLOW) as (origin, apis), open_log(tmp_path) as log:
        # A process that exits mid-poll keeps its lease until it lapses: 4 s here (as in test_crash.py).
        env = server_env(origin, tmp_path / "data", "runway") | {"ALEPH_MCP_REQUEST_TIMEOUT": "1"}
        async with raw_stdio(env, log) as first:
            task = await create(first)
            async with raw_stdio(env, log) as second:
                seen = await get(second, task.task_id)
                listed = await second.request("tasks/list")
        async with raw_stdio(env, log) as third:
            with anyio.fail_after(30):
                payload = await third.request("tasks/result", {"taskId": task.task_id})
            done = await get(third, task.task_id)
    assert seen.task_id == task.task_id and seen.created_at == task.created_at
    assert [t["taskId"] for t in listed["tasks"]] == [task.task_id]
    assert payload["structuredContent"]["status"] == "succeeded" and done.status == "completed"
    assert len(apis["runway"].creates) == 1
