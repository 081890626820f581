"""The in-process "edit changed" broadcast: what makes a waiting `get_edit_status` return the moment an
edit moves, without reading the store on a timer.

This process's own changes (the poller's `on_change`, a submit, a cancel) are published as they are saved;
another process's reach it through `watch_store` (the MCP server's notifier and the CLI's `follow` both run
it). On a store that announces its writes (PostgreSQL's LISTEN/NOTIFY, `store.base.Announcing`) it reads
only the edits announced, at once, and the store is never polled; otherwise (SQLite) it reads the store's
recent changes every `interval`, page by page, so a burst of any size is published in full. Nothing here
imports `mcp`.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager

import anyio

from aleph_mcp.models import Edit
from aleph_mcp.store import EditStore
from aleph_mcp.store.base import Announcing

logger = logging.getLogger(__name__)

SEEN_LIMIT = 4096
LOOKBACK = 2.0  # seconds: tolerate small clock skew between writer processes
PAGE = 200  # changes read at a time; a burst of any size is read page by page

OnEdit = Callable[[Edit], Awaitable[None]]
Progress = Callable[[float, str], Awaitable[None]]
OnPoke = Callable[[str, str | None], None]  # (edit_id, lease holder): a webhook reached another process


class Watch:
    """One waiter's view of one edit: `wait` returns when it was published, or after `timeout`."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def notify(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True when woken by a change. Re-armed before returning: the caller reads the store after this,
        so a change published meanwhile is either in that read or wakes the next wait."""
        woke = False
        with anyio.move_on_after(timeout):
            await self._event.wait()
            woke = True
        if woke:
            self._event = anyio.Event()
        return woke


class ChangeFeed:
    def __init__(self) -> None:
        self._watches: dict[str, set[Watch]] = {}
        self._seen: OrderedDict[str, float] = OrderedDict()  # edit_id -> updated_at published

    def publish(self, edit: Edit) -> bool:
        """Wake everyone watching this edit; False (and nobody woken) for a change published already."""
        if self._seen.get(edit.edit_id, -1.0) >= edit.updated_at:
            return False
        self._seen[edit.edit_id] = edit.updated_at
        self._seen.move_to_end(edit.edit_id)
        while len(self._seen) > SEEN_LIMIT:
            self._seen.popitem(last=False)
        for watch in self._watches.get(edit.edit_id, ()):
            watch.notify()
        return True

    def seen(self, edit_id: str) -> float:
        """The update time of the latest change published for `edit_id` (-1: none it remembers)."""
        return self._seen.get(edit_id, -1.0)

    def watchers(self, edit_id: str) -> int:
        return len(self._watches.get(edit_id, ()))

    @contextmanager
    def watching(self, edit_id: str) -> Iterator[Watch]:
        """Register before reading the edit, so no change between the read and the wait is missed."""
        watch = Watch()
        self._watches.setdefault(edit_id, set()).add(watch)
        try:
            yield watch
        finally:
            watches = self._watches.get(edit_id, set())
            watches.discard(watch)
            if not watches:
                self._watches.pop(edit_id, None)


async def watch_store(
    store: EditStore,
    feed: ChangeFeed,
    interval: float,
    *,
    start: float,
    on_new: OnEdit | None = None,
    on_poke: OnPoke | None = None,
) -> None:
    """Publish the changes any process writes to the store; `on_new` hears each one not published yet,
    `on_poke` each webhook poke another process announces (announcing stores only)."""
    if isinstance(store, Announcing):
        await listen_store(store, feed, start=start, on_new=on_new, on_poke=on_poke)
        return
    since = start
    while True:
        await anyio.sleep(interval)
        try:
            since = await publish_changes(store, feed, since, on_new=on_new)
        except Exception:
            logger.exception("watching the store failed; continuing")


async def listen_store(
    store: EditStore,
    feed: ChangeFeed,
    *,
    start: float,
    on_new: OnEdit | None = None,
    on_poke: OnPoke | None = None,
) -> None:
    """`watch_store` for a store that announces its writes: each announced edit is read once (unless this
    process published that change already), and a (re)connection catches up with one paged read."""
    assert isinstance(store, Announcing)
    since = start
    async with aclosing(store.announcements()) as heard:
        async for note in heard:
            try:
                if note.kind == "resync":
                    since = await publish_changes(store, feed, since, on_new=on_new)
                elif note.kind == "poke":
                    if on_poke is not None:
                        on_poke(note.edit_id, note.holder)
                elif feed.seen(note.edit_id) < note.updated_at:
                    edit = await store.get(note.edit_id)
                    if edit is not None:
                        since = max(since, edit.updated_at)
                        if feed.publish(edit) and on_new is not None:
                            await on_new(edit)
            except Exception:
                logger.exception("handling a store announcement failed; continuing")


async def publish_changes(
    store: EditStore, feed: ChangeFeed, since: float, *, on_new: OnEdit | None = None
) -> float:
    """Publish every change from LOOKBACK before `since` on, paging by (updated_at, edit_id) however many
    there are; returns the newest update time seen (where the next look starts)."""
    newest, after, after_id = since, since - LOOKBACK, ""
    while True:
        page = await store.changed_since(after, limit=PAGE, after_id=after_id)
        for edit in page:
            newest = max(newest, edit.updated_at)
            if feed.publish(edit) and on_new is not None:
                await on_new(edit)
        if len(page) < PAGE:
            return newest
        after, after_id = page[-1].updated_at, page[-1].edit_id


class ProgressSteps:
    """Reports each visible step of an edit being waited for, once, as a fraction that only grows (MCP
    requires progress to increase): queued, running with the provider's progress, then the end."""

    def __init__(self, progress: Progress, edit: Edit) -> None:
        self.progress = progress
        self.last = visible(edit)
        self.value = 0.0

    async def report(self, edit: Edit) -> None:
        step = visible(edit)
        if step == self.last:
            return
        self.last = step
        self.value = min(1.0, max(self.value + 0.001, _fraction(edit)))
        await self.progress(self.value, _describe(edit))


def visible(edit: Edit) -> tuple[object, ...]:
    """The fields an agent sees; a change in any of them is a status change worth announcing."""
    progress = round(edit.progress, 2) if edit.progress is not None else None
    return (edit.status, progress, edit.output_url, edit.local_path, edit.error_code, edit.notes)


def _fraction(edit: Edit) -> float:
    if edit.is_terminal:
        return 1.0
    if edit.status == "running":
        return 0.1 + 0.85 * (edit.progress or 0.0)
    return 0.05


def _describe(edit: Edit) -> str:
    if edit.status == "running" and edit.progress is not None:
        return f"running, {edit.progress:.0%}"
    if edit.is_terminal and edit.error_message:
        return f"{edit.status}: {edit.error_message}"
    if edit.status == "queued" and edit.notes:
        return f"queued: {edit.notes}"
    return edit.status
