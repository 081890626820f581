"""Tasks on 2026-07-28 (the io.modelcontextprotocol/tasks extension, SEP-2663), in-process with the SDK's
client and a client extension that declares it: an edit is a task whose id is the edit id."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx2
import mcp.types as types
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client import ClientRequestContext
from mcp.client.stdio import stdio_client

from aleph_mcp.providers.kie import KieProvider
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.server import create_server
from aleph_mcp.store import EditStore, InMemoryEditStore, SQLiteEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.base import DEFAULT_STEPS, FakeAPI, State
from .fakes.kie import FakeKie
from .fakes.runway import FakeRunway
from .stdio import served_fakes, server_env
from .task_clients import Ack, TaskCreated, TasksClient, TaskSnapshot, task_request

VIDEO = "https://cdn.example.com/in/clip.mp4"
EDIT = {"prompt": "make it snow", "video": VIDEO}
LONG: tuple[State, ...] = ("queued",) + ("running",) * 1000


async def short_pause(seconds: float) -> None:
    """The test client's wait between polls: it checks pollIntervalMs but does not sit out whole seconds."""
    assert seconds >= 1
    await anyio.sleep(0.02)


@asynccontextmanager
async def served(
    tmp_path: Path,
    fake: FakeAPI,
    *,
    store: EditStore | None = None,
    tasks: bool = True,
    tasks_client: TasksClient | None = None,
    elicitation_callback: Any = None,
    **overrides: Any,
) -> AsyncIterator[Client]:
    """A client (declaring Tasks unless `tasks=False`) against a server whose one provider talks to `fake`."""
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        base = "http://fake.invalid"
        name = fake.name
        provider: Any = (
            KieProvider(http, api_key=TEST_KEY, base_url=base, upload_base_url=base)
            if name == "kie"
            else RunwayProvider(http, api_key=TEST_KEY, base_url=base)
        )
        keyed = {f"{name}_api_key": TEST_KEY, f"{name}_base_url": base}  # results come from its origin
        settings = make_settings(tmp_path, default_provider=name, probe_urls=False, **keyed, **overrides)
        server = create_server(
            settings, providers={name: provider}, store=store or InMemoryEditStore(), http=http
        )
        extensions = [tasks_client or TasksClient(short_pause)] if tasks else []
        async with Client(server, extensions=extensions, elicitation_callback=elicitation_callback) as client:
            yield client


async def create(client: Client) -> TaskCreated:
    result = await client.session.call_tool("edit_video", EDIT, allow_claimed=True)
    assert isinstance(result, TaskCreated), result
    return result


async def snapshot(client: Client, task_id: str) -> TaskSnapshot:
    return await client.session.send_request(task_request("tasks/get", task_id), TaskSnapshot)


async def until_ended(client: Client, task_id: str) -> TaskSnapshot:
    with anyio.fail_after(20):
        while (task := await snapshot(client, task_id)).status == "working":
            assert task.poll_interval_ms is not None and task.poll_interval_ms >= 1000
            await client.call_tool("get_edit_status", {"edit_id": task_id, "wait_seconds": 1})
    return task


async def status_result(client: Client, edit_id: str) -> types.CallToolResult:
    return await client.call_tool("get_edit_status", {"edit_id": edit_id})


async def sent(client: Client, edit_id: str) -> bool:
    """Whether the provider has the edit (a cancel before that is refused as "still being sent")."""
    record = (await status_result(client, edit_id)).structured_content
    return record is not None and bool(record["provider_task_id"])


async def test_edit_video_answers_a_task_whose_id_is_the_edit_and_whose_result_is_get_edit_status(
    tmp_path: Path,
) -> None:
    """CreateTaskResult (working, ttlMs null, pollIntervalMs) -> tasks/get working -> completed + record."""
    async with served(tmp_path, FakeRunway(TEST_KEY)) as client:
        created = await create(client)
        assert created.status == "working" and created.ttl_ms is None
        record = (await status_result(client, created.task_id)).structured_content
        assert record is not None and record["edit_id"] == created.task_id and record["status"] == "queued"
        assert created.poll_interval_ms is not None and created.poll_interval_ms % 1000 == 0
        assert created.status_message is not None and created.task_id in created.status_message
        done = await until_ended(client, created.task_id)
        assert done.status == "completed" and done.poll_interval_ms is None and done.result is not None
        expected = await status_result(client, created.task_id)
        got = types.CallToolResult.model_validate(done.result, by_name=False)
        assert got.structured_content == expected.structured_content and got.content == expected.content
        assert got.structured_content is not None and got.structured_content["status"] == "succeeded"
        assert [b.type for b in got.content] == ["text", "resource_link", "resource_link", "image"]
        assert done.created_at == created.created_at and done.last_updated_at >= created.last_updated_at


async def test_call_tool_through_the_extension_returns_the_finished_edit(tmp_path: Path) -> None:
    """The client extension resolves the task: call_tool returns the succeeded edit's result."""
    async with served(tmp_path, FakeRunway(TEST_KEY)) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("edit_video", EDIT)
        assert not result.is_error and result.structured_content is not None
        assert result.structured_content["status"] == "succeeded"


async def test_the_cost_is_confirmed_on_the_call_and_then_the_edit_is_a_task(tmp_path: Path) -> None:
    """SEP-2663 with MRTR: the input_required round comes first, then the task; the person is asked once."""
    asked: list[types.ElicitRequestParams] = []

    async def person(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        return types.ElicitResult(action="accept", content={"confirm": True})

    tasks = TasksClient(short_pause)
    fake = FakeRunway(TEST_KEY)
    async with served(
        tmp_path, fake, tasks_client=tasks, elicitation_callback=person, confirm_above_usd=0.5
    ) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("edit_video", {**EDIT, "model": "gen4_aleph"})
    assert len(asked) == 1 and "$0.75" in asked[0].message
    assert result.structured_content is not None and result.structured_content["status"] == "succeeded"
    assert len(fake.creates) == 1 and tasks.polls[-1].status == "completed"


async def test_a_failed_edit_is_a_completed_task_with_an_error_result(tmp_path: Path) -> None:
    """SEP-2663: a tool result with isError is `completed`, not `failed`; the reason is in the result."""
    fake = FakeRunway(TEST_KEY, steps=("queued", "running", "failed"), failure_message="moderated")
    async with served(tmp_path, fake) as client:
        done = await until_ended(client, (await create(client)).task_id)
    assert done.status == "completed" and done.result is not None and done.error is None
    result = types.CallToolResult.model_validate(done.result, by_name=False)
    assert result.is_error and result.structured_content is not None
    assert "moderated" in result.structured_content["error"]["message"]


async def test_tasks_cancel_cancels_the_edit_and_a_second_cancel_acks_again(tmp_path: Path) -> None:
    """tasks/cancel acks, the task turns cancelled; cancelling the ended task acks again (SEP-2663)."""
    fake = FakeRunway(TEST_KEY, steps=LONG)
    async with served(tmp_path, fake) as client:
        created = await create(client)
        with anyio.fail_after(10):
            while not await sent(client, created.task_id):
                await anyio.sleep(0.02)
        ack = await client.session.send_request(task_request("tasks/cancel", created.task_id), Ack)
        assert ack.result_type == "complete"
        assert (await snapshot(client, created.task_id)).status == "cancelled"
        again = await client.session.send_request(task_request("tasks/cancel", created.task_id), Ack)
        assert again.result_type == "complete"
        fake.steps = DEFAULT_STEPS  # the next edit runs to its end
        done = await until_ended(client, (await create(client)).task_id)
        late = await client.session.send_request(task_request("tasks/cancel", done.task_id), Ack)
        assert late.result_type == "complete" and (await snapshot(client, done.task_id)).status == "completed"
    assert len(fake.calls("cancel")) == 1


async def test_tasks_cancel_at_a_provider_without_a_cancel_api_gives_cancel_edits_answer(
    tmp_path: Path,
) -> None:
    """kie cannot cancel: the same words as cancel_edit, as -32602; the task keeps working."""
    async with served(tmp_path, FakeKie(TEST_KEY, steps=LONG)) as client:
        created = await create(client)
        with pytest.raises(MCPError) as refused:
            await client.session.send_request(task_request("tasks/cancel", created.task_id), Ack)
        answer = await client.call_tool("cancel_edit", {"edit_id": created.task_id})
        assert (await snapshot(client, created.task_id)).status == "working"
    assert refused.value.error.code == types.INVALID_PARAMS
    assert answer.is_error and "kie has no cancel API" in refused.value.error.message
    assert "kie has no cancel API" in str(answer.content[0])


@pytest.mark.parametrize(
    ("method", "task_id", "code"),
    [
        ("tasks/get", "ed_00000000000000000000", types.INVALID_PARAMS),  # an edit id no edit has
        ("tasks/get", "x" * 5000, types.INVALID_PARAMS),
        ("tasks/get", "", types.INVALID_PARAMS),
        ("tasks/cancel", "../../etc/passwd", types.INVALID_PARAMS),
        ("tasks/update", "nope", types.INVALID_PARAMS),
        ("tasks/result", "nope", types.METHOD_NOT_FOUND),  # 2025-11-25 only
        ("tasks/list", "nope", types.METHOD_NOT_FOUND),
    ],
)
async def test_unknown_or_malformed_task_ids_and_2025_methods_are_protocol_errors(
    tmp_path: Path, method: str, task_id: str, code: int
) -> None:
    """Nothing that is not an edit resolves; tasks/result and tasks/list do not exist on this era."""
    async with served(tmp_path, FakeRunway(TEST_KEY)) as client:
        with pytest.raises(MCPError) as refused:
            await client.session.send_request(task_request(method, task_id), Ack)
    assert refused.value.error.code == code


async def test_a_client_without_the_extension_gets_plain_results_and_no_tasks_methods(tmp_path: Path) -> None:
    """No declaration: edit_video answers the record as before, and tasks/get is -32021."""
    async with served(tmp_path, FakeRunway(TEST_KEY), tasks=False) as client:
        started = await client.call_tool("edit_video", EDIT)
        record = started.structured_content
        assert not started.is_error and record is not None and record["status"] == "queued"
        with pytest.raises(MCPError) as refused:
            await snapshot(client, record["edit_id"])
    assert refused.value.error.code == types.MISSING_REQUIRED_CLIENT_CAPABILITY


async def test_refusals_dry_runs_and_other_tools_are_not_tasks(tmp_path: Path) -> None:
    """Only an edit that started is a task: a dry run and a bad argument come back as tool results."""
    async with served(tmp_path, FakeRunway(TEST_KEY)) as client:
        dry = await client.session.call_tool("edit_video", {**EDIT, "dry_run": True}, allow_claimed=True)
        bad = await client.session.call_tool(
            "edit_video", {**EDIT, "video": "/nowhere.mp4"}, allow_claimed=True
        )
        listed = await client.session.call_tool("list_edits", {}, allow_claimed=True)
    assert isinstance(dry, types.CallToolResult) and not dry.is_error
    assert isinstance(bad, types.CallToolResult) and bad.is_error
    assert isinstance(listed, types.CallToolResult) and listed.structured_content == {
        "edits": [],
        "next_cursor": None,
    }


async def test_a_task_created_before_a_restart_is_served_by_the_next_server(tmp_path: Path) -> None:
    """Task state is the edit record: a new server on the same store finishes and serves the task."""
    fake = FakeRunway(TEST_KEY)
    path = tmp_path / "edits.db"
    first = SQLiteEditStore(path)
    async with served(tmp_path, fake, store=first) as client:
        created = await create(client)
    await first.close()
    second = SQLiteEditStore(path)
    try:
        async with served(tmp_path, fake, store=second) as client:
            done = await until_ended(client, created.task_id)
    finally:
        await second.close()
    assert done.status == "completed" and done.result is not None and len(fake.creates) == 1


@asynccontextmanager
async def stdio_tasks_client(env: dict[str, str], log: TextIO) -> AsyncIterator[Client]:
    """`python -m aleph_mcp` as a child process, a 2026-07-28 client declaring Tasks connected over stdio."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "aleph_mcp"], env=env)
    async with Client(stdio_client(params, errlog=log), extensions=[TasksClient(short_pause)]) as client:
        assert client.protocol_version == "2026-07-28"
        yield client


async def test_a_second_process_on_the_data_dir_serves_the_task_a_first_one_created(tmp_path: Path) -> None:
    """Two real server processes: one answers the task, the other serves tasks/get to its result."""
    with served_fakes() as (origin, apis), (tmp_path / "server.log").open("w") as log:
        env = server_env(origin, tmp_path / "data", "runway")
        async with stdio_tasks_client(env, log) as first, stdio_tasks_client(env, log) as second:
            created = await create(first)
            done = await until_ended(second, created.task_id)
            again = await snapshot(first, created.task_id)
    assert done.status == "completed" and done.result is not None
    assert done.result["structuredContent"]["status"] == "succeeded"
    assert again.model_dump() == done.model_dump() and len(apis["runway"].creates) == 1
