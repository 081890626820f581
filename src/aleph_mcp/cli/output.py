"""What the command line prints: aligned tables for people, JSON for scripts, a live progress line.

Results go to stdout; progress, hints and errors go to stderr, so `--json` output can be piped as is.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from aleph_mcp.models import Edit, EditRecord

# Exit codes (documented in the README's "Command line" section).
OK = 0  # done: the edit succeeded, or the command did what it was asked
ERROR = 1  # an error, or an edit that ended failed or cancelled
REFUSED = 2  # refused before anything was sent (invalid input, provider not configured)
RUNNING = 3  # the edit has not finished yet


def exit_code_for(status: str) -> int:
    if status == "succeeded":
        return OK
    return ERROR if status in ("failed", "cancelled") else RUNNING


def emit_json(data: Any, out: TextIO | None = None) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False), file=out or sys.stdout)


def table(rows: Sequence[Sequence[str]], header: Sequence[str] | None = None) -> str:
    """Columns padded to their widest cell; the last column is left ragged."""
    lines = [list(header)] if header else []
    lines += [list(row) for row in rows]
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]) - 1)]
    return "\n".join(
        "  ".join(
            [cell.ljust(width) for cell, width in zip(line, widths, strict=False)] + [line[-1]]
        ).rstrip()
        for line in lines
    )


def percent(progress: float | None) -> str:
    return f"{progress:.0%}" if progress is not None else "-"


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def record_rows(record: EditRecord, edit: Edit | None = None) -> list[tuple[str, str]]:
    """The fields of one edit worth a person's attention, as (label, value) rows."""
    data = record.model_dump()
    rows = [
        ("edit", record.edit_id),
        ("status", record.status + (f" ({percent(record.progress)})" if record.status == "running" else "")),
        ("provider", f"{record.provider} / {record.model}"),
        ("prompt", shorten(record.prompt, 100)),
        ("task", record.provider_task_id or "-"),
        ("created", record.created_at),
    ]
    if record.finished_at:
        rows.append(("finished", record.finished_at))
    if record.notes:
        rows.append(("notes", record.notes))
    rows += [("warning", str(w)) for w in data.get("warnings") or []]
    if record.error is not None:
        rows.append(("error", f"{record.error.message} [{record.error.code}]"))
    if record.local_path:
        rows.append(("video", record.local_path))
    if edit is not None and edit.thumbnail_path:
        rows.append(("thumbnail", edit.thumbnail_path))
    elif record.output_url and not record.local_path:
        rows.append(("output url", record.output_url))
    return rows


def print_record(record: EditRecord, edit: Edit | None = None, out: TextIO | None = None) -> None:
    print(table(record_rows(record, edit)), file=out or sys.stdout)


def list_rows(records: Iterable[EditRecord]) -> str:
    rows = [
        (r.edit_id, r.status, r.provider, percent(r.progress), r.created_at, shorten(r.prompt, 48))
        for r in records
    ]
    return table(rows, ("EDIT", "STATUS", "PROVIDER", "PROGRESS", "CREATED", "PROMPT"))


def error_line(message: str, err: TextIO | None = None) -> None:
    """One readable line: newlines in a provider's message would break a log or a terminal."""
    print(f"aleph-mcp: error: {' '.join(message.split())}", file=err or sys.stderr)


def hint(message: str, err: TextIO | None = None) -> None:
    print(message, file=err or sys.stderr)


class ProgressLine:
    """A live status line on stderr: rewritten in place on a terminal, one line per change otherwise."""

    def __init__(self, stream: TextIO | None = None, *, enabled: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self._last: tuple[str, str] | None = None
        self._width = 0

    def update(self, edit: Edit) -> None:
        if not self.enabled:
            return
        elapsed = max(0.0, time.time() - edit.created_at)
        state = (edit.status, percent(edit.progress))
        text = f"{edit.edit_id}  {edit.status:<9}  {state[1]:>4}  {elapsed:6.1f} s"
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = max(self._width, len(text))
        elif state != self._last:
            self.stream.write(text + "\n")
        self._last = state
        self.stream.flush()

    def note(self, message: str) -> None:
        if self.enabled:
            self.end()
            self.stream.write(message + "\n")
            self.stream.flush()

    def end(self) -> None:
        if self.enabled and self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


class CliError(Exception):
    """A failure the command line reports in one line, with its exit code."""

    def __init__(self, message: str, exit_code: int = ERROR, *, code: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.code = code
