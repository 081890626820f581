"""What the agent sees of an edit, and what the poller tells it when an edit ends without a result."""

from __future__ import annotations

from aleph_mcp.errors import ErrorCode
from aleph_mcp.models import Edit


def timeout_message(edit: Edit, edit_timeout: float, has_key: bool) -> str:
    minutes = round(edit_timeout / 60)
    message = (
        f"No result after {minutes} minutes (still {edit.status} at {edit.provider}, "
        f"task {edit.provider_task_id}). It may still finish there."
    )
    if not has_key:
        message += f" This server has no {edit.provider} key to check it with."
    if edit.output_url:
        message += f" The provider's result could not be downloaded; try output_url: {edit.output_url}"
    return message


def orphan_failure(edit: Edit) -> tuple[ErrorCode, str]:
    """How an edit whose submitter died before storing a task id ends: before `create_sent_at` nothing
    left the process; after it, the create may or may not have reached the provider."""
    if edit.create_sent_at is None:
        return "not_sent", not_sent_message(edit)
    return "submit_outcome_unknown", unknown_outcome_message(edit)


def not_sent_message(edit: Edit) -> str:
    return (
        f"The server stopped before sending this edit to {edit.provider} (while checking or uploading its "
        "input). Nothing was sent or billed; submit it again."
    )


def unknown_outcome_message(edit: Edit) -> str:
    return (
        f"The server stopped while sending this edit to {edit.provider}, so it is unknown whether the "
        "provider started (and will bill) it. It was not sent again. Check your recent jobs in the "
        "provider's dashboard."
    )


def write_failed_message(edit: Edit, why: str) -> str:
    return f"{why} The provider's result is still at output_url until it expires: {edit.output_url}"


def visible(edit: Edit) -> tuple[object, ...]:
    """The fields an agent sees; a change in any of them is a status change worth announcing."""
    progress = round(edit.progress, 2) if edit.progress is not None else None
    return (edit.status, progress, edit.output_url, edit.local_path, edit.error_code, edit.notes)
