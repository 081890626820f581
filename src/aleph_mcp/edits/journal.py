"""The task journal: where a task id goes when the store cannot take it, so a paid task is never lost.

A create the provider accepted is a job that will bill. Its task id is saved in the store at once; should that
fail (a full disk, a locked file) even after retries, one JSON line `{edit_id, provider, task_id, time}` is
appended to `<data_dir>/task-journal.jsonl` and fsynced. The next start applies every line to the store and
keeps only the lines it could not apply. The journal holds no secret: ids and a provider name.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from aleph_mcp.models import Edit
from aleph_mcp.store import EditStore

logger = logging.getLogger(__name__)

# A failure recorded before the task id reached the store; the journal proves the create was accepted.
REOPENED_CODES = frozenset({"submit_outcome_unknown", "not_sent"})


@dataclass(frozen=True)
class Entry:
    edit_id: str
    provider: str
    task_id: str
    time: float


class TaskJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, entry: Entry) -> None:
        """One durable line (fsynced before this returns). Raises OSError when even that cannot be written."""
        line = json.dumps(vars(entry), sort_keys=True) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def entries(self) -> list[Entry]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        found = []
        for line in text.splitlines():
            try:
                found.append(Entry(**json.loads(line)))
            except (ValueError, TypeError):  # a line cut off by a crash mid-append
                logger.warning("task journal line unreadable; skipped path=%s", self.path)
        return found

    def lookup(self, edit_id: str) -> Entry | None:
        return next((e for e in self.entries() if e.edit_id == edit_id), None)

    async def reconcile(self, store: EditStore, now: float) -> int:
        """Apply every entry to the store; keep only those that could not be applied. Returns how many."""
        entries = self.entries()
        if not entries:
            return 0
        applied: list[Entry] = []
        for entry in entries:
            try:
                edit = await store.get(entry.edit_id)
                if edit is not None and apply(edit, entry, now):
                    await store.save(edit)
                applied.append(entry)
            except Exception:
                logger.exception("task journal entry not applied edit=%s", entry.edit_id)
        self._drop(applied)
        logger.info("task journal reconciled applied=%d kept=%d", len(applied), len(entries) - len(applied))
        return len(applied)

    def _drop(self, applied: list[Entry]) -> None:
        """Rewrite the journal without `applied`, re-read first: a line appended meanwhile is kept."""
        with self._lock:
            remaining = [e for e in self.entries() if e not in applied]
            if not remaining:
                self.path.unlink(missing_ok=True)
                return
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(vars(e), sort_keys=True) + "\n" for e in remaining))
            os.replace(tmp, self.path)


def apply(edit: Edit, entry: Entry, now: float) -> bool:
    """Give `edit` the task id the journal kept; True when that changed it. A failure recorded only because
    the id was missing is undone: the task exists and is followed to its end like any other."""
    if edit.provider_task_id is not None:
        return False
    edit.provider_task_id = entry.task_id
    edit.create_sent_at = edit.create_sent_at or entry.time
    if edit.status == "failed" and edit.error_code in REOPENED_CODES:
        edit.status, edit.error_code, edit.error_message, edit.finished_at = "queued", None, None, None
    if not edit.is_terminal:
        edit.next_poll_at = now
    edit.updated_at = now
    return True
