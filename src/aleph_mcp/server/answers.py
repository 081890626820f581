"""A finished edit's `get_edit_status` answer, made once and handed out again while nothing it is made of
changes.

Agents ask for the status of a finished edit again and again (a last check, each turn of a conversation).
The answer is built from the edit's stored fields, its chain, and its before/after sheet and still in a
local archive; for a finished edit nothing in it depends on the time. So each answer is kept with all of
those (every stored field, the chain's steps, each image file's size and change time), compared in full on
every call: any change, however small, makes a new answer. Unfinished edits (their check-again hint moves)
and archives that are not local folders (no cheap freshness check) are never kept.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import mcp.types as types

from aleph_mcp.media.archive import Archive
from aleph_mcp.models import Edit, LineageStep

KEPT = 256  # answers kept, the most recently asked for


def _file_state(path: str | os.PathLike[str] | None) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_size, found.st_mtime_ns


class FinishedAnswers:
    """The kept answers of one server (one archive), by edit id; `made_of` says what one is made of (None:
    do not keep it)."""

    def __init__(self, size: int = KEPT) -> None:
        self._size = size
        self._kept: OrderedDict[str, tuple[tuple[Any, ...], types.CallToolResult]] = OrderedDict()
        self._files: dict[tuple[str, str | None], tuple[Path, Path | None] | None] = {}

    def made_of(self, archive: Archive, edit: Edit, chain: list[LineageStep]) -> tuple[Any, ...] | None:
        if not edit.is_terminal:
            return None
        files = self._image_files(archive, edit)
        if files is None:  # not a local folder
            return None
        return (tuple(vars(edit).values()), tuple(chain), _file_state(files[0]), _file_state(files[1]))

    def _image_files(self, archive: Archive, edit: Edit) -> tuple[Path, Path | None] | None:
        """The sheet's and the still's files, worked out once per edit (and still path)."""
        key = (edit.edit_id, edit.thumbnail_path)
        if key not in self._files:
            if len(self._files) >= 4 * self._size:
                self._files.clear()
            sheet = archive.local_file(archive.compare_location(edit.edit_id))
            still = archive.local_file(edit.thumbnail_path) if edit.thumbnail_path else None
            self._files[key] = None if sheet is None else (sheet, still)
        return self._files[key]

    def get(self, edit_id: str, made_of: tuple[Any, ...]) -> types.CallToolResult | None:
        found = self._kept.get(edit_id)
        if found is None or found[0] != made_of:
            return None
        self._kept.move_to_end(edit_id)
        return found[1].model_copy()  # a new envelope each time: the SDK may stamp its own fields on it

    def put(self, edit_id: str, made_of: tuple[Any, ...], answer: types.CallToolResult) -> None:
        self._kept[edit_id] = (made_of, answer.model_copy())
        self._kept.move_to_end(edit_id)
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)
