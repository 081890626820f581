"""Whole-clip jobs: a clip longer than the model's window, edited as windows and stitched back together.

The job is an edit of its own that no provider knows: it has no task id and is never polled at a provider.
Each window is a child edit (`part_of` = the job, `window_*` = its span) sent like any other edit, with the
job's prompt and one seed. The job's options hold the plan (`whole_clip_windows`: each window's span and
edit id), so a restarted server follows the job from the store alone. The poller aggregates the children
(`JobFollower.advance`): "2 of 3 windows done"; a failed or cancelled window fails the job naming it; when
every window has succeeded, the windows are stitched (off the event loop) into one archived video with the
original audio. A new call with the same request reuses the windows already rendered or still rendering
(each render is keyed by the request and its span, see `JobStarter._record`) and sends only the missing
ones; a window whose create may have reached the provider is never sent again.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import shutil
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from aleph_mcp.config import Settings
from aleph_mcp.edits.archiving import Archiver
from aleph_mcp.edits.intake import Intake
from aleph_mcp.edits.sending import Progress, Sender
from aleph_mcp.edits.validation import VideoInput
from aleph_mcp.edits.windowing import job_seed
from aleph_mcp.errors import AlephError, CannotCancel, IdempotencyConflict
from aleph_mcp.media.archive import Archive
from aleph_mcp.media.transfer import archive_file
from aleph_mcp.models import Edit
from aleph_mcp.pricing.budget import cost_basis, estimate_cost
from aleph_mcp.records import JOB_PLAN, JOB_QUOTE
from aleph_mcp.store import EditStore

if TYPE_CHECKING:  # PyAV loads only once a clip is cut or stitched, never with the server
    from aleph_mcp.media.windows import Window

logger = logging.getLogger(__name__)

PLAN = JOB_PLAN  # the job's options key: [{index, start, end, edit_id, reused, status}]
SOURCE = "whole_clip_source"  # the job's own copy of the input, which the stitch takes the audio from
QUOTE = JOB_QUOTE  # the job's quote; the job holds what its unrecorded windows will cost (`reservation`)
JOB_ONLY = (PLAN, SOURCE, QUOTE)
WINDOW_KEY = "whole-clip-window:"  # the idempotency key of a window's render, see JobStarter._record
ENDED_BADLY = ("failed", "cancelled")


class OutcomeUnknown(Exception):
    """The window was sent before and the provider may have it: it is not sent again."""

    def __init__(self, earlier: Edit) -> None:
        super().__init__(earlier.edit_id)
        self.earlier = earlier


def _usable(edit: Edit) -> bool:
    """A window's earlier render that can stand in for a new one: its video still archived, or on its way."""
    return edit.status != "succeeded" or bool(edit.local_path and Path(edit.local_path).is_file())


def is_job(edit: Edit) -> bool:
    return PLAN in edit.options


def plan_of(edit: Edit) -> list[dict[str, Any]]:
    plan: list[dict[str, Any]] = edit.options.get(PLAN, [])
    return plan


def as_job(edit: Edit, intake: Intake) -> None:
    """Turn the request's new edit into its whole-clip job, before it is stored."""
    windows = intake.windows
    caps = intake.provider.capabilities
    if caps.seed:
        edit.options["seed"] = job_seed(intake.fingerprint, intake.args.seed)
    edit.options[PLAN] = [{"index": w.index, "start": w.start, "end": w.end} for w in windows]
    edit.options[QUOTE] = intake.estimate.usd
    edit.estimated_cost_usd = reservation(edit)
    edit.notes = f"0 of {len(windows)} windows done"


def reservation(job: Edit) -> float | None:
    """What the job counts against the budget: its quote's share of the windows not yet recorded as edits
    of their own (each then counts itself). So from the job's insert on, the whole job is counted and no
    concurrent request slips under a cap in between; once every window is recorded, the job spends $0."""
    plan, quote = plan_of(job), job.options.get(QUOTE)
    if quote is None or not plan:
        return None if quote is None else 0.0
    left = sum(1 for entry in plan if not entry.get("edit_id"))
    return float(quote) * left / len(plan)


def window_print(fingerprint: str, window: Window) -> str:
    """What makes two windows the same render: the whole request and the span."""
    text = f"{fingerprint}|window|{window.start:.3f}|{window.end:.3f}"
    return hashlib.sha256(text.encode()).hexdigest()


def _digest(path: Path) -> tuple[str, int]:
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), len(data)


def failure_of(job: Edit, entry: dict[str, Any], child: Edit | None, unsent: str | None = None) -> str:
    """Why the job failed, naming the window, and what to do next."""
    n = len(plan_of(job))
    span = f"window {entry['index'] + 1} of {n} ({entry['start']:g}-{entry['end']:g} s"
    if child is None:
        why = unsent or "was never sent: the server stopped while sending the job"
        what = f"{span}) {why}"
    else:
        why = f": {child.error_message}" if child.error_message else ""
        what = f"{span}, edit {child.edit_id}) {child.status}{why}"
    return (
        f"The whole-clip edit failed: {what}. The windows that finished stay available; call edit_video "
        "again with the same video, prompt and whole_clip=true to send only the missing windows."
    )


class JobStarter:
    """Sends a job's windows, in the edit_video call, under the job's lease (held by the caller)."""

    def __init__(
        self,
        store: EditStore,
        sender: Sender,
        settings: Settings,
        clock: Callable[[], float],
        lease_seconds: float,
    ) -> None:
        self.store = store
        self.sender = sender
        self.settings = settings
        self.clock = clock
        self.lease_seconds = lease_seconds

    async def send(self, job: Edit, intake: Intake, progress: Progress) -> None:
        folder = self.settings.data_dir / "whole-clips" / job.edit_id
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / f"source{Path(intake.video.value).suffix.lower() or '.mp4'}"
        await anyio.to_thread.run_sync(shutil.copyfile, intake.video.value, source)
        job.options[SOURCE] = str(source)
        job.status, job.updated_at = "running", self.clock()
        await self.store.save(job)
        seed = job.options.get("seed")
        args = replace(intake.args, seed=seed if isinstance(seed, int) else intake.args.seed)
        part = replace(intake, args=args, scratch=None, windows=())
        for window in intake.windows:
            await progress(window.index / len(intake.windows), f"Sending window {window.index + 1}")
            entry = plan_of(job)[window.index]
            try:
                child = await self._window(job, part, intake.fingerprint, window, source)
            except OutcomeUnknown as exc:
                why = (
                    f"was sent before as edit {exc.earlier.edit_id}, which {job.provider} may have started "
                    "(its outcome is unknown), so it was not sent again: that could bill twice. Check the "
                    "provider's dashboard; allow_duplicate=true sends every window anew"
                )
                job.fail("window_failed", failure_of(job, entry, None, why), self.clock())
                break
            except Exception as exc:  # the cut failed (PyAV, disk): nothing of this window was sent
                logger.warning(
                    "window not prepared job=%s window=%s error=%s", job.edit_id, window.index, exc
                )
                job.fail(
                    "window_failed", failure_of(job, entry, None, f"could not be cut ({exc})"), self.clock()
                )
                break
            if child is not None and child.status in ENDED_BADLY:
                job.fail("window_failed", failure_of(job, entry, child), self.clock())
                break
        if job.is_terminal:
            discard_files(job)
        else:
            job.next_poll_at = self.clock()  # the poller aggregates its windows from now on
        job.updated_at = self.clock()
        await self.store.save(job)

    async def _window(
        self, job: Edit, part: Intake, fingerprint: str, window: Window, source: Path
    ) -> Edit | None:
        """Cut, record and send one window; the earlier render of the same window when there is one."""
        from aleph_mcp.media.cutting import cut_clip

        cut = Path(source).with_name(f"window-{window.index}.mp4")
        await anyio.to_thread.run_sync(cut_clip, source, cut, window.start, window.end)
        digest, size = await anyio.to_thread.run_sync(_digest, cut)
        child = self._child(job, part, window, digest)
        reused = await self._record(child, window_print(fingerprint, window), part.args.allow_duplicate)
        entry = plan_of(job)[window.index]
        entry["edit_id"] = (reused or child).edit_id
        entry["reused"] = reused is not None
        job.estimated_cost_usd = reservation(job)  # the window's own edit counts it from now on
        await self.store.save(job)  # before the create leaves: a restart finds the window by its edit
        if reused is not None:
            return reused
        video = VideoInput("path", str(cut), size, shown=child.video, digest=digest)
        holder = f"{job.edit_id}:window:{uuid.uuid4().hex[:8]}"
        now = self.clock()
        await self.store.lease(child.edit_id, holder, now + self.lease_seconds, now)
        try:
            await self.sender.send(child, replace(part, video=video), _quiet)
        except AlephError as exc:  # recorded on the window's edit by the sender
            logger.info("window not sent job=%s window=%s code=%s", job.edit_id, window.index, exc.code)
        finally:
            await self.store.release(child.edit_id, holder)
        return child

    async def _record(self, child: Edit, print_: str, fresh: bool) -> Edit | None:
        """Store the window's edit, or return the same window's earlier edit if it is usable.

        Every render of a window is found by its key, `window:<print>#<attempt>`: attempt 0 first, a new
        attempt only after each earlier one failed or was cancelled. A window whose create may have
        reached the provider (outcome unknown) is never sent again, unless `fresh` (allow_duplicate)."""
        for attempt in itertools.count():
            key = f"{WINDOW_KEY}{print_}#{attempt}"
            earlier = await self.store.get_by_idempotency_key(key)
            if earlier is None:
                child.idempotency_key = key
                try:
                    await self.store.add(child)
                except IdempotencyConflict:  # the same window, recorded by a concurrent call: look again
                    continue
                return None
            if fresh:
                continue
            if earlier.error_code == "submit_outcome_unknown":
                raise OutcomeUnknown(earlier)
            if earlier.status not in ENDED_BADLY and _usable(earlier):
                return earlier
        raise AssertionError("unreachable")  # pragma: no cover

    def _child(self, job: Edit, part: Intake, window: Window, digest: str) -> Edit:
        now = self.clock()
        quote = estimate_cost(job.provider, job.model, window.end - window.start, self.settings.prices)
        options = {k: v for k, v in job.options.items() if k not in JOB_ONLY} | {"video_sha256": digest}
        n = len(plan_of(job))
        return Edit(
            edit_id=f"ed_{uuid.uuid4().hex[:20]}",
            provider=job.provider,
            model=job.model,
            prompt=job.prompt,
            video=f"{job.video} [window {window.index + 1} of {n}: {window.start:g}-{window.end:g} s]",
            options=options,
            owner=job.owner,
            created_at=now,
            updated_at=now,
            next_poll_at=now + self.lease_seconds,  # if the sender dies mid-create, the poller finds it
            estimated_cost_usd=quote.usd,
            cost_basis=cost_basis(quote),
            part_of=job.edit_id,
            window_index=window.index,
            window_start=window.start,
            window_end=window.end,
        )


async def _quiet(fraction: float, message: str) -> None:
    return None


class JobFollower:
    """The poller's part: aggregate a job's windows from the store, and stitch them once all are done."""

    def __init__(
        self, store: EditStore, archiver: Archiver, clock: Callable[[], float], interval: float
    ) -> None:
        self.store = store
        self.archiver = archiver
        self.clock = clock
        self.interval = interval  # a safety net: a window's change makes the job due at once anyway

    async def advance(self, job: Edit) -> None:
        plan = plan_of(job)
        children = [await self.store.get(e["edit_id"]) if e.get("edit_id") else None for e in plan]
        for entry, child in zip(plan, children, strict=True):
            entry["status"] = child.status if child is not None else None
        bad = next(((e, c) for e, c in zip(plan, children, strict=True) if _bad(c)), None)
        if bad is not None:
            job.fail("window_failed", failure_of(job, *bad), self.clock())
            discard_files(job)
            return
        done = [c for c in children if c is not None and c.status == "succeeded"]
        if len(done) == len(plan):
            await self._stitch(job, done)
            return
        shares = [1.0 if c.status == "succeeded" else (c.progress or 0.0) for c in children if c]
        job.status, job.progress = "running", round(sum(shares) / len(plan), 3)
        job.notes = f"{len(done)} of {len(plan)} windows done"
        job.next_poll_at = self.clock() + self.interval

    async def _stitch(self, job: Edit, children: Sequence[Edit]) -> None:
        source = Path(job.options[SOURCE])
        parts: list[Path] = []
        for child in children:
            part = await self._part_file(child, source.parent)
            if part is None:
                job.fail("stitch_failed", f"The video of window edit {child.edit_id} is gone.", self.clock())
                return
            parts.append(part)
        from aleph_mcp.media.windows import Window, stitch

        out = source.with_name("stitched.mp4")
        windows = [Window(e["index"], e["start"], e["end"]) for e in plan_of(job)]
        try:
            await anyio.to_thread.run_sync(stitch, parts, windows, source, out)
        except Exception as exc:  # PyAV raises its own error types
            logger.warning("stitch failed job=%s error=%s", job.edit_id, exc)
            job.fail("stitch_failed", f"The windows could not be stitched together: {exc}", self.clock())
            return
        dest = self.archiver.archive.video_location(job.edit_id)
        await archive_file(out, dest, archive=self.archiver.archive)
        thumbnail = await self.archiver.thumbnail(job, dest)
        job.local_path, job.thumbnail_path = dest, thumbnail
        job.progress = 1.0
        job.notes = f"{len(children)} windows stitched into one video with the original audio"
        job.finish("succeeded", self.clock())
        discard_files(job)

    async def _part_file(self, child: Edit, folder: Path) -> Path | None:
        """A window's archived video as a file here: itself in a local archive, else a copy fetched from
        the object store into the job's folder."""
        archive, location = self.archiver.archive, child.local_path
        if not location or await archive.size(location) is None:
            return None
        local = archive.local_file(location)
        if local is not None:
            return local
        copy = folder / f"window-{child.window_index}.mp4"
        await anyio.to_thread.run_sync(_copy_out, archive, location, copy)
        return copy


def _copy_out(archive: Archive, location: str, dest: Path) -> None:
    """For a worker thread: an archived object's bytes into a local file."""
    with archive.reader(location) as source, dest.open("wb") as out:
        if isinstance(source, str | Path):
            with Path(source).open("rb") as inp:
                shutil.copyfileobj(inp, out, 1024 * 1024)
        else:
            shutil.copyfileobj(source, out, 1024 * 1024)


def _bad(child: Edit | None) -> bool:
    return child is None or child.status in ENDED_BADLY


def discard_files(job: Edit) -> None:
    """Remove the job's working folder (its input copy and cuts) once it has ended: the windows were
    uploaded, or copied into the local provider's own job folders, when they were sent."""
    if job.options.get(SOURCE):
        shutil.rmtree(Path(job.options[SOURCE]).parent, ignore_errors=True)


async def cancel_windows(
    job: Edit, get: Callable[[str], Awaitable[Edit | None]], cancel: Callable[[str], Awaitable[Edit]]
) -> list[str]:
    """Cancel every window of the job that has not ended; returns why some could not be."""
    kept: list[str] = []
    for entry in plan_of(job):
        child = await get(entry["edit_id"]) if entry.get("edit_id") else None
        if child is None or child.is_terminal or child.part_of != job.edit_id:
            continue  # ended, or a window another job rendered first: not this job's to stop
        try:
            await cancel(child.edit_id)
        except CannotCancel as exc:
            kept.append(f"window {entry['index'] + 1}: {exc.message}")
    return kept
