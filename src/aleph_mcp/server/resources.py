"""MCP resources: an edit's record, archived video, thumbnail and before/after sheet; resources/list shows
finished videos."""

from __future__ import annotations

import re
from typing import Any

import mcp.types as types
from mcp.server import ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from aleph_mcp.media.archive import Archive
from aleph_mcp.models import Edit
from aleph_mcp.records import to_record, video_uri
from aleph_mcp.server.auth import owner_of
from aleph_mcp.server.content import INLINE_IMAGE_MAX_BYTES
from aleph_mcp.server.registration import Registrations
from aleph_mcp.server.sdk import add_request_handler
from aleph_mcp.server.state import Ctx, ServerState, caller, state_of

_EDIT_ID = re.compile(r"^ed_[0-9a-f]{20}$")
LIST_PAGE = 100


async def _edit(ctx: Ctx, edit_id: str) -> tuple[ServerState, Edit]:
    state = state_of(ctx)
    edit = await state.store.get(edit_id) if _EDIT_ID.match(edit_id) else None
    if edit is None or edit.owner != caller(ctx):  # another's edit reads exactly like an unknown one
        raise ResourceNotFoundError(f"No edit {edit_id!r}; list_edits shows the known edits.")
    return state, edit


LINK_SECONDS = 3600  # a presigned link offered for a video too big to send lives an hour


async def _read_file(
    archive: Archive, location: str | None, what: str, edit: Edit, max_bytes: int | None = None
) -> bytes:
    """The archived file, streamed back from the archive that holds it, refused above `max_bytes`."""
    size = await archive.size(location) if location else None
    if location is None or size is None:
        hint = "it is missing" if edit.status == "succeeded" else f"it is {edit.status}"
        raise ResourceNotFoundError(f"Edit {edit.edit_id} has no archived {what}: {hint}.")
    if max_bytes is not None and size > max_bytes:
        raise ResourceError(await _too_big(archive, location, what, edit, size, max_bytes))
    try:
        return await archive.read(location, size if max_bytes is None else max_bytes)
    except ValueError:  # it grew past the cap between the size and the read
        raise ResourceError(await _too_big(archive, location, what, edit, size, max_bytes or size)) from None


async def _too_big(archive: Archive, location: str, what: str, edit: Edit, size: int, max_bytes: int) -> str:
    link = await archive.link(location, LINK_SECONDS)
    where = f"Fetch it from {link} (a link valid for an hour)" if link else f"Open it at {location}"
    if edit.output_url:
        where += f", or download it from {edit.output_url} (that link expires)"
    return (
        f"The {what} of edit {edit.edit_id} is {size / 1048576:.1f} MB, more than this server sends "
        f"through MCP ({max_bytes / 1048576:.0f} MB, ALEPH_MCP_MAX_RESOURCE_BYTES). {where}."
    )


resources = Registrations()


@resources.resource(
    "aleph://edits/{edit_id}",
    name="edit",
    title="Edit status record",
    mime_type="application/json",
    description="An edit's status record (JSON). Subscribe for status changes.",
)
async def edit_record(edit_id: str, ctx: Ctx) -> str:
    state, edit = await _edit(ctx, edit_id)
    chain = await state.service.lineage(edit)
    record = to_record(edit, poll_interval=state.poll_interval, lineage=chain, behind=state.poller.behind)
    return record.model_dump_json(indent=2)


@resources.resource(
    "aleph://edits/{edit_id}/video",
    name="edit-video",
    title="Edited video",
    mime_type="video/mp4",
    description="The finished video, from the archive",
)
async def edit_video_file(edit_id: str, ctx: Ctx) -> bytes:
    state, edit = await _edit(ctx, edit_id)
    return await _read_file(state.archive, edit.local_path, "video", edit, state.settings.max_resource_bytes)


@resources.resource(
    "aleph://edits/{edit_id}/thumbnail",
    name="edit-thumbnail",
    title="Edited video thumbnail",
    mime_type="image/jpeg",
    description="A still of the finished video",
)
async def edit_thumbnail(edit_id: str, ctx: Ctx) -> bytes:
    state, edit = await _edit(ctx, edit_id)
    return await _read_file(state.archive, edit.thumbnail_path, "thumbnail", edit)


@resources.resource(
    "aleph://edits/{edit_id}/compare",
    name="edit-compare",
    title="Before and after",
    mime_type="image/jpeg",
    description="Frames of the input above the output's at the same moments",
)
async def edit_compare(edit_id: str, ctx: Ctx) -> bytes:
    state, edit = await _edit(ctx, edit_id)
    sheet = await state.service.compare_sheet(edit)
    return await _read_file(state.archive, sheet, "before/after sheet", edit, INLINE_IMAGE_MAX_BYTES)


async def list_finished(
    ctx: ServerRequestContext[ServerState], params: types.PaginatedRequestParams
) -> types.ListResourcesResult:
    state: ServerState = ctx.lifespan_context
    edits, next_cursor = await state.store.list_edits(
        status="succeeded", limit=LIST_PAGE, cursor=params.cursor, owner=owner_of(get_access_token())
    )
    return types.ListResourcesResult(
        resources=[_listing(state.archive, e) for e in edits if e.local_path], next_cursor=next_cursor
    )


def install_listing(server: MCPServer[Any]) -> None:
    """resources/list from the store: MCPServer lists only static resources (see sdk.py)."""
    add_request_handler(server, "resources/list", types.PaginatedRequestParams, list_finished)


def _listing(archive: Archive, edit: Edit) -> types.Resource:
    # A size where it is a stat away; an object store would cost a request per listed edit.
    path = archive.local_file(edit.local_path or "")
    size = path.stat().st_size if path is not None and path.is_file() else None
    return types.Resource(
        uri=video_uri(edit.edit_id),
        name=f"{edit.edit_id}.mp4",
        title=edit.prompt[:80],
        description=f"{edit.provider}/{edit.model}: {edit.prompt[:200]}",
        mime_type="video/mp4",
        size=size,
    )
