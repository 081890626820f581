"""Before/after at a glance: a finished edit's contact sheet (media/compare.py), served as
`aleph://edits/{id}/compare` and shown inline by get_edit_status.

The sheet is made once, when the edit's video is archived, not lazily on first read: the input has to be
kept only while the edit is in flight, so the archive holds one small JPEG per edit instead of a copy of
every input forever. The input kept is the one the provider was sent: the cut of a trim, a local file's
private copy or a decoded data URI, put in the archive (`Archive.input_location`) so that whichever
replica archives the output can make the sheet. A chain's step on its parent's whole output
keeps nothing: its input is the parent's archived video, whichever route it was sent by. A plain URL input
is not fetched again only for this (it can be large, and the provider's fetch was the one that counted):
such an edit has no sheet and get_edit_status shows its thumbnail. Kept inputs whose edit never finished
are swept after STALE_INPUTS.
"""

from __future__ import annotations

import base64
import logging
import tempfile
from pathlib import Path

import anyio.to_thread

from aleph_mcp.edits.validation import VideoInput
from aleph_mcp.errors import AlephError
from aleph_mcp.media.archive import Archive
from aleph_mcp.models import Edit

logger = logging.getLogger(__name__)


async def keep_input(archive: Archive, edit: Edit, video: VideoInput) -> None:
    """Keep the input as sent, in the archive, for the sheet; a failure only costs the sheet."""
    if edit.is_terminal or video.kind not in ("path", "data") or _whole_parent(edit):
        return
    dest = archive.input_location(edit.edit_id)
    try:
        if video.kind == "path":
            await archive.put_file(Path(video.value), dest, what="kept input")
        else:
            payload = base64.b64decode(video.value.split(",", 1)[1])
            async with archive.writer(dest, what="kept input") as sink:
                await sink.write(payload)
    except (AlephError, OSError, ValueError) as exc:
        logger.warning("input not kept for comparison edit_id=%s error=%s", edit.edit_id, _reason(exc))


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, AlephError) else type(exc).__name__


def _whole_parent(edit: Edit) -> bool:
    """A chain's step on its parent's whole output: that archived video is the input, kept already."""
    return edit.parent_edit_id is not None and edit.trim_start is None and edit.trim_end is None


async def _before(archive: Archive, edit: Edit) -> str | None:
    kept = archive.input_location(edit.edit_id)
    if await archive.size(kept) is not None:
        return kept
    if edit.parent_edit_id and _whole_parent(edit):
        parent = archive.video_location(edit.parent_edit_id)  # the same video the provider was sent
        return parent if await archive.size(parent) is not None else None
    return None


def _draw(archive: Archive, before: str, after: str, dest: Path) -> None:
    """On a worker thread: both videos read through the archive (a file, or a ranged object reader)."""
    from aleph_mcp.media.compare import contact_sheet  # PyAV and Pillow are not start-up work

    with archive.reader(before) as first, archive.reader(after) as second:
        contact_sheet(first, second, dest)


async def make_sheet(archive: Archive, edit: Edit, video: str) -> str | None:
    """The contact sheet of the input above the archived `video` (a location of `archive`), put in the
    archive; its location. None when there is no input to show or the sheet cannot be made (a missing
    sheet never holds back a finished video). The kept input goes."""
    try:
        before = await _before(archive, edit)
        if before is None:
            return None
        dest = archive.compare_location(edit.edit_id)
        with tempfile.TemporaryDirectory(prefix="aleph-sheet-") as scratch:
            jpeg = Path(scratch) / "compare.jpg"
            await anyio.to_thread.run_sync(_draw, archive, before, video, jpeg)
            await archive.put_file(jpeg, dest, what="before/after sheet")
        return dest
    except Exception as exc:  # PyAV and Pillow raise their own error types for unreadable media
        logger.warning("no compare sheet edit_id=%s error=%s", edit.edit_id, _reason(exc))
        return None
    finally:
        with anyio.CancelScope(shield=True):
            await archive.delete(archive.input_location(edit.edit_id))


async def sheet_of(archive: Archive, edit: Edit) -> str | None:
    """The finished edit's sheet's location, where one was made."""
    if edit.status != "succeeded":
        return None
    location = archive.compare_location(edit.edit_id)
    local = archive.local_file(location)
    if local is not None:  # a stat, not a thread hop: get_edit_status asks on every call
        return location if local.is_file() else None
    return location if await archive.size(location) is not None else None
