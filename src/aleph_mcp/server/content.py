"""MCP-specific shaping: tool results people can read at a glance, and the client's declared roots."""

from __future__ import annotations

import base64
import functools
import logging
import stat
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import anyio
import mcp.types as types
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPDeprecationWarning

from aleph_mcp.media.archive import Archive
from aleph_mcp.models import Edit, LineageStep
from aleph_mcp.records import compare_uri, edit_uri, record_fields, summary

logger = logging.getLogger(__name__)

INLINE_IMAGE_MAX_BYTES = 256 * 1024  # a chat client shows it; keep the result light
ROOTS_TIMEOUT = 5.0


def edit_result(
    record: dict[str, Any], thumbnail: bytes | None = None, sheet: bytes | None = None
) -> types.CallToolResult:
    """Text summary, link to the record, and once finished a link to the video and an inline image: the
    before/after sheet where there is one, else the output's still. `record`: `records.record_fields`
    (the SDK checks it against the tool's output model)."""
    edit_id, video = record["edit_id"], record["video_uri"]
    content: list[types.ContentBlock] = [
        types.TextContent(type="text", text=summary(record)),
        types.ResourceLink(
            type="resource_link",
            uri=edit_uri(edit_id),
            name=f"edit {edit_id}",
            mime_type="application/json",
            description="Status record; subscribe for updates",
        ),
    ]
    if video:
        content.append(
            types.ResourceLink(type="resource_link", uri=video, name=f"{edit_id}.mp4", mime_type="video/mp4")
        )
    if sheet is not None:
        content.append(
            types.ResourceLink(
                type="resource_link",
                uri=compare_uri(edit_id),
                name=f"{edit_id} before/after",
                mime_type="image/jpeg",
                description="Input frames above the output's at the same moments",
            )
        )
    image = _inline_image(sheet) or _inline_image(thumbnail)
    if image is not None:
        content.append(image)
    return types.CallToolResult(content=content, structured_content=record)


def status_result(
    edit: Edit,
    poll_interval: float,
    lineage: list[LineageStep] | None = None,
    images: tuple[bytes | None, bytes | None] = (None, None),
    behind: float = 0.0,
) -> types.CallToolResult:
    """What get_edit_status returns for `edit` (and a task's result), with the (thumbnail, sheet) bytes
    `inline_images` read. `behind`: how late the poller runs (its check-again hint says when the edit is
    really looked at)."""
    fields = record_fields(edit, now=time.time(), poll_interval=poll_interval, lineage=lineage, behind=behind)
    return edit_result(fields, *images)


async def inline_images(
    archive: Archive, edit: Edit, sheet: str | None = None
) -> tuple[bytes | None, bytes | None]:
    """(thumbnail, sheet) bytes from the archive once the edit succeeded, each where it is small enough;
    the thumbnail is not read when the sheet (at location `sheet`) is shown instead."""
    if edit.status != "succeeded":
        return None, None
    shown = await inline_bytes(archive, sheet)
    return (None if shown else await inline_still(archive, edit)), shown


async def inline_still(archive: Archive, edit: Edit) -> bytes | None:
    """The thumbnail's bytes, from the archive, once the edit succeeded and where it is small enough."""
    return await inline_bytes(archive, edit.thumbnail_path) if edit.status == "succeeded" else None


async def inline_bytes(archive: Archive, location: str | None) -> bytes | None:
    """An archived image's bytes, where it is there and at most INLINE_IMAGE_MAX_BYTES."""
    if not location:
        return None
    local = archive.local_file(location)
    if local is not None:
        return _local_image(local)
    size = await archive.size(location)
    if size is None or size > INLINE_IMAGE_MAX_BYTES:
        return None
    try:
        return await archive.read(location, INLINE_IMAGE_MAX_BYTES)
    except (OSError, ValueError):  # gone or grown since: the result goes without the still
        return None


def list_result(records: list[dict[str, Any]], next_cursor: str | None) -> types.CallToolResult:
    """A page of records (`records.record_fields`) as structured content; the text only says what is in it
    (a JSON copy would double it)."""
    counts: dict[str, int] = {}
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in counts.items())
    lines = [
        f"{len(records)} edit{'s' * (len(records) != 1)}, newest first" + (f" ({tally})" if tally else "")
    ]
    lines += [_line(r) for r in records]
    if next_cursor:
        lines.append(f"More: call list_edits with cursor={next_cursor}")
    return types.CallToolResult(
        content=[types.TextContent(type="text", text="\n".join(lines))],
        structured_content={"edits": records, "next_cursor": next_cursor},
    )


def _line(r: dict[str, Any]) -> str:
    what = f"{r['provider']}/{r['model']}"
    return f"- {r['edit_id']} {r['status']} {what} {r['created_at']}: {_short(r['prompt'])}"


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _local_image(path: Path) -> bytes | None:
    """A small image file of this machine: a stat, and a read once per version of the file (a status call
    repeats it every time; thread hops for a 10 KB still cost more than the read)."""
    try:
        found = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode) or found.st_size > INLINE_IMAGE_MAX_BYTES:
        return None
    try:
        return _read_once(str(path), found.st_mtime_ns, found.st_size)
    except OSError:  # gone since the stat: no image this time (a failure is not cached)
        return None


@functools.lru_cache(maxsize=64)
def _read_once(path: str, mtime_ns: int, size: int) -> bytes:
    return Path(path).read_bytes()


@functools.lru_cache(maxsize=64)
def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _inline_image(data: bytes | None) -> types.ImageContent | None:
    if not data:
        return None
    mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return types.ImageContent(type="image", data=_base64(data), mime_type=mime)


def looks_local(value: str | None) -> bool:
    """A value that names a file on this machine: not a URL, a data: URI or an edit (aleph:)."""
    return bool(value) and not str(value).lower().startswith(("https://", "http://", "data:", "aleph:"))


async def client_roots(ctx: Context[Any, Any]) -> list[Path]:
    """Directories the client declared as roots (2025-era clients that support roots); else none."""
    caps = ctx.client_capabilities
    if caps is None or caps.roots is None:
        return []
    try:
        with anyio.fail_after(ROOTS_TIMEOUT), warnings.catch_warnings():
            # Deprecated in 2026-07-28, but it is how today's hosts say which folders the user opened.
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            result = await ctx.session.list_roots()
    except Exception as exc:  # a client that cannot answer gives no roots, not a failed edit
        logger.info("roots unavailable error=%s", exc)
        return []
    return [
        Path(unquote(urlparse(str(root.uri)).path))
        for root in result.roots
        if str(root.uri).startswith("file:")
    ]
