"""How the command line reaches the service layer: the same store, providers, service and poller as serve.

While `edit --wait` or `status --wait` waits, a Poller runs in this process. It follows only the edit being
waited for (a server sharing the data dir looks after the rest), and the store's lease keeps it from ever
polling an edit at the same time as a server.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import unquote, urlparse

import anyio
import httpx2

from aleph_mcp.app import AppState, build_app, http_client
from aleph_mcp.cli.output import ProgressLine
from aleph_mcp.config import Settings
from aleph_mcp.edits.changes import watch_store
from aleph_mcp.edits.service import RECHECK_EVERY
from aleph_mcp.models import Edit
from aleph_mcp.providers.registry import capabilities_of
from aleph_mcp.store import EditStore
from aleph_mcp.store.factory import open_store

WATCH_EVERY = 0.2  # how often the store is read for another process's changes


class FocusedStore:
    """The configured store, except that only the edit being waited for is ever due for polling. Every
    other method is the inner store's (so one added to the protocol needs nothing here)."""

    focus: str | None = None

    def __init__(self, inner: EditStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def due_for_poll(self, now: float, limit: int) -> list[Edit]:
        if self.focus is None:
            return []
        edit = await self.inner.get(self.focus)
        due = edit is not None and not edit.is_terminal and (edit.next_poll_at or math.inf) <= now
        return [edit] if edit is not None and due else []

    async def lease_due(self, now: float, owner: str, until: float, limit: int) -> list[Edit]:
        """As the store's own, for the one edit: never one whose lease is held, even by this owner."""
        found = await self.due_for_poll(now, 1)
        if not found or not await self.inner.lease(found[0].edit_id, owner, until, now):
            return []
        leased = await self.inner.get(found[0].edit_id)
        return [leased] if leased is not None else []

    def as_store(self) -> EditStore:
        return cast(EditStore, self)


@dataclass
class Runtime:
    settings: Settings
    store: FocusedStore
    http: httpx2.AsyncClient

    def state(self, provider: str | None = None) -> AppState:
        """Service, poller and providers built exactly as the server builds them."""
        settings = self.settings
        caps = capabilities_of(provider)
        # Where a poll costs nothing (Capabilities.quick_poll), poll fast unless the user chose a pace.
        if caps is not None and caps.quick_poll and "poll_interval" not in settings.model_fields_set:
            first, longest = caps.quick_poll
            settings = settings.model_copy(update={"poll_interval": first, "poll_max_interval": longest})
        return build_app(settings, self.store.as_store(), self.http)


@asynccontextmanager
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(http_client(settings))
        store = FocusedStore(await open_store(settings))
        stack.push_async_callback(store.inner.close)
        yield Runtime(settings, store, http)


async def follow(
    state: AppState, store: FocusedStore, edit_id: str, timeout: float | None, line: ProgressLine
) -> Edit:
    """Poll `edit_id` in this process until it ends or `timeout` passes; returns its latest state. Woken
    by the change feed: this process's poller, or the store watcher for another process's writes."""
    edit = await state.service.get(edit_id)
    store.focus = edit_id
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(state.poller.run, min(1.0, state.settings.poll_interval))
            # A server on the same data dir may be the one advancing the edit: its writes wake us too.
            tg.start_soon(lambda: watch_store(store.inner, state.changes, WATCH_EVERY, start=time.time()))
            with state.changes.watching(edit_id) as watch, anyio.move_on_after(timeout):
                edit = await state.service.get(edit_id)
                while True:
                    line.update(edit)
                    if edit.is_terminal:
                        break
                    await watch.wait(RECHECK_EVERY)
                    edit = await state.service.get(edit_id)
            tg.cancel_scope.cancel()
    finally:
        store.focus = None
        line.end()
    return edit


def local_video(video: str) -> Path | None:
    """The absolute path meant by a `video` argument, or None for a URL or data: URI."""
    value = video.strip()
    head = value[:16].lower()
    if head.startswith("file://"):
        return Path(unquote(urlparse(value).path)).expanduser().resolve()
    if head.startswith("data:") or "://" in head:
        return None
    return Path(value).expanduser().resolve()


def allow_video_dir(settings: Settings, video: Path | None) -> Settings:
    """Someone typing a path on their own machine has chosen that file: allow its folder when no allowed
    dirs are configured. A configured ALEPH_MCP_ALLOWED_DIRS is respected as it is."""
    if video is None or settings.allowed_dir_paths:
        return settings
    # A list, not a joined string: a folder named "a:b" must stay one folder.
    return settings.model_copy(update={"allowed_dir_list": [video.parent]})
