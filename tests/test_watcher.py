"""Changes another process writes to the shared store reach this process's change feed, bursts included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from aleph_mcp.edits.changes import ChangeFeed, publish_changes, watch_store
from aleph_mcp.models import Edit
from aleph_mcp.store import EditStore, InMemoryEditStore, SQLiteEditStore

from .test_store import open_kind

START = 1_700_000_000.0


def edit(n: int, updated_at: float) -> Edit:
    return Edit(f"ed_{n:04d}", "kie", "aleph", "p", "v", created_at=updated_at, updated_at=updated_at)


async def test_a_burst_of_300_changes_from_another_process_is_announced_in_full(tmp_path: Path) -> None:
    """300 edits written by another store on the file within one second: every one is published."""
    path = tmp_path / "edits.sqlite3"
    ours, theirs = SQLiteEditStore(path), SQLiteEditStore(path)
    heard: set[str] = set()
    all_heard = anyio.Event()

    async def listen(changed: Edit) -> None:
        heard.add(changed.edit_id)
        if len(heard) == 300:
            all_heard.set()

    for n in range(300):
        await theirs.add(edit(n, START + n / 300))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: watch_store(ours, ChangeFeed(), 0.0, start=START, on_new=listen))
            await all_heard.wait()
            tg.cancel_scope.cancel()
    assert heard == {f"ed_{n:04d}" for n in range(300)}
    for store in (ours, theirs):
        await store.close()


async def test_a_change_written_late_with_an_earlier_time_is_still_announced() -> None:
    """A writer whose clock is a second behind: its change is within the look-back, so it is heard."""
    store, feed, announced = InMemoryEditStore(), ChangeFeed(), []

    async def listen(changed: Edit) -> None:
        announced.append(changed.edit_id)

    await store.add(edit(1, START + 10))
    since = await publish_changes(store, feed, START, on_new=listen)
    await store.add(edit(2, START + 9))
    assert await publish_changes(store, feed, since, on_new=listen) == START + 10
    assert announced == ["ed_0001", "ed_0002"]  # the feed drops the repeat of ed_0001


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EditStore]:
    the_store = await open_kind(request.param, tmp_path, request)
    yield the_store
    await the_store.close()


async def test_changed_since_pages_through_changes_of_one_instant(store: EditStore) -> None:
    """With after_id, a page starts after the last (updated_at, edit_id) read; "" includes `since` itself."""
    for n in range(5):
        await store.add(edit(n, START))
    await store.add(edit(5, START + 1))
    first = await store.changed_since(START, limit=2, after_id="")
    second = await store.changed_since(START, limit=10, after_id=first[-1].edit_id)
    assert [e.edit_id for e in first + second] == [f"ed_{n:04d}" for n in range(6)]
    assert [e.edit_id for e in await store.changed_since(START)] == ["ed_0005"]
