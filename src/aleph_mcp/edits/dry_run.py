"""edit_video(dry_run=true): every check a real call makes, then the quote and the exact create request,
with nothing uploaded, submitted or stored.

The answer has edit_video's one output schema, `EditVideoResult`: the status record's fields with edit_id,
status and the times null (no edit exists) and `dry_run` holding the preview. The request comes from the
adapter's `describe_create`, the very function its `submit` sends from, given the same `EditRequest` a real
call builds (submission.build_request); only local files appear as placeholders for what their upload returns.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import Field
from pydantic.json_schema import WithJsonSchema

from aleph_mcp.edits.intake import Intake
from aleph_mcp.edits.requests import build_request
from aleph_mcp.edits.validation import VideoInput
from aleph_mcp.models import Lean, RecordFields, WindowInfo
from aleph_mcp.pricing.budget import asks_first, cost_basis
from aleph_mcp.pricing.catalog import Quote
from aleph_mcp.providers.base import PreparedCreate, Provider
from aleph_mcp.records import cost_text, trim_text

if TYPE_CHECKING:
    from aleph_mcp.edits.service import EditService


class DryRunPreview(Lean):
    """What a real edit_video call with the same arguments would do. Nothing was sent anywhere."""

    quote: Quote = Field(description="The estimated cost and how it was reached")
    request: PreparedCreate = Field(
        description="The create request a real call would send: secrets shown as ***, a local file as a "
        "placeholder for the URL its upload returns, a data: URI abbreviated"
    )
    uploads: list[str] = Field(description="Local files a real call would send first (none were)")
    budget: str | None = Field(
        description="Whether a real call fits ALEPH_MCP_BUDGET_USD / _EDITS now; null when no budget is set"
    )
    trim: str | None = Field(
        default=None, description="The part of the input a real call edits (cut here first); null: all of it"
    )
    needs_confirmation: bool = Field(
        description="A real call would ask the person first (ALEPH_MCP_CONFIRM_ABOVE_USD) or, where the "
        "client cannot ask, need confirm=true"
    )


DRY_RUN_SCHEMA = {
    "type": ["object", "null"],
    "description": "Only in a dry run: {quote, request (the exact create, secrets masked), uploads, budget, "
    "needs_confirmation, trim}; nothing was sent",
}


class EditVideoResult(RecordFields):
    """The new edit's record; in a dry run edit_id, status and the times are null and dry_run is set."""

    # Published as a plain object: its parts are described in the text block, and every result of
    # edit_video is validated against this schema by clients.
    dry_run: Annotated[DryRunPreview | None, WithJsonSchema(DRY_RUN_SCHEMA)] = None


async def preview(service: EditService, checked: Intake) -> EditVideoResult:
    """Describe the create a real submit of this intake would send; upload, send and store nothing."""
    args, provider = checked.args, checked.provider
    reference = as_sent(provider, checked.reference) if checked.reference else None
    request = build_request(args, checked.model, as_sent(provider, checked.video), reference)
    create = provider.describe_create(request)
    # Asked or not is decided the way the real call decides it: on the intake's quote.
    threshold = service.settings.confirm_above_usd
    asks = threshold is not None and asks_first(checked.estimate, threshold)
    inputs = [item for item in (checked.video, checked.reference) if item is not None]
    return EditVideoResult(
        edit_id=None,
        status=None,
        provider=checked.name,
        model=checked.model,
        prompt=args.prompt,
        created_at=None,
        updated_at=None,
        warnings=checked.warnings,
        estimated_cost_usd=checked.estimate.usd,
        cost_basis=cost_basis(checked.estimate),
        windows=[
            WindowInfo(index=w.index, start_seconds=w.start, end_seconds=w.end) for w in checked.windows
        ],
        dry_run=DryRunPreview(
            quote=checked.estimate,
            request=create,
            uploads=[note for item in inputs if (note := upload_note(provider, item))],
            budget=await service.budget_status(
                checked.estimate, checked.args.owner, max(1, len(checked.windows))
            ),
            needs_confirmation=asks,
            trim=trim_text(*checked.trim) if checked.trim else None,
        ),
    )


def as_sent(provider: Provider, item: VideoInput) -> str:
    """How an input appears in the create request, without uploading or reading it."""
    if item.kind == "data":
        return item.display
    if item.kind != "path" or provider.capabilities.reads_files_in_place:
        return item.value
    name = Path(item.value).name
    if provider.capabilities.can_upload:
        return f"<uploaded to {provider.name}: {name}>"
    mime = mimetypes.guess_type(name)[0] or "video/mp4"
    return f"data:{mime};base64,… ({item.size} bytes, from {name})"


def upload_note(provider: Provider, item: VideoInput) -> str | None:
    if item.kind != "path" or provider.capabilities.reads_files_in_place:
        return None
    name = Path(item.value).name
    if provider.capabilities.can_upload:
        return f"{name} ({item.size} bytes) would first be uploaded to {provider.name}; not uploaded"
    return f"{name} ({item.size} bytes) would travel inside the request as a data: URI"


def describe(result: EditVideoResult) -> str:
    """The dry run in a few lines a person can read in a chat transcript."""
    assert result.dry_run is not None
    preview_ = result.dry_run
    cost = cost_text(result.estimated_cost_usd, result.cost_basis)
    lines = [
        "Dry run: nothing was uploaded, sent or stored.",
        f"{result.provider}/{result.model} would cost {cost}.",
        f"A real call would send {preview_.request.method} {preview_.request.url} "
        "(headers and body in dry_run.request).",
        *preview_.uploads,
    ]
    if preview_.trim:
        lines.append(f"Only {preview_.trim} of the input is edited: it is cut on this server before sending.")
    if preview_.budget:
        lines.append(preview_.budget)
    if preview_.needs_confirmation:
        lines.append(
            "A real call would ask the person to confirm first (ALEPH_MCP_CONFIRM_ABOVE_USD), or need "
            "confirm=true where the client cannot ask."
        )
    lines += result.warnings
    return "\n".join(lines)
