"""The background poller: follows every unfinished edit to its end and archives the result.

`poll_once()` is one pass over due edits (what tests drive); `run()` draws due edits continuously, as fast
as the concurrency allows: it leases a batch in one store call, keeps as many drawn ahead as are being
checked, and saves finished checks in batches, so a status read costs the HTTP exchange and little else.
One slow download never holds up the status reads of the others. Requests to each provider are paced
(edits/rates.py). The poller never imports
`mcp`: it reports changes through the `on_change` hook, which the server turns into notifications.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager

import anyio
import anyio.abc
import httpx2
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from aleph_mcp.edits.archiving import Archiver
from aleph_mcp.edits.capacity import Capacity, request_from_json
from aleph_mcp.edits.changes import visible
from aleph_mcp.edits.journal import TaskJournal, apply
from aleph_mcp.edits.leases import kept_alive
from aleph_mcp.edits.long_clips import JobFollower, is_job
from aleph_mcp.edits.poll_messages import orphan_failure, timeout_message, write_failed_message
from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.edits.rates import Paces
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
DRAW_IDLE = 0.2  # with nothing due, run() looks again this often: an edit comes due between two looks
WRITE_BATCH = 500  # the most checked edits one write saves


class LeaseLost(Exception):
    """This process stalled past its lease and another one took the edit."""


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
        paces: Paces | None = None,
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
        self.paces = paces or Paces()
        self._outbox: MemoryObjectSendStream[tuple[Edit, bool]] | None = None  # run()'s writer
        self.behind = 0.0  # seconds: how late run() draws due edits (0 when it keeps up)
        self._backlogged = False  # run()'s last draw filled the window: more may be due
        self._wake = anyio.Event()
        # Result URLs found expired, per edit. Kept apart from poll_failures, which every good status
        # read resets (and the fresh read is exactly what follows an expired URL).
        self._expired: dict[str, int] = {}
        self._busy: set[str] = set()  # edits run() has leased: being checked or waiting for a slot
        self.last_pass: float | None = None  # anyio's clock at the start of run()'s latest pass
        self._poked: set[str] = set()  # edits a webhook asked to check again
        # Under the default policy only public https URLs are fetched (no configured origin is trusted).
        self.archiver = Archiver(archive, http, providers, fetch or FetchPolicy())
        self._write_failed: dict[str, str] = {}  # edits whose result could not be written, and why
        # Whole-clip jobs: never polled at a provider, only aggregated from their windows (long_clips.py).
        self.jobs = JobFollower(store, self.archiver, clock, self.policy.max_interval)
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
        """Draw due edits as fast as the concurrency allows: leased in batches, checked by up to
        `concurrency` at once with as many more drawn ahead, saved in batches by one writer."""
        send, receive = anyio.create_memory_object_stream[tuple[Edit, bool]](math.inf)
        self._outbox = send
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._write, receive)
                while True:
                    self.last_pass = anyio.current_time()  # what a health check reads: the loop is alive
                    try:
                        self._backlogged = await self._draw(tg)
                    except Exception:
                        self._backlogged = False
                        logger.exception("poll pass failed; continuing")
                    # Behind: go on as soon as half the window frees. Caught up: look again shortly.
                    with anyio.move_on_after(tick if self._backlogged else min(tick, DRAW_IDLE)):
                        await self._wake.wait()
                    self._wake = anyio.Event()
        finally:
            self._outbox = None
            send.close()
            # Stopped (a shutdown is a cancellation): checks that ended are still saved, so a video
            # archived a moment ago is not read again, and fetched again, by the next process.
            with anyio.CancelScope(shield=True):
                await self._flush(receive)

    async def _flush(self, receive: MemoryObjectReceiveStream[tuple[Edit, bool]]) -> None:
        with receive:
            batch = []
            while True:
                try:
                    batch.append(receive.receive_nowait())
                except (anyio.WouldBlock, anyio.EndOfStream):
                    break
            if batch:
                await self._save_batch(batch)

    async def _draw(self, tg: anyio.abc.TaskGroup) -> bool:
        """Lease due edits into the free part of the window; True when more may be due."""
        room = 2 * self.policy.concurrency - len(self._busy)
        if room < self.policy.concurrency:
            return True
        now = self.clock()
        batch = await self.store.lease_due(now, self.owner, now + self.policy.lease_seconds, room)
        for edit in batch:
            if edit.edit_id not in self._busy:  # never two checks of one edit at once
                self._busy.add(edit.edit_id)
                tg.start_soon(self._tracked, edit, now)
        full = len(batch) == room
        # How late due edits are drawn: an edit due at t is looked at about `behind` after t.
        self.behind = max(0.0, now - (batch[-1].next_poll_at or now)) if full else 0.0
        return full

    async def _tracked(self, edit: Edit, leased_at: float) -> None:
        try:
            await self._guarded(edit, leased_at)
        except anyio.get_cancelled_exc_class():
            # Stopped mid-check (a shutdown): nothing of it is kept, and the edit is given back now, so
            # the next process reads it at once rather than when the lease lapses minutes later.
            with anyio.CancelScope(shield=True):
                await self._give_back(edit.edit_id)
            raise
        except Exception:  # a store error must not end run() for every other edit
            logger.exception("poll failed edit_id=%s", edit.edit_id)
        finally:
            self._busy.discard(edit.edit_id)
            if self._backlogged and len(self._busy) <= self.policy.concurrency:
                self._wake.set()  # room for the next batch of a backlog

    async def _give_back(self, edit_id: str) -> None:
        try:
            await self.store.release(edit_id, self.owner)
        except Exception:  # the store may be going away too; the lease then lapses as after a crash
            logger.exception("release failed edit_id=%s", edit_id)

    async def poll_once(self) -> int:
        """Advance every due edit once; returns how many edits this pass worked on."""
        now = self.clock()
        limit = self.policy.concurrency * 8
        due = await self.store.lease_due(now, self.owner, now + self.policy.lease_seconds, limit)
        async with anyio.create_task_group() as tg:
            for edit in due:
                tg.start_soon(self._guarded, edit, now)
        return len(due)

    async def _guarded(self, edit: Edit, leased_at: float) -> None:
        async with self._limiter:
            # Drawn ahead and kept waiting for a slot: is the lease still ours (renewed for the check)?
            if self.clock() - leased_at > self.policy.lease_seconds / 3 and not await self._renew(edit):
                return
            try:
                changed = await self._advance(edit)
            except LeaseLost:
                return  # another process has the edit now; nothing of this check is kept
            except Exception:
                logger.exception("poll failed edit_id=%s", edit.edit_id)
                try:
                    await self._defer(edit.edit_id)
                finally:
                    await self.store.release(edit.edit_id, self.owner)
                return
            await self._done(edit, changed)

    async def _renew(self, edit: Edit) -> bool:
        now = self.clock()
        return await self.store.lease(edit.edit_id, self.owner, now + self.policy.lease_seconds, now)

    async def _held(self, edit: Edit, step: Callable[[Edit], Awaitable[None]]) -> None:
        """A long step (a download, a create) renews the lease; should it be lost anyway, the work stops
        there and nothing of this check is saved."""
        finished = False
        async with self._kept(edit.edit_id):
            await step(edit)
            finished = True
        if not finished:
            raise LeaseLost(edit.edit_id)

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

    async def _advance(self, edit: Edit) -> bool:
        """One check of the edit; True when it changed visibly (the caller saves it either way)."""
        before = visible(edit)
        if is_job(edit):
            await self.jobs.advance(edit)
            changed = visible(edit) != before
            if changed:
                edit.updated_at = self.clock()
            return changed
        if edit.waiting_for_capacity:
            await self._held(edit, self._submit_waiting)
        elif edit.provider_task_id is None and not self._recovered(edit):
            self._fail(edit, *orphan_failure(edit))  # its submitter held the lease and is gone
        elif edit.output_url and not edit.local_path:
            await self._held(edit, self._archive)
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
        changed = visible(edit) != before
        if changed:
            edit.updated_at = self.clock()
        return changed

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
            await self.paces.of(edit.provider).slot()
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
        await self.paces.of(edit.provider).slot()
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
            await self._held(edit, self._archive)

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

    async def _done(self, edit: Edit, changed: bool) -> None:
        """Always persist (the schedule moved) and give the lease back; announce visible changes. While
        run() runs, its writer does it for many checks at once."""
        if self._outbox is not None:
            self._outbox.send_nowait((edit, changed))
        else:
            await self._persist([(edit, changed)])

    async def _write(self, receive: MemoryObjectReceiveStream[tuple[Edit, bool]]) -> None:
        """Saves whatever checks have ended since its last write, in one write (a group commit)."""
        async for first in receive:
            batch = [first]
            while len(batch) < WRITE_BATCH:
                try:
                    batch.append(receive.receive_nowait())
                except anyio.WouldBlock:
                    break
            # Taken off the queue, a batch is saved even through a shutdown: run()'s last flush only
            # sees what is still queued.
            with anyio.CancelScope(shield=True):
                await self._save_batch(batch)

    async def _save_batch(self, batch: list[tuple[Edit, bool]]) -> None:
        try:
            await self._persist(batch)
        except Exception:
            logger.exception("saving %d checked edits failed; saving them one by one", len(batch))
            await self._persist_each(batch)

    async def _persist_each(self, batch: list[tuple[Edit, bool]]) -> None:
        """After a failed batch write (a busy file): each edit alone; one that still fails is given back
        unsaved, so it comes round again at once rather than when its lease lapses."""
        for item in batch:
            try:
                await self._persist([item])
            except Exception:
                logger.exception("saving a checked edit failed edit_id=%s", item[0].edit_id)
                try:
                    await self.store.release(item[0].edit_id, self.owner)
                except Exception:
                    logger.exception("release failed edit_id=%s", item[0].edit_id)

    async def _persist(self, batch: list[tuple[Edit, bool]]) -> None:
        await self.store.save_many([edit for edit, _ in batch], release=self.owner)
        for edit, changed in batch:
            if changed and edit.part_of is not None:  # a window moved: its job aggregates it now
                await self.store.poll_soon(edit.part_of, self.clock())
                self.wake()
            if changed and self.on_change is not None:
                try:
                    await self.on_change(edit)
                except Exception:
                    logger.exception("change hook failed edit_id=%s", edit.edit_id)
