"""Use-cases: submit, status, wait, list, cancel. No MCP imports: tools, resources and the CLI call this."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import anyio
import anyio.to_thread
import httpx2

from aleph_mcp.config import Settings
from aleph_mcp.edits.preflight import inspect_input, probe_file
from aleph_mcp.edits.requests import (
    DUPLICATE_WINDOW,
    Checked,
    EditArgs,
    fingerprint,
    new_edit,
    same_request,
    validate_args,
)
from aleph_mcp.edits.sending import Progress, Sender
from aleph_mcp.edits.validation import input_limit
from aleph_mcp.errors import (
    BudgetExceeded,
    CannotCancel,
    EditNotFound,
    InvalidInput,
)
from aleph_mcp.models import Edit
from aleph_mcp.pricing.budget import WINDOW, Budget, cost_basis, estimate_cost
from aleph_mcp.pricing.catalog import Quote
from aleph_mcp.providers.base import Provider
from aleph_mcp.store.sqlite import EditStore, Gate

logger = logging.getLogger(__name__)

WAIT_STEP = 0.25  # how often wait_for_change looks at the store
PROGRESS_EVERY = 1.0


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
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        http: httpx2.AsyncClient | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.settings = settings
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.on_submitted = on_submitted
        self.clock = clock
        self._sender = Sender(store, clock=clock, sleep=sleep, poll_interval=poll_interval)
        self.http = http  # for pre-flight probes of input URLs; None skips them
        self.budget = Budget.from_settings(settings)

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
        """Validate, probe, record, send one create. Returns (edit, matched_earlier_request).

        `roots` are directories the MCP client declared; local files inside them are allowed too.
        """
        c = await self.check(args, progress, roots=roots)
        edit = new_edit(
            args, c.name, c.model, c.video, c.reference, now=self.clock(), lease_seconds=self.lease_seconds
        )
        edit.warnings = c.warnings
        edit.estimated_cost_usd, edit.cost_basis = c.estimate.usd, cost_basis(c.estimate)
        # The budget is checked inside the insert: across processes, only edits that fit get stored.
        gate = self.budget.gate(c.estimate, edit.created_at) if self.budget.active else None
        existing = await self._record(
            args, edit, fingerprint(args, c.name, c.model, c.video, c.reference), gate
        )
        if existing is not None:
            return existing, True
        holder = self._holder("submit")
        now = self.clock()
        await self.store.lease(edit.edit_id, holder, now + self.lease_seconds, now)
        try:
            async with anyio.create_task_group() as tg:
                # An upload can outlast one lease; a lapsed lease would let a poller declare the
                # edit's outcome unknown while it is still being sent.
                tg.start_soon(self._keep_lease, edit.edit_id, holder)
                await self._sender.send(edit, c.provider, args, c.video, c.reference, progress)
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from group.exceptions[0].__cause__
            raise
        finally:
            await self.store.release(edit.edit_id, holder)
        if self.on_submitted is not None:
            await self.on_submitted(edit)
        return edit, False

    async def check(
        self, args: EditArgs, progress: Progress = _no_progress, *, roots: Sequence[Path] = ()
    ) -> Checked:
        """Everything before sending: validate, probe the input (its length prices per-second models),
        quote the cost."""
        name, provider, model, video, reference = validate_args(args, self.providers, self.settings, roots)
        await progress(0.02, "Checking the input video")
        limit = input_limit(video, provider.capabilities, name)
        warnings, seconds = await inspect_input(video, name, model, limit, self.http)
        estimate = estimate_cost(name, model, seconds, self.settings.prices)
        return Checked(name, provider, model, video, reference, warnings, estimate)

    async def quick_quote(self, args: EditArgs, *, roots: Sequence[Path] = ()) -> Quote:
        """The quote without network I/O (for asking before the edit): a local file's length is read,
        a URL's is not, so per-second models are quoted for the most they process."""
        name, _, model, video, _ = validate_args(args, self.providers, self.settings, roots)
        seconds = (await probe_file(Path(video.value))).duration if video.kind == "path" else None
        return estimate_cost(name, model, seconds, self.settings.prices)

    async def check_budget(self, estimate: Quote) -> None:
        """Raise BudgetExceeded if an edit quoted `estimate` would not fit now (read-only; submit checks
        again, atomically with its insert)."""
        if self.budget.active:
            now = self.clock()
            self.budget.check(estimate, await self.store.created_since(now - WINDOW), now)

    async def budget_status(self, estimate: Quote) -> str | None:
        if not self.budget.active:
            return None
        now = self.clock()
        return self.budget.status(estimate, await self.store.created_since(now - WINDOW), now)

    async def _record(
        self, args: EditArgs, edit: Edit, request_print: str, gate: Gate | None = None
    ) -> Edit | None:
        """Store the new edit; or return the earlier edit this call repeats: the one with its
        idempotency_key, else an identical request of the last DUPLICATE_WINDOW seconds that has not
        failed (unless the caller allows a duplicate). Look-up and insert are one atomic store step,
        so two identical calls at once (in one process or two) start one edit."""
        key = args.idempotency_key
        if key:
            existing = await self.store.get_by_idempotency_key(key)
            if existing is not None:
                return same_request(existing, edit)
        # A key names the request explicitly: a fresh key asks for a new edit, as does allow_duplicate.
        window = 0.0 if key or args.allow_duplicate else DUPLICATE_WINDOW
        try:
            return await self.store.add_unless_duplicate(edit, request_print, window, gate)
        except BudgetExceeded:
            raise
        except InvalidInput:
            # A concurrent call with the same key won the race: that one is the request.
            existing = await self.store.get_by_idempotency_key(key) if key else None
            if existing is None:
                raise
            return same_request(existing, edit)

    async def _keep_lease(self, edit_id: str, holder: str) -> None:
        while True:
            await anyio.sleep(self.lease_seconds / 3)
            now = self.clock()
            try:
                await self.store.lease(edit_id, holder, now + self.lease_seconds, now)
            except Exception:
                logger.exception("lease renewal failed edit_id=%s", edit_id)

    # -- read -------------------------------------------------------------------------------------
    async def get(self, edit_id: str) -> Edit:
        edit = await self.store.get(edit_id)
        if edit is None:
            raise EditNotFound(f"No edit {edit_id!r}. Call list_edits to see the edits this server knows.")
        return edit

    async def wait_for_change(
        self, edit_id: str, wait_seconds: float, progress: Progress = _no_progress
    ) -> Edit:
        """Return as soon as the edit changes visibly, it ends, or `wait_seconds` pass."""
        edit = await self.get(edit_id)
        seen = (edit.status, edit.updated_at)
        start = reported = anyio.current_time()  # monotonic: `clock` is for timestamps
        while not edit.is_terminal:
            remaining = start + wait_seconds - anyio.current_time()
            if remaining <= 0:
                break
            await anyio.sleep(min(WAIT_STEP, remaining))
            edit = await self.get(edit_id)
            if (edit.status, edit.updated_at) != seen:
                break
            now = anyio.current_time()
            if now - reported >= PROGRESS_EVERY:
                reported, waited = now, now - start
                await progress(min(waited / wait_seconds, 0.99), f"{edit.status}; waited {waited:.0f} s")
        return edit

    async def list(
        self, *, status: str | None, provider: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Edit], str | None]:
        return await self.store.list_edits(status=status, provider=provider, limit=limit, cursor=cursor)

    # -- cancel -----------------------------------------------------------------------------------
    async def cancel(self, edit_id: str) -> Edit:
        edit = await self.get(edit_id)
        if edit.is_terminal:
            raise CannotCancel(
                f"Edit {edit_id} has already ended ({edit.status}); there is nothing to cancel."
            )
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
        holder = self._holder("cancel")
        await self._lease_for_cancel(edit_id, holder)
        try:
            edit = await self.get(edit_id)
            if edit.is_terminal:  # it ended while the poller held it
                raise CannotCancel(
                    f"Edit {edit_id} has already ended ({edit.status}); there is nothing to cancel."
                )
            assert edit.provider_task_id is not None
            await provider.cancel(edit.provider_task_id)
            now = self.clock()
            edit.status, edit.error_code = "cancelled", "cancelled"
            edit.error_message = "Cancelled on request."
            edit.finished_at = edit.updated_at = now
            edit.next_poll_at = None
            await self.store.save(edit)
        finally:
            await self.store.release(edit_id, holder)
        return edit

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
