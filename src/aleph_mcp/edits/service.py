"""Use-cases: submit, status, wait, list, cancel. No MCP imports: tools, resources and the CLI call this."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import anyio
import anyio.to_thread
import httpx2

from aleph_mcp.config import Settings
from aleph_mcp.edits.before_after import keep_input, sheet_of
from aleph_mcp.edits.capacity import Capacity, capacity_limits
from aleph_mcp.edits.chains import find_parent, parent_reference
from aleph_mcp.edits.chains import lineage as chain_of
from aleph_mcp.edits.changes import ChangeFeed, ProgressSteps
from aleph_mcp.edits.intake import Intake, take_in
from aleph_mcp.edits.journal import TaskJournal
from aleph_mcp.edits.leases import kept_alive
from aleph_mcp.edits.long_clips import JobStarter, as_job, cancel_windows, discard_files, is_job
from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.edits.requests import DUPLICATE_WINDOW, EditArgs, same_request
from aleph_mcp.edits.sending import Progress, Sender
from aleph_mcp.errors import CannotCancel, EditNotFound, IdempotencyConflict
from aleph_mcp.media.archive import Archive, LocalArchive
from aleph_mcp.media.fetch import FetchPolicy
from aleph_mcp.media.localfiles import sweep
from aleph_mcp.models import Edit, LineageStep
from aleph_mcp.pricing.budget import WINDOW, Budget
from aleph_mcp.pricing.catalog import Quote
from aleph_mcp.providers.base import Provider
from aleph_mcp.store import EditStore, Gate

logger = logging.getLogger(__name__)

# A waiting call is woken by the change feed; it also looks at the store this often, as a heartbeat for
# the client and a safety net for a writer that published nothing (another process with no watcher here).
RECHECK_EVERY = 5.0
STALE_INPUTS = 6 * 3600.0  # private input copies older than this belong to no call in progress


async def _no_progress(fraction: float, message: str) -> None:
    return None


class EditService:
    def __init__(
        self,
        store: EditStore,
        providers: Mapping[str, Provider],
        settings: Settings,
        *,
        owner: str,
        lease_seconds: float = 120.0,
        poll_interval: float = 5.0,
        on_submitted: Callable[[Edit], Awaitable[None]] | None = None,
        on_change: Callable[[Edit], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        http: httpx2.AsyncClient | None = None,
        changes: ChangeFeed | None = None,
        policy: PollPolicy | None = None,
        fetch: FetchPolicy | None = None,
        archive: Archive | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.settings = settings
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.on_submitted = on_submitted
        self.on_change = on_change  # hears a cancel (submits go to on_submitted)
        self.clock = clock
        self.changes = changes if changes is not None else ChangeFeed()
        policy = policy or PollPolicy(
            interval=poll_interval,
            max_interval=max(settings.poll_max_interval, poll_interval),
            edit_timeout=settings.edit_timeout,
        )
        capacity = Capacity(capacity_limits(settings), policy, clock)
        self.journal = TaskJournal(settings.data_dir / "task-journal.jsonl")
        self._sender = Sender(
            store,
            clock=clock,
            capacity=capacity,
            sleep=sleep,
            poll_interval=poll_interval,
            journal=self.journal,
            callback_base=settings.public_url,
        )
        self._jobs = JobStarter(store, self._sender, settings, clock, lease_seconds)
        self.http = http  # for pre-flight probes of input URLs; None skips them
        self.fetch = fetch or FetchPolicy()  # probes never trust a configured origin (see app.fetch_policy)
        self.budget = Budget.from_settings(settings)
        self.archive: Archive = archive or LocalArchive(
            settings.archive_dir
        )  # where a chain's parent video is read

    async def recover(self) -> int:
        """At start: give every journaled task id (one the store could not take) to its edit, and remove
        private input copies a killed process left behind."""
        await anyio.to_thread.run_sync(sweep, self.settings.data_dir / "inputs", STALE_INPUTS)
        await self.archive.sweep_inputs(STALE_INPUTS, self.clock())
        return await self.journal.reconcile(self.store, self.clock())

    def _holder(self, what: str) -> str:
        """A lease holder of its own for one submit or cancel.

        The poller of this same process leases as `owner`; with a shared name it would take a submit
        or cancel in progress for its own claim and barge in.
        """
        return f"{self.owner}:{what}:{uuid.uuid4().hex[:8]}"

    # -- submit -----------------------------------------------------------------------------------
    async def submit(
        self, args: EditArgs, progress: Progress = _no_progress, *, roots: Sequence[Path] = ()
    ) -> tuple[Edit, bool]:
        """Check and start one edit: `start(await check(...))`."""
        return await self.start(await self.check(args, progress, roots=roots), progress)

    async def check(
        self, args: EditArgs, progress: Progress = _no_progress, *, roots: Sequence[Path] = ()
    ) -> Intake:
        """The intake: validate, probe, quote; sends and stores nothing. A chain's parent (`from_edit`, or
        video=aleph://edits/{id}/video) must be the caller's own finished edit."""
        parent_id = parent_reference(args.video, args.from_edit)
        parent = None
        if parent_id is not None:
            parent = await find_parent(self.store, self.archive, parent_id, args.owner)
        return await take_in(
            args,
            self.providers,
            self.settings,
            http=self.http,
            fetch=self.fetch,
            progress=progress,
            roots=roots,
            parent=parent,
        )

    async def compare_sheet(self, edit: Edit) -> str | None:
        """The finished edit's before/after sheet's location in the archive (before_after.py), where one
        was made."""
        return await sheet_of(self.archive, edit)

    async def lineage(self, edit: Edit) -> list[LineageStep]:
        """The chain back to the original input, oldest first (chains.py); empty for a first edit."""
        return await chain_of(self.store, edit)

    async def start(self, intake: Intake, progress: Progress = _no_progress) -> tuple[Edit, bool]:
        """Record the edit and send its one create. Returns (edit, matched_earlier_request)."""
        try:
            edit, repeat = await self._start(intake, progress)
            logger.info(
                "edit %s edit_id=%s provider=%s status=%s",
                "repeated" if repeat else "started",
                edit.edit_id,
                edit.provider,
                edit.status,
            )
            return edit, repeat
        finally:
            intake.discard()  # sent, refused or a repeat: the private input copies are read no more

    async def _start(self, intake: Intake, progress: Progress) -> tuple[Edit, bool]:
        edit = intake.new_edit(now=self.clock(), lease_seconds=self.lease_seconds)
        if intake.windows:
            as_job(edit, intake)
        # The budget is checked inside the insert: across processes, only edits that fit get stored. A
        # whole-clip job is checked for all its windows at once.
        count = max(1, len(intake.windows))
        budget = self.budget
        gate = budget.gate(intake.estimate, edit.created_at, edit.owner, count) if budget.active else None
        existing = await self._record(intake.args, edit, intake.fingerprint, gate)
        if existing is not None:
            return existing, True
        holder = self._holder("submit")
        now = self.clock()
        await self.store.lease(edit.edit_id, holder, now + self.lease_seconds, now)
        try:
            # An upload can outlast one lease; a lapsed lease would let a poller declare the
            # edit's outcome unknown while it is still being sent.
            async with self._kept(edit.edit_id, holder, stop_if_lost=False):
                if intake.windows:
                    await self._jobs.send(edit, intake, progress)
                else:
                    await self._sender.send(edit, intake, progress)
                    await keep_input(self.archive, edit, intake.video)  # for its before/after sheet
        finally:
            await self.store.release(edit.edit_id, holder)
        if self.on_submitted is not None:
            await self.on_submitted(edit)
        return edit, False

    def _kept(self, edit_id: str, holder: str, *, stop_if_lost: bool) -> AbstractAsyncContextManager[None]:
        return kept_alive(
            self.store,
            edit_id,
            holder,
            lease_seconds=self.lease_seconds,
            clock=self.clock,
            stop_if_lost=stop_if_lost,
        )

    async def check_budget(self, estimate: Quote, owner: str | None = None, count: int = 1) -> None:
        """Raise BudgetExceeded if an edit quoted `estimate` (covering `count` billable edits) would not fit
        now (read-only; submit checks again, atomically with its insert)."""
        if not self.budget.active:
            return
        now = self.clock()
        gate = self.budget.gate(estimate, now, owner, count)
        own = await self.store.spend_since(gate.since, gate.sums_owner) if gate.sums_owner is not None else []
        if not gate.admits(await self.store.spend_since(gate.since), own):  # the sums leave it open
            gate.check(await self.store.created_since(gate.since))

    async def budget_status(self, estimate: Quote, owner: str | None = None, count: int = 1) -> str | None:
        if not self.budget.active:
            return None
        now = self.clock()
        recent = await self.store.created_since(now - WINDOW)
        return self.budget.status(estimate, recent, now, owner, count)

    async def _record(
        self, args: EditArgs, edit: Edit, request_print: str, gate: Gate | None = None
    ) -> Edit | None:
        """Store the new edit; or return the earlier edit this call repeats: the one with its
        idempotency_key, else an identical request of the last DUPLICATE_WINDOW seconds that has not
        failed (unless the caller allows a duplicate). Look-up and insert are one atomic store step,
        so two identical calls at once (in one process or two) start one edit."""
        key = args.stored_key
        if key:
            existing = await self.store.get_by_idempotency_key(key)
            if existing is not None:
                return same_request(existing, edit)
        # A key names the request explicitly: a fresh key asks for a new edit, as does allow_duplicate.
        window = 0.0 if key or args.allow_duplicate else DUPLICATE_WINDOW
        try:
            return await self.store.add_unless_duplicate(edit, request_print, window, gate)
        except IdempotencyConflict:
            # A concurrent call with the same key won the race: that one is the request.
            existing = await self.store.get_by_idempotency_key(key) if key else None
            if existing is None:
                raise
            return same_request(existing, edit)

    # -- read -------------------------------------------------------------------------------------
    async def get(self, edit_id: str, owner: str | None = None) -> Edit:
        """The edit; with `owner`, only that owner's: another's edit is answered exactly like an unknown
        id, so nothing shows that it exists."""
        edit = await self.store.get(edit_id)
        if edit is None or (owner is not None and edit.owner != owner):
            raise EditNotFound(f"No edit {edit_id!r}. Call list_edits to see the edits this server knows.")
        return edit

    async def wait_for_end(
        self,
        edit_id: str,
        wait_seconds: float,
        progress: Progress = _no_progress,
        *,
        owner: str | None = None,
    ) -> Edit:
        """Return once the edit has ended (succeeded, failed, cancelled) or `wait_seconds` pass, reporting
        each status change and progress step meanwhile. Woken by the change feed, not by polling."""
        if wait_seconds <= 0:
            return await self.get(edit_id, owner)
        with self.changes.watching(edit_id) as watch:
            edit = await self.get(edit_id, owner)
            steps = ProgressSteps(progress, edit)
            with anyio.move_on_after(wait_seconds) as window:
                while not edit.is_terminal:
                    await watch.wait(RECHECK_EVERY)
                    edit = await self.get(edit_id)
                    await steps.report(edit)
            if window.cancel_called:  # the time ran out, perhaps mid-read: answer with the latest
                edit = await self.get(edit_id)
        return edit

    async def list(
        self,
        *,
        status: str | None,
        provider: str | None,
        limit: int,
        cursor: str | None,
        owner: str | None = None,
        parent: str | None = None,
    ) -> tuple[list[Edit], str | None]:
        return await self.store.list_edits(
            status=status, provider=provider, limit=limit, cursor=cursor, owner=owner, parent=parent
        )

    # -- cancel -----------------------------------------------------------------------------------
    async def cancel(self, edit_id: str, owner: str | None = None) -> Edit:
        """Cancel at the provider; an edit still waiting for capacity was never sent, so it just ends. A
        whole-clip job cancels each of its windows that can be cancelled, then ends."""
        found = await self.get(edit_id, owner)
        if is_job(found):
            return await self._cancel_job(found)
        self._cancellable(found)
        holder = self._holder("cancel")
        await self._lease_for_cancel(edit_id, holder)
        try:
            edit = await self.get(edit_id)  # as it is now that no one else works on it
            provider = self._cancellable(edit)
            if provider is not None:
                assert edit.provider_task_id is not None
                await provider.cancel(edit.provider_task_id)
            edit.cancel(self.clock())
            if provider is None:
                edit.error_message = "Cancelled on request before it was sent; nothing was billed."
            await self.store.save(edit)
        finally:
            await self.store.release(edit_id, holder)
        if edit.part_of is not None:  # a window of a whole-clip job: the job ends with it, now
            await self.store.poll_soon(edit.part_of, self.clock())
        self.changes.publish(edit)
        if self.on_change is not None:
            await self.on_change(edit)
        return edit

    async def _cancel_job(self, job: Edit) -> Edit:
        if job.is_terminal:
            raise CannotCancel(
                f"Edit {job.edit_id} has already ended ({job.status}); there is nothing to cancel."
            )
        holder = self._holder("cancel")
        await self._lease_for_cancel(job.edit_id, holder)  # no stitch starts meanwhile
        try:
            kept = await cancel_windows(job, self.store.get, self.cancel)
            job = await self.get(job.edit_id)
            job.cancel(self.clock())
            discard_files(job)
            if kept:
                job.error_message = "Cancelled on request; these windows run to their end: " + "; ".join(kept)
            await self.store.save(job)
        finally:
            await self.store.release(job.edit_id, holder)
        self.changes.publish(job)
        if self.on_change is not None:
            await self.on_change(job)
        return job

    def _cancellable(self, edit: Edit) -> Provider | None:
        """The provider to cancel the edit's job at; None when there is no job yet (it waits for capacity).
        Raises CannotCancel, saying why, for an edit that cannot be cancelled now."""
        edit_id = edit.edit_id
        if edit.is_terminal:
            raise CannotCancel(
                f"Edit {edit_id} has already ended ({edit.status}); there is nothing to cancel."
            )
        if edit.waiting_for_capacity:
            return None
        provider = self.providers.get(edit.provider)
        if provider is None:
            raise CannotCancel(
                f"This server has no {edit.provider} key, so it cannot cancel edit {edit_id}. Set "
                f"ALEPH_MCP_{edit.provider.upper()}_API_KEY, or cancel it in {edit.provider}'s dashboard."
            )
        if not provider.capabilities.can_cancel:
            raise CannotCancel(
                f"{edit.provider} has no cancel API: edit {edit_id} will run to its end and may "
                "be billed. Only krea and runway edits (and local ones) can be cancelled."
            )
        if edit.provider_task_id is None:
            raise CannotCancel(
                f"Edit {edit_id} is still being sent to {edit.provider}; try again in a moment."
            )
        return provider

    async def _lease_for_cancel(self, edit_id: str, holder: str) -> None:
        """Wait briefly for a poller (here or in another process) to let go of the edit."""
        with anyio.move_on_after(10):
            while True:
                now = self.clock()
                if await self.store.lease(edit_id, holder, now + self.lease_seconds, now):
                    return
                await anyio.sleep(0.2)
        raise CannotCancel(
            f"Edit {edit_id} is busy (being polled or downloaded); try again in a few seconds."
        )
