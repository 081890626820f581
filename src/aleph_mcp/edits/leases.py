"""Holding an edit's lease while working on it: the one keep-alive every long step uses.

A lease lapses after `lease_seconds` so a crashed process blocks nobody; a live one renews it every third
of that while its work runs, so a slow upload or download is never taken for a crash.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio

from aleph_mcp.store import EditStore

logger = logging.getLogger(__name__)


@asynccontextmanager
async def kept_alive(
    store: EditStore,
    edit_id: str,
    holder: str,
    *,
    lease_seconds: float,
    clock: Callable[[], float],
    stop_if_lost: bool,
) -> AsyncIterator[None]:
    """Renew `holder`'s lease on the edit while the body runs (the caller took the lease first).

    With `stop_if_lost`, the body is cancelled should the lease go to another process after all (this one
    stalled past it): that process has the edit now. Errors of the body come out as they were raised.
    """
    try:
        async with anyio.create_task_group() as tg:
            on_lost = tg.cancel_scope.cancel if stop_if_lost else None
            tg.start_soon(_renew, store, edit_id, holder, lease_seconds, clock, on_lost)
            yield
            tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from group.exceptions[0].__cause__
        raise


async def _renew(
    store: EditStore,
    edit_id: str,
    holder: str,
    lease_seconds: float,
    clock: Callable[[], float],
    on_lost: Callable[[], None] | None,
) -> None:
    while True:
        await anyio.sleep(lease_seconds / 3)
        now = clock()
        try:
            kept = await store.lease(edit_id, holder, now + lease_seconds, now)
        except Exception:
            logger.exception("lease renewal failed edit_id=%s", edit_id)
            continue
        if not kept and on_lost is not None:
            logger.warning("lease lost edit_id=%s; leaving the edit to its new holder", edit_id)
            on_lost()
            return
