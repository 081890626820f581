"""Turns stored edits into what agents see: status records, resource URIs, short summaries."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aleph_mcp.models import Edit, EditRecord, LineageStep, ProviderCost, WindowInfo

JOB_PLAN = "whole_clip_windows"  # see edits/long_clips.py: a whole-clip job's windows
JOB_QUOTE = "whole_clip_quote_usd"

URI_PREFIX = "aleph://edits/"


def edit_uri(edit_id: str) -> str:
    return f"{URI_PREFIX}{edit_id}"


def video_uri(edit_id: str) -> str:
    return f"{URI_PREFIX}{edit_id}/video"


def thumbnail_uri(edit_id: str) -> str:
    return f"{URI_PREFIX}{edit_id}/thumbnail"


def compare_uri(edit_id: str) -> str:
    return f"{URI_PREFIX}{edit_id}/compare"


def trim_text(start: float | None, end: float | None) -> str | None:
    """A trim as people read it, e.g. "1.5-4 s" (seconds of the input); None: the whole input."""
    if start is None and end is None:
        return None
    return f"{start or 0:g}-{end:g} s" if end is not None else f"from {start:g} s"


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return _iso(timestamp)


@functools.lru_cache(maxsize=4096)
def _iso(timestamp: float) -> str:
    """Formatted once per moment: a page of 20 records repeats 60 of them on every list_edits call."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def check_again_in(edit: Edit, now: float, default: float, behind: float = 0.0) -> int | None:
    """When a fresh answer can be expected: the edit's next status read, plus how far behind its
    schedule the poller runs (`Poller.behind`: with thousands in flight, a due edit waits its turn)."""
    if edit.is_terminal:
        return None
    due = edit.next_poll_at if edit.next_poll_at is not None else now + default
    return max(1, round(due + behind - now + 1))


def record_fields(
    edit: Edit,
    *,
    now: float,
    poll_interval: float = 5.0,
    duplicate: bool = False,
    lineage: list[LineageStep] | None = None,
    behind: float = 0.0,
) -> dict[str, Any]:
    """The status record as the JSON values EditRecord dumps to: what the tools answer with, built
    without a model per edit (the SDK still checks each answer against the tool's output model).
    `lineage`: a chain's steps (chains.py) where the caller looked them up; `behind`: how late the poller
    runs (the check-again hint says when the edit is really looked at)."""
    ended_badly = edit.status in ("failed", "cancelled") and (edit.error_code or edit.error_message)
    return {
        "edit_id": edit.edit_id,
        "status": edit.status,
        "provider": edit.provider,
        "model": edit.model,
        "prompt": edit.prompt,
        "provider_task_id": edit.provider_task_id,
        "created_at": iso(edit.created_at) or "",
        "updated_at": iso(edit.updated_at) or "",
        "finished_at": iso(edit.finished_at),
        "progress": edit.progress,
        "output_url": edit.output_url,
        "local_path": edit.local_path,
        "video_uri": video_uri(edit.edit_id) if edit.local_path else None,
        "thumbnail_uri": thumbnail_uri(edit.edit_id) if edit.thumbnail_path else None,
        "error": {"code": edit.error_code or "failed", "message": edit.error_message or ""}
        if ended_badly
        else None,
        "notes": edit.notes,
        "warnings": list(edit.warnings),
        "check_again_in_seconds": check_again_in(edit, now, poll_interval, behind),
        "duplicate_of_request": duplicate,
        "estimated_cost_usd": edit.options.get(JOB_QUOTE, edit.estimated_cost_usd),
        "cost_basis": edit.cost_basis,
        "provider_cost": _provider_cost_fields(edit),
        "parent_edit_id": edit.parent_edit_id,
        "trim": trim_text(edit.trim_start, edit.trim_end),
        "lineage": [step.model_dump(mode="json") for step in lineage] if lineage else None,
        "windows": [w.model_dump(mode="json") for w in windows_of(edit)],
    }


def to_record(
    edit: Edit,
    *,
    poll_interval: float = 5.0,
    duplicate: bool = False,
    lineage: list[LineageStep] | None = None,
    behind: float = 0.0,
    now: float | None = None,
) -> EditRecord:
    fields = record_fields(
        edit,
        now=time.time() if now is None else now,
        poll_interval=poll_interval,
        duplicate=duplicate,
        lineage=lineage,
        behind=behind,
    )
    return EditRecord.model_validate(fields)


def windows_of(edit: Edit) -> list[WindowInfo]:
    """A whole-clip job's windows, each with its edit and status; a window's edit: its own span."""
    if edit.part_of is not None and edit.window_index is not None:
        start, end = edit.window_start or 0.0, edit.window_end or 0.0
        return [
            WindowInfo(index=edit.window_index, start_seconds=start, end_seconds=end, part_of=edit.part_of)
        ]
    return [
        WindowInfo(
            index=w["index"],
            start_seconds=w["start"],
            end_seconds=w["end"],
            edit_id=w.get("edit_id"),
            status=w.get("status"),
        )
        for w in edit.options.get(JOB_PLAN, [])
    ]


def provider_cost(edit: Edit) -> ProviderCost | None:
    """The provider's own figure, with a basis like "runway reported 75 credits (final); $0.75 at
    $0.01/credit, a third-party conversion"."""
    fields = _provider_cost_fields(edit)
    return ProviderCost.model_validate(fields) if fields is not None else None


def _provider_cost_fields(edit: Edit) -> dict[str, Any] | None:
    credits = edit.provider_cost_credits
    if credits is None:
        return None
    kind = "final" if edit.provider_cost_final else "estimate"
    basis = f"{edit.provider} reported {credits:g} credits ({kind})"
    usd = edit.provider_cost_usd
    if usd is not None and credits > 0:
        basis += f"; ${usd:.2f} at ${usd / credits:.4g}/credit, a third-party conversion"
    return {"credits": credits, "final": edit.provider_cost_final, "usd": usd, "basis": basis}


def cost_text(usd: float | None, basis: str | None) -> str:
    """Text like "$0.75 (5 s × $0.15/s)", or what is known when the price is not."""
    if usd is None:
        return f"cost unknown ({basis})" if basis else "cost unknown"
    figure = f"${usd:.2f}" if round(usd, 2) == usd else f"${usd:.4g}"
    return f"{figure} ({basis})" if basis else figure


def summary(record: EditRecord | Mapping[str, Any]) -> str:
    """One line a person can read in a chat transcript (of a record, or of its `record_fields`)."""
    r = record if isinstance(record, Mapping) else record.model_dump(mode="json")
    line = f"Edit {r['edit_id']} ({r['provider']}/{r['model']}) is {r['status']}"
    if r["progress"] is not None and r["status"] == "running":
        line += f", {r['progress']:.0%}"
    if r.get("trim"):
        line += f", editing {r['trim']} of its input"
    if r.get("parent_edit_id"):
        line += f", made from edit {r['parent_edit_id']}'s video"
    if r["status"] == "succeeded" and r["local_path"]:
        line += f". Video: {r['local_path']} (resource {r['video_uri']})"
    if r["error"] is not None:
        line += f": {r['error']['message']}"
    jobs = [w for w in r.get("windows") or [] if w.get("part_of") is None]
    if jobs and r["error"] is None:  # a whole-clip job: its windows are edits of their own
        done = sum(w.get("status") == "succeeded" for w in jobs)
        edits = ", ".join(str(w.get("edit_id")) for w in jobs)
        line += f" (whole clip: {done} of {len(jobs)} windows done, edits {edits})"
    if r["check_again_in_seconds"] is not None:
        line += f". Check again in about {r['check_again_in_seconds']} s."
    line += "" if line.endswith(".") else "."
    if r["estimated_cost_usd"] is not None or r["cost_basis"]:
        line += f" Estimated {cost_text(r['estimated_cost_usd'], r['cost_basis'])}."
    return line
