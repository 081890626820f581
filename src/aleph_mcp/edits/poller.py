"""The background poller: follows every unfinished edit to its end and archives the result.

`poll_once()` is one pass over due edits (what tests drive); `run()` keeps starting due edits, so one slow
download never holds up the status reads of the others. The poller never imports
`mcp`: it reports changes through the `on_change` hook, which the server turns into notifications.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager

import anyio
import httpx2

from aleph_mcp.edits.archiving import Archiver
from aleph_mcp.edits.capacity import Capacity, request_from_json
from aleph_mcp.edits.changes import visible
from aleph_mcp.edits.journal import TaskJournal, apply
from aleph_mcp.edits.leases import kept_alive
from aleph_mcp.edits.poll_messages import orphan_failure, timeout_message, write_failed_message
from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.edits.sending import Sender
from aleph_mcp.errors import (
    AlephError,
    ArchiveWriteFailed,
    ErrorCode,
    OutputExpired,
    OutputNotVideo,
    ProviderError,
    TransientProviderError,
    UnsafeURL,
)
from aleph_mcp.media.archive import Archive
from aleph_mcp.media.fetch import FetchPolicy
from aleph_mcp.models import Edit, EditStatus, RemoteStatus
from aleph_mcp.pricing.reported import record_reported_cost
from aleph_mcp.providers.base import Provider
from aleph_mcp.store import EditStore

logger = logging.getLogger(__name__)

OnChange = Callable[[Edit], Awaitable[None]]
MAX_EXPIRED_RETRIES = 3


class Poller:
    def __init__(
        self,
        store: EditStore,
        providers: Mapping[str, Provider],
        archive: Archive,
        http: httpx2.AsyncClient,
        *,
        owner: str,
        policy: PollPolicy | None = None,
        on_change: OnChange | None = None,
        clock: Callable[[], float] = time.time,
        limits: Mapping[str, int] | None = None,
        fetch: FetchPolicy | None = None,
        journal: TaskJournal | None = None,
        callback_base: str | None = None,
    ) -> None:
        self.store = store
        self.providers = providers
        self.archive = archive
        self.http = http
        self.owner = owner
        self.policy = policy or PollPolicy()
        self.on_change = on_change
        self.clock = clock
        self.capacity = Capacity(limits or {}, self.policy, clock)
        # Sends the creates of edits that waited for capacity, under this poller's lease on each.
        self._sender = Sender(
            store,
            clock=clock,
            capacity=self.capacity,
            poll_interval=self.policy.interval,
            journal=journal,
            callback_base=callback_base,
        )
        self._limiter = anyio.CapacityLimiter(self.policy.concurrency)
        self._wake = anyio.Event()
        # Result URLs found expired, per edit. Kept apart from poll_failures, which every good status
        # read resets (and the fresh read is exactly what follows an expired URL).
        self._expired: dict[str, int] = {}
        self._busy: set[str] = set()  # edits run() is working on or waiting to work on
        self.last_pass: float | None = None  # anyio's clock at the start of run()'s latest pass
        self._poked: set[str] = set()  # edits a webhook asked to check again
        # Under the default policy only public https URLs are fetched (no configured origin is trusted).
        self.archiver = Archiver(archive, http, providers, fetch or FetchPolicy())
        self._write_failed: dict[str, str] = {}  # edits whose result could not be written, and why
        self.journal = journal

    def poke(self, edit_id: str) -> None:
        """Check this edit again now (its provider called its webhook): at once if it is not being
        checked, else right after the check in progress, whose answer may predate the call."""
        self._poked.add(edit_id)
        self.wake()

    def wake(self) -> None:
        """Run the next pass now (a new edit was submitted)."""
        self._wake.set()

    async def run(self, tick: float = 1.0) -> None:
        async with anyio.create_task_group() as tg:
            while True:
                self.last_pass = anyio.current_time()  # what a health check reads: the loop is alive
                try:
                    for edit in await self.store.due_for_poll(self.clock(), self.policy.concurrency * 8):
                        if edit.edit_id not in self._busy:
                            self._busy.add(edit.edit_id)
                            tg.start_soon(self._tracked, edit.edit_id)
                except Exception:
                    logger.exception("poll pass failed; continuing")
                with anyio.move_on_after(tick):
                    await self._wake.wait()
                self._wake = anyio.Event()

    async def _tracked(self, edit_id: str) -> None:
        try:
            await self._guarded(edit_id)
        except Exception:  # a store error while leasing must not end run() for every other edit
            logger.exception("poll failed edit_id=%s", edit_id)
        finally:
            self._busy.discard(edit_id)

    async def poll_once(self) -> int:
        """Advance every due edit once; returns how many edits this pass worked on."""
        due = await self.store.due_for_poll(self.clock(), limit=self.policy.concurrency * 8)
        async with anyio.create_task_group() as tg:
            for edit in due:
                tg.start_soon(self._guarded, edit.edit_id)
        return len(due)

    async def _guarded(self, edit_id: str) -> None:
        async with self._limiter:
            now = self.clock()
            if not await self.store.lease(edit_id, self.owner, now + self.policy.lease_seconds, now):
                return  # another process has it
            try:
                # A long download renews the lease; should it be lost anyway, the work stops there.
                async with self._kept(edit_id):
                    edit = await self.store.get(edit_id)
                    # Still due? Another process may have read it between our look-up and our lease.
                    if edit is not None and not edit.is_terminal and self._due(edit):
                        await self._advance(edit)
            except Exception:
                logger.exception("poll failed edit_id=%s", edit_id)
                await self._defer(edit_id)
            finally:
                await self.store.release(edit_id, self.owner)

    def _due(self, edit: Edit) -> bool:
        return edit.next_poll_at is not None and edit.next_poll_at <= self.clock()

    def _kept(self, edit_id: str) -> AbstractAsyncContextManager[None]:
        policy = self.policy
        return kept_alive(
            self.store,
            edit_id,
            self.owner,
            lease_seconds=policy.lease_seconds,
            clock=self.clock,
            stop_if_lost=True,
        )

    async def _defer(self, edit_id: str) -> None:
        """After an unexpected error, back off as after a transient one (not retry on every pass)."""
        try:
            edit = await self.store.get(edit_id)
            if edit is not None and not edit.is_terminal:
                edit.poll_failures += 1
                edit.next_poll_at = self.clock() + self.policy.backoff(edit.poll_failures, None)
                await self.store.save(edit)
        except Exception:
            logger.exception("reschedule failed edit_id=%s", edit_id)

    async def _advance(self, edit: Edit) -> None:
        before = visible(edit)
        if edit.waiting_for_capacity:
            await self._submit_waiting(edit)
        elif edit.provider_task_id is None and not self._recovered(edit):
            self._fail(edit, *orphan_failure(edit))  # its submitter held the lease and is gone
        elif edit.output_url and not edit.local_path:
            await self._archive(edit)
        else:
            await self._read_status(edit)
        # The deadline is checked after one last look, so a result that arrived in time is not lost.
        if not edit.is_terminal and self.clock() - edit.created_at > self.policy.edit_timeout:
            if edit.waiting_for_capacity:
                self.capacity.give_up(edit)
            else:
                unwritten = self._write_failed.get(edit.edit_id)
                has_key = edit.provider in self.providers
                timeout = ("timeout", timeout_message(edit, self.policy.edit_timeout, has_key))
                self._fail(edit, *(("archive_write_failed", unwritten) if unwritten else timeout))
        if edit.edit_id in self._poked:
            self._poked.discard(edit.edit_id)
            if not edit.is_terminal:
                edit.next_poll_at = self.clock()
        await self._save(edit, changed=visible(edit) != before)

    def _recovered(self, edit: Edit) -> bool:
        """The task id its submitter could not store, from the task journal."""
        entry = self.journal.lookup(edit.edit_id) if self.journal is not None else None
        return entry is not None and apply(edit, entry, self.clock())

    async def _submit_waiting(self, edit: Edit) -> None:
        """Send the create of an edit that waited for capacity (once: the sender claims it first)."""
        provider = self.providers.get(edit.provider)
        if self.capacity.expired(edit):
            self.capacity.give_up(edit)
        elif provider is None:  # another process on this data dir may hold the key: leave it to that one
            edit.next_poll_at = edit.submit_after = self.clock() + self.policy.max_interval
        elif edit.pending_request is not None:
            try:
                await self._sender.dispatch(edit, provider, request_from_json(edit.pending_request))
            except AlephError as exc:  # already recorded on the edit by the sender
                logger.info("waiting edit failed at submission edit_id=%s code=%s", edit.edit_id, exc.code)

    async def _read_status(self, edit: Edit) -> None:
        provider = self.providers.get(edit.provider)
        if provider is None:
            # Another server process sharing this data dir may hold the key: leave the edit to it.
            edit.next_poll_at = self.clock() + self.policy.max_interval
            return
        assert edit.provider_task_id is not None
        try:
            remote = await provider.poll(edit.provider_task_id)
        except TransientProviderError as exc:
            self._retry_later(edit, exc)
            return
        except ProviderError as exc:
            self._fail(edit, exc.code, exc.message)
            return
        edit.polls += 1
        edit.poll_failures = 0
        self._apply(edit, remote)
        if edit.output_url and not edit.local_path:
            # Kept before the download, which can take a while: should this process die meanwhile, the
            # next one starts from the URL. Announced once the video is archived.
            await self.store.save(edit)
            await self._archive(edit)

    def _apply(self, edit: Edit, remote: RemoteStatus) -> None:
        edit.notes = remote.notes or edit.notes
        record_reported_cost(edit, remote)
        if remote.status == "succeeded":
            # Stays "running" until the video is safely in the archive.
            edit.status, edit.progress = "running", 1.0
            edit.output_url, edit.thumbnail_url = remote.output_url, remote.thumbnail_url
        elif remote.status in ("failed", "cancelled"):
            code = remote.error_code or ("provider_failed" if remote.status == "failed" else "cancelled")
            self._finish(
                edit, remote.status, code, remote.error_message or f"The provider reports {remote.status}."
            )
        else:
            edit.status = remote.status
            if remote.progress is not None:
                edit.progress = max(0.0, min(1.0, remote.progress))
            # With a webhook the provider says when it ends; polling is the safety net for a lost one.
            slow = edit.webhook_token_hash is not None
            edit.next_poll_at = self.clock() + (
                self.policy.max_interval if slow else self.policy.next_delay(edit.polls)
            )

    async def _archive(self, edit: Edit) -> None:
        try:
            dest = await self.archiver.video(edit)
            thumbnail = await self.archiver.thumbnail(edit, dest)
            await self.archiver.compare(edit, dest)
        except ArchiveWriteFailed as exc:
            self._write_trouble(edit, exc)
            return
        except (UnsafeURL, OutputNotVideo) as exc:  # the answer is no result: nothing of it is kept
            await self.archiver.remove(edit)
            edit.output_url = None
            self._fail(edit, exc.code, exc.message)
            return
        except TransientProviderError as exc:
            self._retry_later(edit, exc)
            return
        except ProviderError as exc:  # OutputExpired (403/404/410) or another refusal by the file host
            expired = self._expired[edit.edit_id] = self._expired.get(edit.edit_id, 0) + 1
            if expired > MAX_EXPIRED_RETRIES:
                self._fail(
                    edit,
                    OutputExpired.code,
                    f"The result URL stopped working before it could be downloaded ({exc.message}), "
                    f"and {expired - 1} fresh status reads gave no URL that works.",
                )
                return
            edit.output_url = None  # read the status again for a freshly signed URL
            edit.next_poll_at = self.clock()
            return
        edit.local_path = dest
        edit.thumbnail_path = thumbnail
        self._finish(edit, "succeeded")
        self.archiver.discard(edit)

    def _write_trouble(self, edit: Edit, exc: ArchiveWriteFailed) -> None:
        """A full disk may free up: retry with backoff until the deadline. A read-only one will not."""
        message = write_failed_message(edit, exc.message)
        logger.error("archive write failed edit=%s permanent=%s", edit.edit_id, exc.permanent)
        if exc.permanent:
            self._fail(edit, exc.code, message)
            return
        self._write_failed[edit.edit_id] = message
        edit.poll_failures += 1
        edit.next_poll_at = self.clock() + self.policy.backoff(edit.poll_failures, None)

    def _retry_later(self, edit: Edit, exc: ProviderError) -> None:
        edit.poll_failures += 1
        edit.next_poll_at = self.clock() + self.policy.backoff(edit.poll_failures, exc.retry_after)
        logger.info(
            "poll retry edit_id=%s next_in=%.0fs reason=%s",
            edit.edit_id,
            edit.next_poll_at - self.clock(),
            exc.message,
        )

    def _fail(self, edit: Edit, code: ErrorCode, message: str) -> None:
        self._finish(edit, "failed", code, message)

    def _finish(
        self, edit: Edit, status: EditStatus, code: str | None = None, message: str | None = None
    ) -> None:
        edit.finish(status, self.clock(), code, message)
        logger.info("edit ended edit_id=%s status=%s code=%s", edit.edit_id, status, code or "-")
        self._expired.pop(edit.edit_id, None)
        self._write_failed.pop(edit.edit_id, None)

    async def _save(self, edit: Edit, *, changed: bool) -> None:
        """Always persist (the schedule moved); bump updated_at and notify only for visible changes."""
        if changed:
            edit.updated_at = self.clock()
        await self.store.save(edit)
        if changed and self.on_change is not None:
            try:
                await self.on_change(edit)
            except Exception:
                logger.exception("change hook failed edit_id=%s", edit.edit_id)
