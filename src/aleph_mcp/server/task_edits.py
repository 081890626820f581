"""An edit seen as an MCP task, on both protocol eras: the task id is the edit id, the store the task store.

Nothing task-specific is stored: status, times and result all derive from the edit record, so tasks survive
restarts and are shared by every process on one data dir exactly like edits. Edits are never deleted, so a
task's ttl is null (unlimited). The eras differ in field names and in how a failed edit is reported: the
2025-11-25 spec makes a tool call whose result has isError a `failed` task, SEP-2663 a `completed` one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mcp.types as types
from mcp import MCPError
from mcp.server import ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.types import methods

from aleph_mcp.errors import AlephError, EditNotFound
from aleph_mcp.models import Edit
from aleph_mcp.records import summary, to_record
from aleph_mcp.server.auth import owner_of
from aleph_mcp.server.content import status_result
from aleph_mcp.server.state import ServerState

TASK_TOOL = "edit_video"  # the one tool that answers as a task; the others are quick reads
LEGACY = "2025-11-25"  # the one handshake revision that defines tasks
TASK_ID_MAX = 100  # edit ids are far shorter; anything longer is not one of ours
NOT_FOUND = "Failed to retrieve task: Task not found"


@dataclass(frozen=True)
class Era:
    """How one protocol era spells a task: its failed status, its millisecond fields, and whether cancelling
    an ended task is an error (2025-11-25: -32602) or the same ack as any cancel (SEP-2663: idempotent)."""

    version: str
    failed_status: str
    ttl_key: str
    poll_key: str
    refuses_ended_cancel: bool


LEGACY_ERA = Era(LEGACY, "failed", "ttl", "pollInterval", refuses_ended_cancel=True)
MODERN_ERA = Era("2026-07-28", "completed", "ttlMs", "pollIntervalMs", refuses_ended_cancel=False)


def state_in(ctx: ServerRequestContext[Any, Any]) -> ServerState:
    state: ServerState = ctx.lifespan_context
    return state


def owner_in(ctx: ServerRequestContext[Any, Any]) -> str:
    """Whose tasks this request may see: like every edit tool, only the signed-in caller's (over HTTP)."""
    return owner_of(get_access_token())


def task_status(edit: Edit, era: Era) -> str:
    if edit.status in ("queued", "running"):
        return "working"
    if edit.status == "succeeded":
        return "completed"
    return era.failed_status if edit.status == "failed" else "cancelled"


def task_of(edit: Edit, poll_interval: float, era: Era) -> dict[str, Any]:
    """The task's wire fields (camelCase). ttl is always present: null is how both eras say unlimited."""
    record = to_record(edit, poll_interval=poll_interval)
    task: dict[str, Any] = {
        "taskId": edit.edit_id,
        "status": task_status(edit, era),
        "statusMessage": summary(record),
        "createdAt": record.created_at,
        "lastUpdatedAt": record.updated_at,
        era.ttl_key: None,
    }
    if record.check_again_in_seconds is not None:
        task[era.poll_key] = record.check_again_in_seconds * 1000
    return task


def task_result(
    edit: Edit, poll_interval: float, version: str, thumbnail: bytes | None = None
) -> dict[str, Any]:
    """get_edit_status's result for the ended edit, as the era's tools/call sends it; isError if it failed.
    `thumbnail`: the still's bytes (content.inline_still)."""
    result = status_result(edit, poll_interval, images=(thumbnail, None))
    result.is_error = edit.status == "failed"
    dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return methods.serialize_server_result("tools/call", version, dumped)


def started_edit_id(result: types.CallToolResult) -> str | None:
    """The edit a successful edit_video call started; None for a refusal or a dry run (no task then)."""
    if result.is_error or not isinstance(result.structured_content, dict):
        return None
    edit_id = result.structured_content.get("edit_id")
    return edit_id if isinstance(edit_id, str) else None


async def edit_of(state: ServerState, task_id: str, owner: str) -> Edit:
    """The caller's edit behind a task id; -32602 (the spec's code for a bad taskId) for anything else,
    another user's edit included, so nothing shows that it exists."""
    try:
        if 0 < len(task_id) <= TASK_ID_MAX:
            return await state.service.get(task_id, owner)
    except EditNotFound:
        pass
    raise MCPError(code=types.INVALID_PARAMS, message=NOT_FOUND)


async def cancel_task(state: ServerState, task_id: str, owner: str, era: Era) -> Edit:
    """cancel_edit behind tasks/cancel: its refusals (no cancel API at this provider, ended) as -32602."""
    edit = await edit_of(state, task_id, owner)
    if edit.is_terminal and not era.refuses_ended_cancel:
        return edit
    if edit.is_terminal:
        status = task_status(edit, era)
        raise MCPError(
            code=types.INVALID_PARAMS, message=f"Cannot cancel task: already in terminal status '{status}'"
        )
    try:
        return await state.service.cancel(task_id, owner)
    except AlephError as exc:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Cannot cancel task: {exc.message}") from None
