"""A finished edit's status answer is made once and kept only while nothing it is made of changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp.types as types
from mcp import Client

from aleph_mcp.media.archive import LocalArchive
from aleph_mcp.models import Edit
from aleph_mcp.server.answers import FinishedAnswers
from aleph_mcp.store.sqlite import SQLiteEditStore

from .test_chains import finished, local_client, started


async def status(client: Client, edit_id: str) -> types.CallToolResult:
    result = await client.call_tool("get_edit_status", {"edit_id": edit_id})
    assert not result.is_error
    return result


def shown(result: types.CallToolResult) -> tuple[Any, list[str], list[str]]:
    """The record, the linked URIs and the inline images' data."""
    links = [str(b.uri) for b in result.content if isinstance(b, types.ResourceLink)]
    images = [b.data for b in result.content if isinstance(b, types.ImageContent)]
    return result.structured_content, links, images


async def test_a_finished_edits_answer_follows_every_change_of_the_edit_and_its_images(
    tmp_path: Path, clip: Path
) -> None:
    """Asked again, the same answer; after another process saves a change to the edit, the new one; after
    the sheet is gone, the still instead; after the still is gone too, no image."""
    async with local_client(tmp_path) as client:
        done = await finished(client, (await started(client, prompt="invert", video=str(clip)))["edit_id"])
        edit_id = done["edit_id"]
        first, again = shown(await status(client, edit_id)), shown(await status(client, edit_id))
        other = SQLiteEditStore(tmp_path / "data" / "edits.sqlite3")  # another process's write
        edit = await other.get(edit_id)
        assert edit is not None and edit.thumbnail_path is not None
        edit.notes = "applied: invert (negate), checked again"
        await other.save(edit)  # the same updated_at: only the field itself differs
        noted = shown(await status(client, edit_id))
        sheet = Path(LocalArchive(tmp_path / "data" / "archive").compare_location(edit_id))
        sheet.unlink()
        without_sheet = shown(await status(client, edit_id))
        Path(edit.thumbnail_path).unlink()
        without_images = shown(await status(client, edit_id))
        await other.close()
    assert again == first and len(first[2]) == 1 and f"aleph://edits/{edit_id}/compare" in first[1]
    assert (
        noted[0]["notes"] == "applied: invert (negate), checked again"
        and first[0]["notes"] != noted[0]["notes"]
    )
    assert f"aleph://edits/{edit_id}/compare" not in without_sheet[1]
    assert len(without_sheet[2]) == 1 and without_sheet[2] != first[2]  # the still, not the sheet
    assert without_images[2] == [] and without_images[0] == noted[0]


def test_only_finished_edits_in_a_local_archive_are_kept(tmp_path: Path) -> None:
    """A running edit's answer changes with the time (its check-again hint); an archive that is not a
    local folder cannot be checked with a stat. Neither is kept; the least recently asked goes first."""
    archive = LocalArchive(tmp_path)
    running = Edit("ed_r", "local", "ffmpeg", "p", "v", status="running")
    done = Edit("ed_d", "local", "ffmpeg", "p", "v", status="succeeded")
    answers = FinishedAnswers(size=1)
    assert answers.made_of(archive, running, []) is None

    class Remote(LocalArchive):
        def local_file(self, location: str) -> Path | None:
            return None

    assert FinishedAnswers().made_of(Remote(tmp_path), done, []) is None
    made_of = answers.made_of(archive, done, [])
    assert made_of is not None
    answer = types.CallToolResult(content=[types.TextContent(type="text", text="done")])
    answers.put("ed_d", made_of, answer)
    kept = answers.get("ed_d", made_of)
    assert kept is not None and kept is not answer and kept.content == answer.content
    done.notes = "changed"
    assert answers.get("ed_d", answers.made_of(archive, done, []) or ()) is None
    answers.put("ed_other", made_of, answer)
    assert answers.get("ed_d", made_of) is None  # pushed out: one answer kept
