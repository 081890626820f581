"""The edit tools: parse arguments, call the service, return a record. Nothing else lives here."""

from __future__ import annotations

import time
from typing import Annotated

import mcp.types as types
from mcp.server.mcpserver import Resolve
from mcp.server.mcpserver.resolve import ElicitationResult
from pydantic import BaseModel, Field

from aleph_mcp.config import ProviderName
from aleph_mcp.edits import dry_run as dry_runs
from aleph_mcp.models import SEED_MAX, AspectRatio, EditList, EditStatus, StatusRecord
from aleph_mcp.records import record_fields
from aleph_mcp.server.confirm import TakenIn, confirm_spend, require_approval
from aleph_mcp.server.content import edit_result, inline_images, list_result, status_result
from aleph_mcp.server.registration import Registrations
from aleph_mcp.server.state import Ctx, agent_errors, caller, progress_of, state_of

EditResult = Annotated[types.CallToolResult, StatusRecord]  # EditRecord, with a lean published schema
ListResult = Annotated[types.CallToolResult, EditList]
# edit_video's schema also covers its dry run (no edit: identity fields null, `dry_run` set); see dry_run.py
EditVideoResult = Annotated[types.CallToolResult, dry_runs.EditVideoResult]
Approval = Annotated[ElicitationResult[BaseModel], Resolve(confirm_spend)]
tools = Registrations()


Prompt = Annotated[
    str,
    Field(
        min_length=1,
        max_length=10_000,
        description="What to change, e.g. 'make it snow'. Describe the change, not what is already there",
    ),
]
Video = Annotated[
    str | None,
    Field(
        min_length=1,
        description="https URL, data: URI, local path in the allowed folders, or aleph://edits/{id}/video",
    ),
]
FromEdit = Annotated[
    str | None, Field(min_length=1, max_length=100, description="Edit this finished edit's video (its id)")
]
Seconds = Annotated[float | None, Field(ge=0, description="Trim: seconds into the input")]
Duration = Annotated[float | None, Field(gt=0, description="Trim: seconds from start (or end_seconds)")]
EditId = Annotated[str, Field(min_length=1, max_length=100, description="The edit_id edit_video returned")]
ProviderArg = Annotated[
    ProviderName | None, Field(description="Which API renders it (list_providers); default: the server's")
]
ModelArg = Annotated[
    str | None, Field(description="e.g. aleph2 or gen4_aleph at runway; default: the provider's")
]
AspectRatioArg = Annotated[AspectRatio | None, Field(description="Output aspect ratio")]
SeedArg = Annotated[int | None, Field(ge=0, le=SEED_MAX, description="For reproducible results")]
ReferenceArg = Annotated[
    str | None, Field(description="A reference image: https URL, data: URI or allowed local path")
]
WatermarkArg = Annotated[str | None, Field(max_length=40, description="Text drawn on the video (kie, local)")]
IdempotencyKeyArg = Annotated[
    str | None,
    Field(
        min_length=1, max_length=200, description="The same key returns the same edit, not a new billed one"
    ),
]
AllowDuplicateArg = Annotated[
    bool, Field(description="true: a new billed edit even if an identical one started in the last 10 minutes")
]
DryRunArg = Annotated[
    bool, Field(description="Return the quote and the exact request (secrets masked); send and store nothing")
]
WholeClipArg = Annotated[bool, Field(description="Edit a long clip whole, in windows")]
ConfirmArg = Annotated[
    bool,
    Field(description="The person agreed to the cost: only after asking them, when the server cannot ask"),
]


@tools.tool(
    title="Edit a video with Runway Aleph",
    annotations=types.ToolAnnotations(
        read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
    ),
)
async def edit_video(
    ctx: Ctx,
    intake: TakenIn,
    approval: Approval,
    prompt: Prompt,
    video: Video = None,
    from_edit: FromEdit = None,
    start_seconds: Seconds = None,
    end_seconds: Seconds = None,
    duration_seconds: Duration = None,
    provider: ProviderArg = None,
    model: ModelArg = None,
    aspect_ratio: AspectRatioArg = None,
    seed: SeedArg = None,
    reference_image: ReferenceArg = None,
    watermark: WatermarkArg = None,
    idempotency_key: IdempotencyKeyArg = None,
    allow_duplicate: AllowDuplicateArg = False,
    whole_clip: WholeClipArg = False,
    dry_run: DryRunArg = False,
    confirm: ConfirmArg = False,
) -> EditVideoResult:
    """Start an Aleph video-to-video edit; returns at once with the edit id and estimated cost.
    Rendering takes minutes: check back with get_edit_status or subscribe to the edit's resource.
    Billed by the provider; dry_run=true shows cost and request without sending. Above a set cost the
    person is asked first. from_edit edits an earlier result; start/end_seconds trim the input."""
    state = state_of(ctx)
    try:
        if dry_run:
            with agent_errors():
                preview = await dry_runs.preview(state.service, intake)
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=dry_runs.describe(preview))],
                structured_content=preview.model_dump(mode="json"),
            )
        await require_approval(ctx, intake, approval)
        with agent_errors():
            edit, duplicate = await state.service.start(intake, progress_of(ctx))
            chain = await state.service.lineage(edit)
        fields = record_fields(
            edit,
            now=time.time(),
            poll_interval=state.poll_interval,
            duplicate=duplicate,
            lineage=chain,
            behind=state.poller.behind,
        )
        return edit_result(fields)
    finally:
        intake.discard()  # previewed, declined or sent: its private input copies are done with


@tools.tool(
    title="Get an edit's status",
    annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
)
async def get_edit_status(
    ctx: Ctx,
    edit_id: EditId,
    wait_seconds: Annotated[
        float, Field(ge=0, le=50, description="Wait up to this long for the edit to end; progress meanwhile")
    ] = 0,
) -> EditResult:
    """An edit's status record: once succeeded, the video's path and resource, and a before/after image.
    With wait_seconds it answers when the edit ends, or when the time is up with the edit still running."""
    state = state_of(ctx)
    with agent_errors():
        edit = await state.service.wait_for_end(edit_id, wait_seconds, progress_of(ctx), owner=caller(ctx))
        chain = await state.service.lineage(edit)
        made_of = state.answers.made_of(state.archive, edit, chain)  # None: not finished, not local
        if made_of is not None and (kept := state.answers.get(edit_id, made_of)) is not None:
            return kept
        images = await inline_images(state.archive, edit, await state.service.compare_sheet(edit))
    answer = status_result(edit, state.poll_interval, chain, images, state.poller.behind)
    if made_of is not None:
        state.answers.put(edit_id, made_of, answer)
    return answer


@tools.tool(
    title="List edits",
    annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
)
async def list_edits(
    ctx: Ctx,
    status: Annotated[EditStatus | None, Field(description="Only edits in this status")] = None,
    provider: Annotated[ProviderName | None, Field(description="Only this provider's edits")] = None,
    limit: Annotated[int, Field(ge=1, le=100, description="At most this many")] = 20,
    cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
    parent: Annotated[str | None, Field(max_length=100, description="Only edits made from this edit")] = None,
) -> ListResult:
    """Edits this server knows (all processes sharing its data dir), newest first."""
    state = state_of(ctx)
    with agent_errors():
        edits, next_cursor = await state.service.list(
            status=status, provider=provider, limit=limit, cursor=cursor, owner=caller(ctx), parent=parent
        )
    now, behind = time.time(), state.poller.behind
    return list_result(
        [record_fields(e, now=now, poll_interval=state.poll_interval, behind=behind) for e in edits],
        next_cursor,
    )


@tools.tool(
    title="Cancel an edit",
    annotations=types.ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
    ),
)
async def cancel_edit(ctx: Ctx, edit_id: EditId) -> EditResult:
    """Cancel an unfinished edit where the provider can (krea, runway, local); kie, aimlapi and crun
    edits run to their end."""
    state = state_of(ctx)
    with agent_errors():
        edit = await state.service.cancel(edit_id, caller(ctx))
    return edit_result(record_fields(edit, now=time.time(), poll_interval=state.poll_interval))


__all__ = ["tools"]
