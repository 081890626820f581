"""Tasks for both protocol eras: the `io.modelcontextprotocol/tasks` extension (SEP-2663, 2026-07-28) and
the method bindings that also serve the 2025-11-25 methods (`tasks_legacy.py`).

2026-07-28: a client that declares the extension on its request and calls edit_video gets a
`CreateTaskResult` (`resultType: "task"`) for the edit it started; it polls `tasks/get`, whose `completed`
task inlines the result get_edit_status gives for the ended edit (a failed edit: `isError: true`, still
`completed`, as SEP-2663 prescribes). `tasks/cancel` acks once the edit is cancelled (an ended task: the same
ack, cancel is idempotent there) and refuses, as cancel_edit does, where the provider cannot cancel;
`tasks/update` acks (an edit never waits on input once started: its cost is confirmed on the tools/call
itself, as SEP-2663 advises, before the task exists). A refusal, a dry run, a client without the
extension, and every other tool get their ordinary results.

One binding per method name serves both eras (their payloads differ), and rejects the versions that do
not define the method with -32601.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import mcp.types as types
from mcp import MCPError
from mcp.server import ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.server.mcpserver import Extension, MethodBinding, require_client_extension
from mcp.types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from aleph_mcp.server import task_edits as te
from aleph_mcp.server import tasks_legacy
from aleph_mcp.server.content import inline_still

EXTENSION_ID = "io.modelcontextprotocol/tasks"
ACK = {"resultType": "complete"}

Handler = Callable[[ServerRequestContext[Any, Any], Any], Awaitable[HandlerResult]]


class UpdateTaskParams(types.RequestParams):
    task_id: str
    input_responses: dict[str, Any] = Field(default_factory=dict)


def declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request is on the modern wire and its client declared the extension."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and EXTENSION_ID in capabilities.extensions)


class EditTasks(Extension):
    identifier = EXTENSION_ID

    def methods(self) -> Sequence[MethodBinding]:
        return [
            MethodBinding("tasks/get", types.GetTaskRequestParams, _per_era(_get, tasks_legacy.get_task)),
            MethodBinding(
                "tasks/cancel", types.CancelTaskRequestParams, _per_era(_cancel, tasks_legacy.cancel)
            ),
            MethodBinding("tasks/update", UpdateTaskParams, _per_era(_update, None)),
            MethodBinding(
                "tasks/result", types.GetTaskPayloadRequestParams, _per_era(None, tasks_legacy.task_payload)
            ),
            MethodBinding(
                "tasks/list", types.PaginatedRequestParams, _per_era(None, tasks_legacy.list_tasks)
            ),
        ]

    async def intercept_tool_call(
        self, params: types.CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if params.name != te.TASK_TOOL or not declared(ctx):
            return await call_next(ctx)
        result = await call_next(ctx)  # an input_required round (confirming the cost) passes through
        if not isinstance(result, types.CallToolResult):
            return result
        edit_id = te.started_edit_id(result)
        if edit_id is None:
            return result
        state = te.state_in(ctx)
        # The edit is stored before edit_video returns, so tasks/get resolves as soon as this arrives.
        edit = await te.edit_of(state, edit_id, te.owner_in(ctx))
        return {"resultType": "task", **te.task_of(edit, state.poll_interval, te.MODERN_ERA)}


def _per_era(modern: Handler | None, legacy: Handler | None) -> Handler:
    async def handle(ctx: ServerRequestContext[Any, Any], params: Any) -> HandlerResult:
        if modern is not None and ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            require_client_extension(ctx, EXTENSION_ID)
            return await modern(ctx, params)
        if legacy is not None and ctx.protocol_version == te.LEGACY:
            return await legacy(ctx, params)
        raise MCPError(code=types.METHOD_NOT_FOUND, message="Method not found", data=ctx.method)

    return handle


async def _get(ctx: ServerRequestContext[Any, Any], params: types.GetTaskRequestParams) -> HandlerResult:
    state = te.state_in(ctx)
    edit = await te.edit_of(state, params.task_id, te.owner_in(ctx))
    task = {**ACK, **te.task_of(edit, state.poll_interval, te.MODERN_ERA)}
    if task["status"] == "completed":
        still = await inline_still(state.archive, edit)
        task["result"] = te.task_result(edit, state.poll_interval, te.MODERN_ERA.version, still)
    return task


async def _cancel(
    ctx: ServerRequestContext[Any, Any], params: types.CancelTaskRequestParams
) -> HandlerResult:
    await te.cancel_task(te.state_in(ctx), params.task_id, te.owner_in(ctx), te.MODERN_ERA)
    return dict(ACK)


async def _update(ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> HandlerResult:
    # Nothing is ever outstanding, and SEP-2663 says to ignore responses to keys that are not.
    await te.edit_of(te.state_in(ctx), params.task_id, te.owner_in(ctx))
    return dict(ACK)
