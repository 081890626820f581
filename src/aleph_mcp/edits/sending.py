"""Getting one edit to its provider exactly once: deliver the inputs, send the create, record the outcome.

A create is sent again only when the provider's answer proves no job was started: at once after a refused
connection, or later, from the poller, after a 429 (the edit waits for capacity, see capacity.py). Any other
failure is recorded on the edit before the error reaches the caller, so nothing is left for the poller to
guess about.
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import anyio
import anyio.to_thread

from aleph_mcp.edits.capacity import Capacity, is_waiting_note
from aleph_mcp.edits.intake import Intake
from aleph_mcp.edits.journal import TaskJournal
from aleph_mcp.edits.keeping import TaskKeeper
from aleph_mcp.edits.requests import build_request, token_hash, unknown_outcome
from aleph_mcp.edits.validation import VideoInput
from aleph_mcp.errors import AlephError, ErrorCode, InvalidInput, ProviderError
from aleph_mcp.models import Edit, EditRequest
from aleph_mcp.providers.base import Provider
from aleph_mcp.retry import create_retry_delay, waits_for_capacity
from aleph_mcp.store import EditStore

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], Awaitable[None]]


class Sender:
    def __init__(
        self,
        store: EditStore,
        *,
        clock: Callable[[], float],
        capacity: Capacity,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        poll_interval: float = 5.0,
        journal: TaskJournal | None = None,
        callback_base: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.capacity = capacity
        self.sleep = sleep  # waits between create attempts
        self.poll_interval = poll_interval
        self.keeper = TaskKeeper(store, journal, clock=clock, sleep=sleep)
        self.callback_base = callback_base.rstrip("/") if callback_base else None  # ALEPH_MCP_PUBLIC_URL

    async def send(self, edit: Edit, intake: Intake, progress: Progress) -> None:
        provider = intake.provider
        await progress(0.1, f"Sending the edit to {provider.name}")
        try:
            delivered = await self._deliver(provider, intake.video, progress)
            reference = intake.reference
            delivered_ref = (await self._deliver(provider, reference, progress)) if reference else None
            request = build_request(intake.args, edit.model, delivered, delivered_ref)
        except ProviderError as exc:  # an upload starts no paid job, whatever its error says
            raise await self._fail_submit(edit, exc, not_created=True) from exc
        except AlephError as exc:  # the adapter refused the file before sending it (size, type)
            await self.record_failure(edit, exc.code, exc.message)
            raise
        except OSError as exc:  # the file went away or became unreadable after validation
            message = f"Could not read the input file for upload: {exc.strerror or exc}."
            await self.record_failure(edit, InvalidInput.code, message)
            raise InvalidInput(message) from None
        await self.dispatch(edit, provider, request)
        if edit.provider_task_id is not None:
            await progress(1.0, f"{provider.name} accepted the edit (task {edit.provider_task_id})")
        elif not edit.is_terminal:
            await progress(1.0, edit.notes or f"Waiting for {provider.name} capacity")

    async def _deliver(self, provider: Provider, item: VideoInput, progress: Progress) -> str:
        """What the provider's create request names: the URL or data URI as given, or a local file
        uploaded through the provider's own route (or inlined as a data URI where that is its route)."""
        if item.kind != "path" or provider.capabilities.reads_files_in_place:
            return item.value
        path = Path(item.value)
        if not provider.capabilities.can_upload:  # validation allowed it, so data URIs are the route
            return await anyio.to_thread.run_sync(_data_uri, path)

        async def uploaded(sent: int, total: int | None) -> None:
            share = sent / total if total else 0.0
            await progress(0.2 + 0.6 * share, f"Uploading {path.name} to {provider.name}: {sent} bytes")

        await progress(0.2, f"Uploading {path.name} to {provider.name}")
        return await provider.upload(path, on_progress=uploaded)

    async def dispatch(self, edit: Edit, provider: Provider, request: EditRequest) -> None:
        """Send the create if the provider has room, else leave the edit waiting for capacity (capacity.py).

        The claim is recorded in the store before the create leaves, and a create in flight is seen through
        to its recorded answer even when the process is shutting down, so a clean stop leaves no edit whose
        outcome is unknown (a crash still can; the claim then keeps it from being sent twice).
        """
        with anyio.CancelScope(shield=True):
            now = self.clock()
            limit = self.capacity.limit(provider.name)
            claim = await self.keeper.claim(edit, provider.name, limit, now)
            if claim == "gone":  # ended, or claimed by someone else meanwhile: nothing for us to send
                logger.warning("create not sent edit_id=%s reason=already_claimed_or_ended", edit.edit_id)
                return
            if claim == "full":
                self.capacity.hold(edit, request, None)
                await self.store.save(edit)
                return
            edit.create_sent_at, edit.submit_after = now, None
            sent = await self._with_callback(edit, provider, request)
            wait = await self._attempt(edit, provider, request, sent, attempt=1)
        attempt = 1
        while wait is not None:
            await self.sleep(wait)
            attempt += 1
            with anyio.CancelScope(shield=True):
                wait = await self._attempt(edit, provider, request, sent, attempt)

    async def _with_callback(self, edit: Edit, provider: Provider, request: EditRequest) -> EditRequest:
        """The create with a webhook URL where the provider calls one and this server is reachable
        (ALEPH_MCP_PUBLIC_URL). Its secret is stored only as a hash; without a stored hash, no webhook."""
        if not (self.callback_base and provider.capabilities.webhooks):
            return request
        token = secrets.token_urlsafe(32)
        edit.webhook_token_hash = token_hash(token)
        try:
            await self.store.save(edit)
        except Exception as exc:  # polling alone still follows the edit
            logger.warning("webhook not set edit_id=%s reason=%s", edit.edit_id, type(exc).__name__)
            edit.webhook_token_hash = None
            return request
        return replace(request, callback_url=f"{self.callback_base}/webhooks/{provider.name}/{token}")

    async def _attempt(
        self, edit: Edit, provider: Provider, request: EditRequest, sent: EditRequest, attempt: int
    ) -> float | None:
        """Send the create once and record the answer; returns the seconds to wait before sending it again
        (only when the answer proves no job was started, never on a timeout), else None."""
        try:
            task_id = await provider.submit(sent)  # `request` (no webhook secret) is what waits, if anything
        except ProviderError as exc:
            if waits_for_capacity(exc):
                held = self.capacity.hold(edit, request, exc)
                await self.store.save(edit)
                if held:
                    return None
                message = f"Edit {edit.edit_id} failed: {edit.error_message}"
                raise AlephError(message, code="capacity_timeout") from None
            wait = create_retry_delay(exc, attempt)
            if wait is None:
                raise await self._fail_submit(edit, exc) from exc
            return wait
        except AlephError as exc:  # refused by the adapter before anything was sent
            await self.record_failure(edit, exc.code, exc.message)
            raise
        except Exception as exc:
            # An adapter bug or an unexpected error: whether the create went out is unknown.
            logger.exception("create failed unexpectedly edit_id=%s", edit.edit_id)
            await self.record_failure(edit, "submit_outcome_unknown", unknown_outcome(edit, str(exc)))
            raise AlephError(
                f"Edit {edit.edit_id} failed at submission: {edit.error_message}",
                code="submit_outcome_unknown",
            ) from exc
        await self._accepted(edit, task_id)
        return None

    async def _accepted(self, edit: Edit, task_id: str) -> None:
        edit.provider_task_id, edit.pending_request, edit.submit_after = task_id, None, None
        edit.poll_failures = 0
        if is_waiting_note(edit.notes):
            edit.notes = None
        edit.next_poll_at = self.clock() + self.poll_interval
        edit.updated_at = self.clock()
        await self.keeper.keep_task(edit)

    async def _fail_submit(self, edit: Edit, exc: ProviderError, *, not_created: bool = False) -> AlephError:
        """Record the failed submission; returns the error for the caller to raise."""
        code: ErrorCode
        if exc.not_created or not_created:
            code, message = exc.code, exc.message
        else:
            code, message = "submit_outcome_unknown", unknown_outcome(edit, exc.message)
        await self.record_failure(edit, code, message)
        return AlephError(f"Edit {edit.edit_id} failed at submission: {message}", code=code)

    async def record_failure(self, edit: Edit, code: ErrorCode, message: str) -> None:
        edit.fail(code, message, self.clock())
        await self.store.save(edit)


def _data_uri(path: Path) -> str:
    """A small local file as a data URI (bounded by the provider's data-URI limit, checked earlier)."""
    mime = {".mov": "video/quicktime", ".webm": "video/webm"}.get(path.suffix.lower(), "video/mp4")
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"
