"""Tasks on 2025-11-25 connections (the spec's experimental core Tasks, SEP-1686).

The SDK sieves every handshake-era `tools/call` handler result through `CallToolResult` (mcp 2.3
`ServerRunner._serialize`, which answers a `CreateTaskResult` with -32603), and builds the `initialize`
capabilities and `tools/list` without any tasks field. Server middleware (`MCPServer(middleware=...)`) runs
outside that sieve and may shape what it returns, so this one does the three things the SDK cannot:

- `initialize` advertises `capabilities.tasks` (list, cancel, requests.tools.call);
- `tools/list` marks edit_video `execution.taskSupport: "optional"`; the other tools stay without it;
- a `tools/call` of edit_video with `params.task` runs the call as usual, then answers the edit it started
  as a `CreateTaskResult`. A refusal or a dry run starts nothing and is answered as the plain tool result.

`tasks/get`, `tasks/result`, `tasks/list` and `tasks/cancel` are the handlers below (bound in `tasks.py`).
"""

from __future__ import annotations

from typing import Any

import mcp.types as types
from mcp import MCPError
from mcp.server import ServerRequestContext
from mcp.server.context import CallNext, HandlerResult

from aleph_mcp.errors import AlephError
from aleph_mcp.records import summary, to_record
from aleph_mcp.server.content import inline_still
from aleph_mcp.server.task_edits import (
    LEGACY,
    LEGACY_ERA,
    TASK_TOOL,
    cancel_task,
    edit_of,
    owner_in,
    started_edit_id,
    state_in,
    task_of,
    task_result,
)

CAPABILITY: dict[str, Any] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
RELATED_TASK = "io.modelcontextprotocol/related-task"
IMMEDIATE_RESPONSE = "io.modelcontextprotocol/model-immediate-response"
LIST_PAGE = 50
RESULT_WAIT = 50.0  # seconds per wait_for_end round while tasks/result blocks


async def legacy_tasks(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """The middleware: only 2025-11-25 connections are touched, and only these three methods."""
    if ctx.method == "initialize":
        return _advertise(await call_next(ctx))
    if ctx.protocol_version != LEGACY:
        return await call_next(ctx)
    if ctx.method == "tools/list":
        return _mark_task_tool(await call_next(ctx))
    if ctx.method == "tools/call" and isinstance(ctx.params, dict) and ctx.params.get("task") is not None:
        return await _call_as_task(ctx, call_next)
    return await call_next(ctx)


def _advertise(result: HandlerResult) -> HandlerResult:
    # Before the handshake commits, ctx.protocol_version is not yet the negotiated one: read the answer.
    if isinstance(result, dict) and result.get("protocolVersion") == LEGACY:
        capabilities = dict(result.get("capabilities") or {})
        capabilities["tasks"] = CAPABILITY
        result = {**result, "capabilities": capabilities}
    return result


def _mark_task_tool(result: HandlerResult) -> HandlerResult:
    if not isinstance(result, dict):
        return result
    tools = [
        {**tool, "execution": {"taskSupport": "optional"}} if tool.get("name") == TASK_TOOL else tool
        for tool in result.get("tools", [])
    ]
    return {**result, "tools": tools}


async def _call_as_task(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    name = ctx.params.get("name") if isinstance(ctx.params, dict) else None
    if name != TASK_TOOL:
        # The spec's answer for a tool whose taskSupport is absent (forbidden).
        raise MCPError(code=types.METHOD_NOT_FOUND, message=f"Tool {name!r} does not support tasks")
    result = await call_next(ctx)
    if not isinstance(result, dict):
        return result
    edit_id = started_edit_id(types.CallToolResult.model_validate(result, by_name=False))
    if edit_id is None:
        return result
    state = state_in(ctx)
    edit = await edit_of(state, edit_id, owner_in(ctx))
    immediate = summary(to_record(edit, poll_interval=state.poll_interval))
    return {
        "task": task_of(edit, state.poll_interval, LEGACY_ERA),
        "_meta": {IMMEDIATE_RESPONSE: immediate},
    }


async def get_task(ctx: ServerRequestContext[Any, Any], params: types.GetTaskRequestParams) -> HandlerResult:
    state = state_in(ctx)
    return task_of(await edit_of(state, params.task_id, owner_in(ctx)), state.poll_interval, LEGACY_ERA)


async def task_payload(
    ctx: ServerRequestContext[Any, Any], params: types.GetTaskPayloadRequestParams
) -> HandlerResult:
    """tasks/result: blocks until the edit ends, then what the tool call would have returned."""
    state, owner = state_in(ctx), owner_in(ctx)
    edit = await edit_of(state, params.task_id, owner)
    while not edit.is_terminal:
        edit = await state.service.wait_for_end(edit.edit_id, RESULT_WAIT, owner=owner)
    result = task_result(edit, state.poll_interval, LEGACY, await inline_still(state.archive, edit))
    meta = {**(result.get("_meta") or {}), RELATED_TASK: {"taskId": edit.edit_id}}
    return {**result, "_meta": meta}


async def list_tasks(
    ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams
) -> HandlerResult:
    """The caller's edits on the data dir, newest first: what list_edits shows them."""
    state = state_in(ctx)
    try:
        edits, cursor = await state.service.list(
            status=None, provider=None, limit=LIST_PAGE, cursor=params.cursor, owner=owner_in(ctx)
        )
    except AlephError as exc:
        raise MCPError(code=types.INVALID_PARAMS, message=exc.message) from None
    listed: dict[str, Any] = {"tasks": [task_of(edit, state.poll_interval, LEGACY_ERA) for edit in edits]}
    if cursor is not None:
        listed["nextCursor"] = cursor
    return listed


async def cancel(ctx: ServerRequestContext[Any, Any], params: types.CancelTaskRequestParams) -> HandlerResult:
    """tasks/cancel answers with the task, now cancelled (2025-11-25's CancelTaskResult)."""
    state = state_in(ctx)
    edit = await cancel_task(state, params.task_id, owner_in(ctx), LEGACY_ERA)
    return task_of(edit, state.poll_interval, LEGACY_ERA)
