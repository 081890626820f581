"""Keeping a paid task: the store learns a create is leaving before it leaves, and its task id the moment the
answer arrives, retried, else journaled (journal.py), so a task the provider bills is never forgotten."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aleph_mcp.edits.journal import Entry, TaskJournal
from aleph_mcp.errors import AlephError
from aleph_mcp.models import Edit
from aleph_mcp.store import EditStore
from aleph_mcp.store.base import Claim

logger = logging.getLogger(__name__)

SAVE_RETRY_DELAYS = (0.05, 0.2, 0.5)  # a locked or momentarily full disk; the caller is waiting


class TaskKeeper:
    def __init__(
        self,
        store: EditStore,
        journal: TaskJournal | None,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.store = store
        self.journal = journal
        self.clock = clock
        self.sleep = sleep

    async def claim(self, edit: Edit, provider: str, limit: int | None, now: float) -> Claim:
        """Store that the create is about to leave (`EditStore.claim_create`, which also keeps the provider's
        job limit). If even that cannot be written, nothing is sent: the edit fails `not_sent`."""
        try:
            return await self.store.claim_create(edit.edit_id, provider, limit, now)
        except Exception as exc:
            logger.error(
                "create not sent edit=%s reason=store_unwritable error=%s", edit.edit_id, type(exc).__name__
            )
            message = (
                f"Edit {edit.edit_id} was not sent: this server could not write its store "
                f"({type(exc).__name__}). Nothing was sent or billed; free disk space and try again."
            )
            edit.fail("not_sent", message, now)
            raise AlephError(message, code="not_sent") from None

    async def keep_task(self, edit: Edit) -> None:
        """Store the accepted task; on repeated failure journal it and raise an error naming the task."""
        failure: Exception | None = None
        for delay in (*SAVE_RETRY_DELAYS, None):
            try:
                await self.store.save(edit)
                return
            except Exception as exc:  # sqlite3.OperationalError "database or disk is full", a locked file
                failure = exc
                if delay is not None:
                    await self.sleep(delay)
        assert failure is not None and edit.provider_task_id is not None
        where = self._journal(edit)
        logger.error(
            "task id not stored edit=%s provider=%s task=%s error=%s journal=%s",
            edit.edit_id,
            edit.provider,
            edit.provider_task_id,
            type(failure).__name__,
            where or "unwritable",
        )
        kept = (
            f"It is kept in {where} and recovered on the next start."
            if where
            else "It could not be written down anywhere; note it now."
        )
        raise AlephError(
            f"Edit {edit.edit_id} was accepted by {edit.provider} as task {edit.provider_task_id} (it will "
            f"be billed), but this server could not store that ({type(failure).__name__}). {kept} Do not "
            "submit it again.",
            code="submit_outcome_unknown",
        )

    def _journal(self, edit: Edit) -> str | None:
        if self.journal is None or edit.provider_task_id is None:
            return None
        entry = Entry(edit.edit_id, edit.provider, edit.provider_task_id, edit.create_sent_at or self.clock())
        try:
            self.journal.append(entry)
        except OSError:
            return None
        return str(self.journal.path)
