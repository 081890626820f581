"""The change feed: a waiting get_edit_status is woken by the change itself, here and from other processes."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.lowlevel

from aleph_mcp.edits.changes import ChangeFeed, watch_store
from aleph_mcp.edits.service import EditService
from aleph_mcp.models import Edit
from aleph_mcp.store import EditStore, InMemoryEditStore, SQLiteEditStore
from tests.conftest import make_settings

VIDEO = "https://cdn.example.com/in/clip.mp4"


def service_on(store: EditStore, tmp_path: Path, changes: ChangeFeed | None = None) -> EditService:
    return EditService(store, {}, make_settings(tmp_path), owner="p1", changes=changes)


async def running_edit(store: EditStore) -> Edit:
    now = anyio.current_time()
    edit = Edit(
        "ed_wake", "runway", "aleph2", "snow", VIDEO, status="running", created_at=now, updated_at=now
    )
    await store.add(edit)
    return edit


async def finish(store: EditStore, edit: Edit) -> Edit:
    done = await store.get(edit.edit_id)
    assert done is not None
    done.finish("succeeded", done.updated_at + 1)
    await store.save(done)
    return done


async def test_a_waiter_returns_within_a_tenth_of_a_second_of_the_edit_ending(tmp_path: Path) -> None:
    """Published in this process: the wait of 30 s ends right after the change, measured on anyio's clock."""
    store = InMemoryEditStore()
    service = service_on(store, tmp_path)
    edit = await running_edit(store)
    ended: list[float] = []

    async def end_it() -> None:
        while service.changes.watchers(edit.edit_id) == 0:
            await anyio.lowlevel.checkpoint()
        service.changes.publish(await finish(store, edit))
        ended.append(anyio.current_time())

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(end_it)
            seen = await service.wait_for_end(edit.edit_id, 30)
            returned = anyio.current_time()
    assert seen.status == "succeeded"
    assert returned - ended[0] < 0.1


async def test_a_republished_change_wakes_nobody(tmp_path: Path) -> None:
    """The same (edit, updated_at) twice, e.g. from this process and the store watcher: published once."""
    feed = ChangeFeed()
    edit = Edit("ed_once", "runway", "aleph2", "snow", VIDEO, updated_at=10.0)
    assert feed.publish(edit) is True
    assert feed.publish(edit) is False


async def test_another_process_s_change_reaches_the_waiter_through_the_store_watcher(tmp_path: Path) -> None:
    """Two connections to one SQLite file: the other's unpublished write ends the wait via the watcher."""
    mine, theirs = SQLiteEditStore(tmp_path / "s.sqlite3"), SQLiteEditStore(tmp_path / "s.sqlite3")
    feed = ChangeFeed()
    service = service_on(mine, tmp_path, feed)
    edit = await running_edit(mine)
    with anyio.fail_after(3):  # under RECHECK_EVERY: only the watcher can end it in time
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: watch_store(mine, feed, 0.05, start=edit.updated_at))

            async def end_it() -> None:
                while feed.watchers(edit.edit_id) == 0:
                    await anyio.lowlevel.checkpoint()
                await finish(theirs, edit)

            tg.start_soon(end_it)
            seen = await service.wait_for_end(edit.edit_id, 30)
            tg.cancel_scope.cancel()
    for store in (mine, theirs):
        await store.close()
    assert seen.status == "succeeded"
