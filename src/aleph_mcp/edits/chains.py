"""Chains: one of the caller's own finished edits as the input of the next (`from_edit`, or
`video="aleph://edits/{id}/video"`).

The parent is looked up by id, scoped to its owner: another caller's edit reads exactly like an unknown id.
Only a succeeded edit with its video in the archive can be a parent. The input reaches the provider by the
best route: the parent's own output URL when it is the same provider's and still valid (nothing uploaded),
else the archived file through the provider's upload or data-URI route (the archive is ours, so it is read
even when outside the allowed folders, but only through here), else a refusal naming a provider that can
take it. Two calls on the same parent output are the same input to duplicate detection (`origin`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aleph_mcp.edits.validation import VideoInput
from aleph_mcp.errors import InvalidInput
from aleph_mcp.media.archive import Archive
from aleph_mcp.models import Edit, LineageStep
from aleph_mcp.providers.base import Capabilities, Provider
from aleph_mcp.records import trim_text, video_uri
from aleph_mcp.store import EditStore

EDIT_ID = re.compile(r"^ed_[0-9a-f]{20}$")
_PARENT_URI = re.compile(r"^aleph://edits/(?P<id>[^/]*)/video$", re.I)
MAX_LINEAGE = 50  # steps shown back from an edit; a longer chain is cut off at its oldest end
# How long a provider's result URL can be handed back to that provider, counted from when the edit ended:
# below the documented lifetime (reference/providers.md: kie 14 days, Runway and AI/ML API 24-48 h, crun not
# stated; Krea uploads instead). A provider not named here always gets the archived file.
URL_LIFETIME = {"kie": 13 * 86400.0, "runway": 20 * 3600.0, "aimlapi": 20 * 3600.0, "crun": 20 * 3600.0}


def parent_reference(video: str | None, from_edit: str | None) -> str | None:
    """The parent edit id a call names (`from_edit`, or the `video` URI), checked; None: no chain."""
    named = _uri_id(video) if video else None
    if from_edit is not None:
        if video and named != from_edit:
            raise InvalidInput("Pass either `video` or `from_edit`, not both; nothing was sent.")
        named = from_edit
    if named is not None and not EDIT_ID.match(named):
        raise InvalidInput(
            f"{named[:60]!r} is not an edit id (ed_ and 20 hex digits). Pass the edit_id of one of your "
            "finished edits; list_edits(status='succeeded') shows them. Nothing was sent."
        )
    return named


def _uri_id(video: str) -> str | None:
    value = video.strip()
    if not value.lower().startswith("aleph:"):
        return None
    match = _PARENT_URI.match(value)
    if match is None:
        raise InvalidInput(
            "An aleph: `video` must be aleph://edits/{edit_id}/video, the video of one of your finished "
            "edits. Nothing was sent."
        )
    return match["id"]


@dataclass(frozen=True)
class Parent:
    """A finished edit of the caller's whose archived output is the next input."""

    edit: Edit
    file: Path  # the archived video

    @property
    def origin(self) -> str:
        return f"edit:{self.edit.edit_id}"

    def as_file(self) -> VideoInput:
        """The archived video as a local input (copied privately by the intake before anything reads it)."""
        uri = video_uri(self.edit.edit_id)
        return VideoInput("path", str(self.file), self.file.stat().st_size, shown=uri, origin=self.origin)

    def route(
        self, name: str, caps: Capabilities, now: float, providers: Mapping[str, Provider]
    ) -> VideoInput:
        """How provider `name` gets this input: its own still-valid result URL, else the archived file."""
        url = self._own_url(name, caps, now)
        if url is not None:
            return VideoInput("url", url, shown=video_uri(self.edit.edit_id), origin=self.origin)
        if not takes_files(caps):
            able = [p for p, other in providers.items() if takes_files(other.capabilities)]
            hint = f" Choose {', '.join(able)}, which can." if able else ""
            raise InvalidInput(
                f"{name} cannot receive edit {self.edit.edit_id}'s video: it takes only URLs, and that "
                f"edit's result URL is not {name}'s own or may have expired.{hint} Nothing was sent."
            )
        return self.as_file()

    def _own_url(self, name: str, caps: Capabilities, now: float) -> str | None:
        edit, lifetime = self.edit, URL_LIFETIME.get(name)
        if edit.provider != name or lifetime is None or not caps.accepts_urls:
            return None
        # The provider's own answer, which the archive fetched under the fetch policy (https, or the
        # provider's configured origin): handed back only to that provider, never fetched here again.
        url = edit.output_url or ""
        if not url.lower().startswith(("https://", "http://")) or edit.finished_at is None:
            return None
        return url if now - edit.finished_at < lifetime else None


def takes_files(caps: Capabilities) -> bool:
    return caps.reads_files_in_place or caps.can_upload or caps.data_uri_max_bytes is not None


async def find_parent(store: EditStore, archive: Archive, edit_id: str, owner: str) -> Parent:
    """The caller's own succeeded edit with its archived video; InvalidInput, saying why, otherwise."""
    edit = await store.get(edit_id)
    if edit is None or edit.owner != owner:  # another's edit reads exactly like an unknown one
        raise InvalidInput(
            f"No edit {edit_id!r} of yours to edit further; list_edits(status='succeeded') shows your "
            "finished edits. Nothing was sent."
        )
    if not edit.is_terminal:
        raise InvalidInput(
            f"Edit {edit_id} is still {edit.status}: wait for it to finish (get_edit_status with "
            "wait_seconds), then edit its result. Nothing was sent."
        )
    if edit.status != "succeeded":
        raise InvalidInput(
            f"Edit {edit_id} {edit.status} and has no video to edit further; start from its input instead. "
            "Nothing was sent."
        )
    file = archive.video_path(edit_id).resolve()
    if not file.is_file():
        raise InvalidInput(
            f"The archived video of edit {edit_id} is gone from this server; start from the original input. "
            "Nothing was sent."
        )
    return Parent(edit, file)


async def lineage(store: EditStore, edit: Edit) -> list[LineageStep]:
    """The chain back to the original input, oldest first and ending with `edit`; empty for an edit that
    is no chain's step. Stays within the edit's owner, stops at a missing edit or a loop."""
    if edit.parent_edit_id is None:
        return []
    steps, seen, current = [edit], {edit.edit_id}, edit
    while current.parent_edit_id and len(steps) < MAX_LINEAGE:
        found = await store.get(current.parent_edit_id)
        if found is None or found.owner != edit.owner or found.edit_id in seen:
            break
        steps.append(found)
        seen.add(found.edit_id)
        current = found
    return [
        LineageStep(
            edit_id=s.edit_id, prompt=s.prompt, input=s.video, trim=trim_text(s.trim_start, s.trim_end)
        )
        for s in reversed(steps)
    ]
