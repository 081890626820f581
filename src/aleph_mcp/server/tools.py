"""The four MCP tools: parse arguments, call the service, return a record. Nothing else lives here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import mcp.types as types
from mcp.server.mcpserver import Context, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import ElicitationResult
from pydantic import BaseModel, Field

from aleph_mcp.config import ProviderName
from aleph_mcp.edits import dry_run as dry_runs
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.errors import AlephError
from aleph_mcp.models import SEED_MAX, AspectRatio, EditList, EditRecord, EditStatus
from aleph_mcp.records import to_record
from aleph_mcp.server.confirm import confirm_spend, require_approval
from aleph_mcp.server.content import client_roots, edit_result, looks_local

if TYPE_CHECKING:
    from aleph_mcp.server.wiring import AppState

EditResult = Annotated[types.CallToolResult, EditRecord]
# edit_video's schema also covers its dry run (no edit: identity fields null, `dry_run` set); see dry_run.py
EditVideoResult = Annotated[types.CallToolResult, dry_runs.EditVideoResult]
Approval = Annotated[ElicitationResult[BaseModel], Resolve(confirm_spend)]


def app_state(ctx: Context) -> AppState:
    state = cast("AppState", ctx.request_context.lifespan_context)
    state.notifier.remember(ctx.session, ctx.protocol_version)
    return state


@contextmanager
def agent_errors() -> Iterator[None]:
    """Our errors carry messages written for the agent; surface them as tool errors."""
    try:
        yield
    except AlephError as exc:
        raise ToolError(exc.message) from None


Prompt = Annotated[
    str,
    Field(
        min_length=1,
        max_length=10_000,
        description=(
            "What to change in the video, e.g. 'make it snow' or 'relight as golden hour'. "
            "Describe the change, not what is already there."
        ),
    ),
]
Video = Annotated[
    str,
    Field(
        min_length=1,
        description=(
            "The input video: an https URL, a data: URI, or a local file path inside the allowed directories."
        ),
    ),
]


def register_tools(server: MCPServer[Any]) -> None:
    @server.tool(
        title="Edit a video with Runway Aleph",
        annotations=types.ToolAnnotations(
            read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True
        ),
    )
    async def edit_video(
        ctx: Context,
        approval: Approval,
        prompt: Prompt,
        video: Video,
        provider: Annotated[
            ProviderName | None,
            Field(description="Which API renders it; default: the server's default provider"),
        ] = None,
        model: Annotated[
            str | None,
            Field(
                description="Provider model, e.g. runway: aleph2 or "
                "gen4_aleph; default: the provider's default"
            ),
        ] = None,
        aspect_ratio: Annotated[AspectRatio | None, Field(description="Output aspect ratio")] = None,
        seed: Annotated[int | None, Field(ge=0, le=SEED_MAX, description="For reproducible results")] = None,
        reference_image: Annotated[
            str | None,
            Field(description="Style/content reference image: https URL, data: URI or allowed local path"),
        ] = None,
        watermark: Annotated[
            str | None, Field(max_length=40, description="Watermark text (kie only)")
        ] = None,
        idempotency_key: Annotated[
            str | None,
            Field(
                min_length=1,
                max_length=200,
                description=(
                    "Repeat a call with the same key to get the same edit back instead of a new, billed one"
                ),
            ),
        ] = None,
        allow_duplicate: Annotated[
            bool,
            Field(
                description=(
                    "An identical request within 10 minutes returns the earlier edit (not billed again); "
                    "true starts a new, billed edit anyway"
                )
            ),
        ] = False,
        dry_run: Annotated[
            bool,
            Field(
                description="Check everything and return the cost estimate and the exact request that would "
                "be sent (secrets masked) without uploading, sending or storing anything"
            ),
        ] = False,
        confirm: Annotated[
            bool,
            Field(
                description="The person has already agreed to this edit's cost; set it only after asking "
                "them, when the server says it needs confirmation and cannot ask itself"
            ),
        ] = False,
    ) -> EditVideoResult:
        """Start an Aleph video-to-video edit. Returns at once with an edit id and its estimated cost:
        rendering takes minutes, so check back with get_edit_status (or subscribe to the edit's resource).
        Each edit is billed by the provider; dry_run=true shows the cost and the request without sending it.
        Above a configured cost the person is asked to confirm first."""
        state = app_state(ctx)

        async def progress(fraction: float, message: str) -> None:
            await ctx.report_progress(fraction, 1.0, message)

        args = EditArgs(
            prompt=prompt,
            video=video,
            provider=provider,
            model=model,
            aspect_ratio=aspect_ratio,
            seed=seed,
            reference_image=reference_image,
            watermark=watermark,
            idempotency_key=idempotency_key,
            allow_duplicate=allow_duplicate,
        )
        roots = await client_roots(ctx) if looks_local(video) or looks_local(reference_image) else []
        if dry_run:
            with agent_errors():
                preview = await dry_runs.preview(state.service, args, progress, roots=roots)
            return types.CallToolResult(
                content=[types.TextContent(type="text", text=dry_runs.describe(preview))],
                structured_content=preview.model_dump(mode="json"),
            )
        require_approval(approval)
        with agent_errors():
            edit, duplicate = await state.service.submit(args, progress, roots=roots)
        return edit_result(to_record(edit, poll_interval=state.poll_interval, duplicate=duplicate))

    @server.tool(
        title="Get an edit's status",
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def get_edit_status(
        ctx: Context,
        edit_id: Annotated[str, Field(min_length=1, max_length=100)],
        wait_seconds: Annotated[
            float,
            Field(
                ge=0, le=50, description=("Wait up to this long for the status to change before answering")
            ),
        ] = 0,
    ) -> EditResult:
        """The edit's current status record, with the finished video's path and resource once it succeeded,
        and when to check again otherwise."""
        state = app_state(ctx)

        async def progress(fraction: float, message: str) -> None:
            await ctx.report_progress(fraction, 1.0, message)

        with agent_errors():
            edit = await state.service.wait_for_change(edit_id, wait_seconds, progress)
        thumbnail = Path(edit.thumbnail_path) if edit.thumbnail_path and edit.status == "succeeded" else None
        return edit_result(to_record(edit, poll_interval=state.poll_interval), thumbnail)

    @server.tool(
        title="List edits",
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )
    async def list_edits(
        ctx: Context,
        status: EditStatus | None = None,
        provider: ProviderName | None = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Field(description="next_cursor from the previous page")] = None,
    ) -> EditList:
        """Edits this server knows (all processes sharing its data dir), newest first."""
        state = app_state(ctx)
        with agent_errors():
            edits, next_cursor = await state.service.list(
                status=status, provider=provider, limit=limit, cursor=cursor
            )
        return EditList(
            edits=[to_record(e, poll_interval=state.poll_interval) for e in edits], next_cursor=next_cursor
        )

    @server.tool(
        title="Cancel an edit",
        annotations=types.ToolAnnotations(
            read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=True
        ),
    )
    async def cancel_edit(
        ctx: Context, edit_id: Annotated[str, Field(min_length=1, max_length=100)]
    ) -> EditResult:
        """Cancel an unfinished edit where the provider allows it (krea, runway, local). kie, aimlapi and
        crun have no cancel API: their edits run to the end."""
        state = app_state(ctx)
        with agent_errors():
            edit = await state.service.cancel(edit_id)
        return edit_result(to_record(edit, poll_interval=state.poll_interval))


__all__ = ["register_tools"]
