"""Before/after at a glance: a finished edit's contact sheet (media/compare.py), served as
`aleph://edits/{id}/compare` and shown inline by get_edit_status.

The sheet is made once, when the edit's video is archived, not lazily on first read: the input has to be
kept only while the edit is in flight, so the archive holds one small JPEG per edit instead of a copy of
every input forever. The input kept is the one the provider was sent: the cut of a trim, a local file's
private copy or a decoded data URI (`Archive.input_path`). A chain's step on its parent's whole output
keeps nothing: its input is the parent's archived video, whichever route it was sent by. A plain URL input
is not fetched again only for this (it can be large, and the provider's fetch was the one that counted):
such an edit has no sheet and get_edit_status shows its thumbnail. Kept inputs whose edit never finished
are swept after STALE_INPUTS.
"""

from __future__ import annotations

import base64
import logging
import shutil
from pathlib import Path

import anyio.to_thread

from aleph_mcp.edits.validation import VideoInput
from aleph_mcp.media.archive import Archive
from aleph_mcp.models import Edit

logger = logging.getLogger(__name__)


async def keep_input(archive: Archive, edit: Edit, video: VideoInput) -> None:
    """Keep the input as sent, for the sheet; a failure only costs the sheet."""
    if edit.is_terminal or video.kind not in ("path", "data") or _whole_parent(edit):
        return
    dest = archive.input_path(edit.edit_id)
    try:
        with archive.staged(dest) as tmp:
            if video.kind == "path":
                await anyio.to_thread.run_sync(shutil.copyfile, video.value, tmp)
            else:
                payload = video.value.split(",", 1)[1]
                await anyio.to_thread.run_sync(tmp.write_bytes, base64.b64decode(payload))
    except (OSError, ValueError) as exc:
        logger.warning("input not kept for comparison edit_id=%s error=%s", edit.edit_id, exc)


def _whole_parent(edit: Edit) -> bool:
    """A chain's step on its parent's whole output: that archived video is the input, kept already."""
    return edit.parent_edit_id is not None and edit.trim_start is None and edit.trim_end is None


def _before(archive: Archive, edit: Edit) -> Path | None:
    kept = archive.input_path(edit.edit_id)
    if kept.is_file():
        return kept
    if edit.parent_edit_id and _whole_parent(edit):
        parent = archive.video_path(edit.parent_edit_id)  # the same video the provider was sent
        return parent if parent.is_file() else None
    return None


async def make_sheet(archive: Archive, edit: Edit, video: Path) -> Path | None:
    """The contact sheet of the input above the archived `video`; None when there is no input to show or
    the sheet cannot be made (a missing sheet never holds back a finished video). The kept input goes."""
    before = _before(archive, edit)
    if before is None:
        return None
    from aleph_mcp.media.compare import contact_sheet  # PyAV and Pillow are not start-up work

    dest = archive.compare_path(edit.edit_id)
    try:
        with archive.staged(dest) as tmp:
            await anyio.to_thread.run_sync(contact_sheet, before, video, tmp)
        return dest
    except Exception as exc:  # PyAV and Pillow raise their own error types for unreadable media
        logger.warning("no compare sheet edit_id=%s error=%s", edit.edit_id, exc)
        return None
    finally:
        archive.input_path(edit.edit_id).unlink(missing_ok=True)


def sheet_of(archive: Archive, edit: Edit) -> Path | None:
    """The finished edit's sheet, where one was made."""
    path = archive.compare_path(edit.edit_id)
    return path if edit.status == "succeeded" and path.is_file() else None
