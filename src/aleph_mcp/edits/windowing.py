"""Planning a whole-clip edit (`whole_clip=true`) at intake: its windows, their quote, the window limit.

A clip longer than the model's window (`ModelFacts.max_processed_seconds`) is split into windows of that
length, neighbours sharing ALEPH_MCP_WINDOW_OVERLAP seconds, each sent as its own (billed) edit; the quote,
the budget and the confirmation cover all of them. Nothing here sends or writes anything: the job itself is
run by long_clips.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.to_thread

from aleph_mcp.config import Settings
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.edits.validation import VideoInput
from aleph_mcp.errors import InvalidInput
from aleph_mcp.models import SEED_MAX
from aleph_mcp.pricing.budget import estimate_cost
from aleph_mcp.pricing.catalog import Quote, facts_of

if TYPE_CHECKING:  # PyAV loads only once a clip is planned, cut or stitched, never with the server
    from aleph_mcp.media.windows import Window

NO_LIMIT = 10_000  # planning the count first, so the refusal can say how many windows it would take
TOO_LONG = "processes only the first"  # preflight's warning, which windows make moot


async def plan_whole_clip(
    args: EditArgs, name: str, model: str, video: VideoInput, settings: Settings
) -> list[Window]:
    """The windows a whole-clip request goes out as; [] when it fits in one (or the model has no window).
    Raises InvalidInput, with nothing sent, for an input it cannot cut or a clip past the window limit."""
    window = facts_of(name, model).max_processed_seconds
    if not args.whole_clip or window is None:
        return []
    if video.kind != "path":
        raise InvalidInput(
            "whole_clip needs a local file: the clip is cut into windows on this machine. Save the video "
            "into an allowed folder and pass its path. Nothing was sent."
        )
    from aleph_mcp.media.cutting import clip_timing
    from aleph_mcp.media.windows import plan_windows

    # Timed as the cut counts it, so every window's bounds fall on the clip's frames.
    timing = await anyio.to_thread.run_sync(clip_timing, Path(video.value))
    seconds = timing.duration
    if seconds <= window:
        return []
    overlap = settings.window_overlap if settings.window_overlap < window / 2 else 0.0
    windows = plan_windows(seconds, window, overlap, NO_LIMIT, fps=timing.fps)
    limit = settings.max_windows
    if len(windows) > limit:
        most = window + (limit - 1) * (window - overlap)
        raise InvalidInput(
            f"whole_clip: this {seconds:.1f} s clip needs {len(windows)} windows of {window:g} s at "
            f"{name}/{model}, and at most {limit} are allowed (ALEPH_MCP_MAX_WINDOWS). Trim it to at most "
            f"{most:g} s (or edit it in parts), or raise ALEPH_MCP_MAX_WINDOWS. Nothing was sent."
        )
    return windows


def job_quote(name: str, model: str, windows: list[Window], settings: Settings) -> Quote:
    """What the whole job costs: every window billed as one edit of its length."""
    each = [estimate_cost(name, model, w.end - w.start, settings.prices) for w in windows]
    first = each[0]
    known = all(q.usd is not None for q in each)
    total = round(sum(q.usd or 0.0 for q in each), 4) if known else None
    seconds = sum(q.billed_seconds or 0.0 for q in each)
    bases = [q.basis for q in each]
    if len(set(bases)) == 1:
        basis = f"{len(windows)} windows × {first.basis}"
    else:
        basis = f"{len(windows)} windows: {' + '.join(bases)}"
    return first.model_copy(
        update={"usd": total, "known": known, "basis": basis, "billed_seconds": seconds or None}
    )


def job_warnings(warnings: list[str], windows: list[Window]) -> list[str]:
    """The intake's warnings, with the "only the first 5 s" one replaced by what will happen instead."""
    spans = ", ".join(f"{w.start:g}-{w.end:g} s" for w in windows)
    kept = [w for w in warnings if TOO_LONG not in w]
    return [
        *kept,
        f"Edited whole as {len(windows)} windows ({spans}), each sent and billed as one edit with the "
        "same prompt and seed, then stitched into one video with the original audio.",
    ]


def job_seed(fingerprint: str, given: int | None) -> int:
    """The seed every window uses: the caller's, else one fixed by the request, so a re-run of the same
    request renders its missing windows with the seed of the ones already done."""
    if given is not None:
        return given
    return int(hashlib.sha256(f"whole-clip-seed:{fingerprint}".encode()).hexdigest()[:8], 16) % SEED_MAX
