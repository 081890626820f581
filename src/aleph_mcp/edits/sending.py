"""Getting one edit to its provider exactly once: deliver the inputs, send the create, record the outcome.

A create is sent again only when the provider's answer proves no job was started (connection refused, 429
with a short Retry-After). Any other failure is recorded on the edit before the error reaches the caller, so
nothing is left for the poller to guess about.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.to_thread

from aleph_mcp.edits.intake import Intake
from aleph_mcp.edits.journal import TaskJournal
from aleph_mcp.edits.keeping import TaskKeeper
from aleph_mcp.edits.requests import build_request, unknown_outcome
from aleph_mcp.edits.validation import VideoInput
from aleph_mcp.errors import AlephError, ErrorCode, InvalidInput, ProviderError, RateLimited
from aleph_mcp.models import Edit, EditRequest
from aleph_mcp.providers.base import Provider
from aleph_mcp.retry import create_retry_delay
from aleph_mcp.store import EditStore

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], Awaitable[None]]


class Sender:
    def __init__(
        self,
        store: EditStore,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        poll_interval: float = 5.0,
        journal: TaskJournal | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.sleep = sleep  # waits between create attempts
        self.poll_interval = poll_interval
        self.keeper = TaskKeeper(store, journal, clock=clock, sleep=sleep)

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
        await self._create(edit, provider, request)
        await progress(1.0, f"{provider.name} accepted the edit (task {edit.provider_task_id})")

    async def _deliver(self, provider: Provider, item: VideoInput, progress: Progress) -> str:
        """What the provider's create request names: the URL or data URI as given, or a local file
        uploaded through the provider's own route (or inlined as a data URI where that is its route)."""
        if item.kind != "path" or provider.name == "local":
            return item.value
        path = Path(item.value)
        if not provider.capabilities.can_upload:  # validation allowed it, so data URIs are the route
            return await anyio.to_thread.run_sync(_data_uri, path)

        async def uploaded(sent: int, total: int | None) -> None:
            share = sent / total if total else 0.0
            await progress(0.2 + 0.6 * share, f"Uploading {path.name} to {provider.name}: {sent} bytes")

        await progress(0.2, f"Uploading {path.name} to {provider.name}")
        return await provider.upload(path, on_progress=uploaded)

    async def _create(self, edit: Edit, provider: Provider, request: EditRequest) -> None:
        await self.keeper.mark_sending(edit)
        edit.provider_task_id = await self._send_create(edit, provider, request)
        edit.next_poll_at = self.clock() + self.poll_interval
        edit.updated_at = self.clock()
        await self.keeper.keep_task(edit)

    async def _send_create(self, edit: Edit, provider: Provider, request: EditRequest) -> str:
        """One create; sent again only when the answer proves no job was started (never on a timeout)."""
        attempt = 1
        while True:
            try:
                return await provider.submit(request)
            except ProviderError as exc:
                wait = create_retry_delay(exc, attempt)
                if wait is None:
                    raise await self._fail_submit(edit, exc) from exc
                await self.sleep(wait)
                attempt += 1
            except AlephError as exc:  # refused by the adapter before anything was sent
                await self.record_failure(edit, exc.code, exc.message)
                raise
            except Exception as exc:
                # An adapter bug or an unexpected error: whether the create went out is unknown.
                logger.exception("create for %s failed unexpectedly", edit.edit_id)
                await self.record_failure(edit, "submit_outcome_unknown", unknown_outcome(edit, str(exc)))
                raise AlephError(
                    f"Edit {edit.edit_id} failed at submission: {edit.error_message}",
                    code="submit_outcome_unknown",
                ) from exc

    async def _fail_submit(self, edit: Edit, exc: ProviderError, *, not_created: bool = False) -> AlephError:
        """Record the failed submission; returns the error for the caller to raise."""
        code: ErrorCode
        if exc.not_created or not_created:
            code, message = exc.code, exc.message
            if isinstance(exc, RateLimited):
                wait = f"{exc.retry_after:.0f} s" if exc.retry_after else "a minute"
                message += f" The edit was not created; submit it again in about {wait}."
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
