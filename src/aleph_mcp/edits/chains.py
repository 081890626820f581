"""Chains: one of the caller's own finished edits as the input of the next (`from_edit`, or
`video="aleph://edits/{id}/video"`).

The parent is looked up by id, scoped to its owner: another caller's edit reads exactly like an unknown id.
Only a succeeded edit with its video in the archive can be a parent. The input reaches the provider by the
best route: the parent's own output URL when it is the same provider's and still valid (nothing uploaded),
else the archived file through the provider's upload or data-URI route (the archive is ours, so it is read
even when outside the allowed folders, but only through here), else a refusal naming a provider that can
take it. In an object-store archive the video is fetched from the bucket into the intake's private copy
(at most PARENT_MAX_BYTES) before it is probed, cut or uploaded. Two calls on the same parent output are
the same input to duplicate detection (`origin`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

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
# A parent in an object store is fetched into the intake's private copy, at most this (the bound of a URL
# fetched to be trimmed, trims.FETCH_MAX_BYTES): no model takes more than a fraction of it.
PARENT_MAX_BYTES = 512 * 1024 * 1024
COPY_CHUNK = 1024 * 1024
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
    archive: Archive
    location: str  # its archived video, a location of `archive`
    size: int
    local: Path | None = None  # that video as a file of this machine (a local archive), resolved

    @property
    def origin(self) -> str:
        return f"edit:{self.edit.edit_id}"

    def as_file(self) -> VideoInput:
        """The archived video as a local input. In a bucket its value is the object's location until the
        intake fetches its private copy (`fetch_copy`); a local archive's file is copied privately too."""
        uri = video_uri(self.edit.edit_id)
        value = str(self.local) if self.local is not None else self.location
        return VideoInput("path", value, self.size, shown=uri, origin=self.origin)

    async def fetch_copy(self, dest_dir: Path) -> VideoInput:
        """The video in the bucket as a private file in `dest_dir`, hashed on the way, at most
        PARENT_MAX_BYTES: what the intake probes, cuts and uploads."""
        if self.size > PARENT_MAX_BYTES:
            raise InvalidInput(
                f"The archived video of edit {self.edit.edit_id} is {self.size / 1048576:.0f} MB, more than "
                f"{PARENT_MAX_BYTES // 1048576} MB this server fetches to edit further. Nothing was sent."
            )
        copy = dest_dir / f"{self.edit.edit_id}.mp4"
        try:
            digest, size = await anyio.to_thread.run_sync(_copy_object, self.archive, self.location, copy)
        except (OSError, ValueError) as exc:
            copy.unlink(missing_ok=True)
            raise InvalidInput(
                f"The archived video of edit {self.edit.edit_id} could not be read from the archive "
                f"({type(exc).__name__}); try again, or start from the original input. Nothing was sent."
            ) from None
        uri = video_uri(self.edit.edit_id)
        return VideoInput("path", str(copy), size, shown=uri, digest=digest, origin=self.origin)

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


def _copy_object(archive: Archive, location: str, copy: Path) -> tuple[str, int]:
    """On a worker thread: the object streamed to `copy` through the archive's reader; (sha256, size).
    ValueError past PARENT_MAX_BYTES (it may have grown since its size was read)."""
    digest, size = hashlib.sha256(), 0
    copy.parent.mkdir(parents=True, exist_ok=True)
    with archive.reader(location) as source, contextlib.ExitStack() as files, open(copy, "xb") as out:
        # An archive that reads as files hands a path; an object store, a ranged file object.
        reading = files.enter_context(open(source, "rb")) if isinstance(source, str | Path) else source
        while chunk := reading.read(COPY_CHUNK):
            size += len(chunk)
            if size > PARENT_MAX_BYTES:
                raise ValueError(f"more than {PARENT_MAX_BYTES} bytes")
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest(), size


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
    location = archive.video_location(edit_id)
    local = archive.local_file(location)
    if local is not None:
        local = local.resolve()
        size = local.stat().st_size if local.is_file() else None
    else:
        size = await archive.size(location)
    if size is None:
        raise InvalidInput(
            f"The archived video of edit {edit_id} is gone from this server; start from the original input. "
            "Nothing was sent."
        )
    return Parent(edit, archive, location, size, local)


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
