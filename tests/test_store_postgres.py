"""The PostgreSQL store beyond the shared contract (test_store.py): its migrations, atomicity across replicas
(two stores, each with its own pool of connections, as two hosts have), and announcements between them."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest

from aleph_mcp.app import build_app
from aleph_mcp.edits.changes import ChangeFeed, watch_store
from aleph_mcp.errors import BudgetExceeded, IdempotencyConflict
from aleph_mcp.models import Edit
from aleph_mcp.store.base import Announcement, StoreTooNew
from aleph_mcp.store.pg_schema import MIGRATIONS, column_sql
from aleph_mcp.store.postgres import PostgresEditStore

from .conftest import make_settings
from .test_store import make_edit


@pytest.fixture
async def pair(pg_url: str) -> AsyncIterator[tuple[PostgresEditStore, PostgresEditStore]]:
    """Two stores on one database, as two replicas open it."""
    first = await PostgresEditStore.open(pg_url)
    second = await PostgresEditStore.open(pg_url)
    yield first, second
    await first.close()
    await second.close()


def query(url: str, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql.encode(), params)
        return cursor.fetchall() if cursor.description else []


# -- migrations ------------------------------------------------------------------------------------


async def test_replicas_opening_a_fresh_database_together_migrate_it_once(pg_url: str) -> None:
    """Five stores opened at once: all open, the schema is current, and its version row is one row."""
    stores: list[PostgresEditStore] = []

    async def open_one() -> None:
        stores.append(await PostgresEditStore.open(pg_url))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(open_one)
    await stores[0].add(make_edit(1))
    assert await stores[4].get("ed_0001") == make_edit(1)
    for store in stores:
        await store.close()
    assert query(pg_url, "SELECT version FROM schema_version") == [(len(MIGRATIONS),)]


async def test_every_edit_field_has_its_column_after_migrating(pg_url: str) -> None:
    """A field added to Edit without its migration (pg_schema.add_columns) fails here."""
    await (await PostgresEditStore.open(pg_url)).close()
    columns = {
        row[0]
        for row in query(
            pg_url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'edits'"
        )
    }
    assert {f.name for f in fields(Edit)} <= columns
    assert {"fingerprint", "lease_owner", "lease_until"} <= columns


def test_a_column_is_typed_as_its_edit_field_says() -> None:
    """Types, nullability and defaults come from the dataclass: a new field is a one-line migration."""
    assert column_sql("poll_failures") == "poll_failures BIGINT NOT NULL DEFAULT 0"
    assert column_sql("progress") == "progress DOUBLE PRECISION"
    assert column_sql("options") == "options JSONB NOT NULL DEFAULT '{}'::jsonb"
    assert column_sql("owner") == "owner TEXT COLLATE \"C\" NOT NULL DEFAULT 'local'"
    assert column_sql("provider_cost_final") == "provider_cost_final BOOLEAN NOT NULL DEFAULT FALSE"
    assert column_sql("created_at") == "created_at DOUBLE PRECISION NOT NULL"


async def test_a_schema_newer_than_this_release_is_refused_and_left_unchanged(pg_url: str) -> None:
    """A newer release's database: a clear error naming the versions, and nothing written."""
    store = await PostgresEditStore.open(pg_url)
    await store.add(make_edit(1))
    await store.close()
    query(pg_url, "UPDATE schema_version SET version = %s", [len(MIGRATIONS) + 1])
    with pytest.raises(StoreTooNew, match=f"version {len(MIGRATIONS) + 1}, newer than .* knows"):
        await PostgresEditStore.open(pg_url)
    assert query(pg_url, "SELECT version FROM schema_version") == [(len(MIGRATIONS) + 1,)]
    assert query(pg_url, "SELECT edit_id FROM edits") == [("ed_0001",)]


# -- atomic across replicas ------------------------------------------------------------------------


async def gather(*calls: Any) -> list[Any]:
    """Run the calls at once; each result, or the exception it raised."""
    results: list[Any] = [None] * len(calls)

    async def one(n: int) -> None:
        try:
            results[n] = await calls[n]
        except Exception as exc:
            results[n] = exc

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for n in range(len(calls)):
                tg.start_soon(one, n)
    return results


async def test_identical_requests_through_two_replicas_insert_one_edit(
    pair: tuple[PostgresEditStore, PostgresEditStore],
) -> None:
    """20 concurrent add_unless_duplicate of one fingerprint, alternating stores: one insert, 19 repeats."""
    results = await gather(
        *(pair[n % 2].add_unless_duplicate(make_edit(n, created_at=5000.0), "fp", 600) for n in range(20))
    )
    inserted = [n for n, found in enumerate(results) if found is None]
    assert len(inserted) == 1
    assert {found.edit_id for found in results if found is not None} == {f"ed_{inserted[0]:04d}"}
    assert len((await pair[0].list_edits(limit=50))[0]) == 1


class CapGate:
    """A budget of `cap` edits: refuses once the window holds that many."""

    def __init__(self, cap: int) -> None:
        self.cap = cap

    @property
    def since(self) -> float:
        return 0.0

    def check(self, recent: list[Edit]) -> None:
        if len(recent) >= self.cap:
            raise BudgetExceeded(f"{len(recent)} edits already")


async def test_two_replicas_cannot_both_slip_under_a_cap(
    pair: tuple[PostgresEditStore, PostgresEditStore],
) -> None:
    """30 different requests at once through two stores, a cap of 7: exactly 7 edits, 23 refusals."""
    gate = CapGate(7)
    results = await gather(
        *(pair[n % 2].add_unless_duplicate(make_edit(n), f"fp-{n}", 600, gate) for n in range(30))
    )
    assert sum(1 for r in results if r is None) == 7
    assert sum(1 for r in results if isinstance(r, BudgetExceeded)) == 23
    assert len((await pair[1].list_edits(limit=50))[0]) == 7


async def test_an_idempotency_key_is_taken_once_across_replicas(
    pair: tuple[PostgresEditStore, PostgresEditStore],
) -> None:
    results = await gather(*(pair[n % 2].add(make_edit(n, idempotency_key="k")) for n in range(10)))
    assert sum(1 for r in results if r is None) == 1
    assert sum(1 for r in results if isinstance(r, IdempotencyConflict)) == 9


async def test_a_providers_last_slots_go_to_exactly_as_many_claims(
    pair: tuple[PostgresEditStore, PostgresEditStore],
) -> None:
    """12 waiting edits claimed at once through two stores with a limit of 3: 3 claimed, 9 full."""
    for n in range(12):
        await pair[0].add(make_edit(n))
    results = await gather(*(pair[n % 2].claim_create(f"ed_{n:04d}", "kie", 3, 100.0) for n in range(12)))
    assert sorted(results) == ["claimed"] * 3 + ["full"] * 9
    again = await gather(*(pair[n % 2].claim_create("ed_0000", "kie", None, 100.0) for n in range(2)))
    assert set(again) <= {"gone"} or sorted(again) == ["claimed", "gone"]


async def test_concurrent_leases_through_two_replicas_have_one_winner(
    pair: tuple[PostgresEditStore, PostgresEditStore],
) -> None:
    await pair[0].add(make_edit(1))
    results = await gather(*(pair[n % 2].lease("ed_0001", f"owner-{n % 2}", 500.0, 100.0) for n in range(20)))
    winners = {n % 2 for n, ok in enumerate(results) if ok}
    assert len(winners) == 1
    assert sum(results) == 10  # every attempt of the winner: a renewal of its own lease


# -- announcements: changes and pokes reach every replica -----------------------------------------


class CountingStore(PostgresEditStore):
    """Counts its reads of recent changes: listening must not poll them."""

    reads = 0

    async def changed_since(
        self, since: float, limit: int = 200, *, after_id: str | None = None
    ) -> list[Edit]:
        self.reads += 1
        return await super().changed_since(since, limit, after_id=after_id)


async def test_a_change_on_one_replica_wakes_a_waiter_on_the_other_within_a_second(pg_url: str) -> None:
    """B saves; A's waiting watch wakes (well) within a second, and A never polled for changes."""
    ours = await CountingStore.open(pg_url)
    theirs = await PostgresEditStore.open(pg_url)
    feed, heard = ChangeFeed(), []

    async def on_new(edit: Edit) -> None:
        heard.append((edit.edit_id, edit.status))

    await theirs.add(make_edit(1, updated_at=time.time()))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: watch_store(ours, feed, 60.0, start=time.time(), on_new=on_new))
        with anyio.fail_after(5):
            while ours.reads == 0:  # the listener's first catch-up read: it is listening
                await anyio.sleep(0.01)
        for n in range(3):
            edit = await theirs.get("ed_0001")
            assert edit is not None
            edit.status, edit.updated_at = "running", time.time()
            with feed.watching("ed_0001") as watch:
                began = time.monotonic()
                await theirs.save(edit)
                assert await watch.wait(1.0), f"change {n} not heard within a second"
                assert time.monotonic() - began < 1.0
        tg.cancel_scope.cancel()
    assert ("ed_0001", "running") in heard
    assert ours.reads == 1  # the catch-up at connect; every change after it came as an announcement
    await ours.close()
    await theirs.close()


async def test_a_webhook_on_one_replica_pokes_the_poller_holding_the_lease_on_another(
    tmp_path: Path, pair: tuple[PostgresEditStore, PostgresEditStore]
) -> None:
    """A holds the lease; B takes the webhook (poll_soon): A's poller is poked, B's is not."""
    first, second = pair
    settings = make_settings(tmp_path)
    async with httpx2.AsyncClient() as http, anyio.create_task_group() as tg:
        apps = [build_app(settings, store, http, providers={}) for store in pair]
        for app in apps:
            watch = partial(watch_store, app.store, app.changes, 60.0, start=time.time(), on_poke=app.poked)
            tg.start_soon(watch)
        await first.add(make_edit(1, next_poll_at=time.time() + 60, provider_task_id="t", status="running"))
        now = time.time()
        assert await first.lease("ed_0001", apps[0].poller.owner, now + 60, now)
        await anyio.sleep(0.3)  # both listening
        await second.poll_soon("ed_0001", time.time())
        with anyio.fail_after(1):
            while "ed_0001" not in apps[0].poller._poked:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert "ed_0001" not in apps[1].poller._poked
    edit = await second.get("ed_0001")
    assert edit is not None and edit.next_poll_at is not None and edit.next_poll_at <= time.time()


async def test_only_saves_that_move_updated_at_are_announced(
    pair: tuple[PostgresEditStore, PostgresEditStore],
) -> None:
    """The poller's rescheduling saves (same updated_at) stay quiet; a visible change is heard once."""
    first, second = pair
    await first.add(make_edit(1))
    heard: list[Announcement] = []
    with anyio.fail_after(5):
        async with aclosing(second.announcements()) as stream:
            assert (await anext(stream)).kind == "resync"
            edit = await first.get("ed_0001")
            assert edit is not None
            edit.next_poll_at = 5000.0
            await first.save(edit)  # rescheduled only
            edit.status, edit.updated_at = "running", 2000.0
            await first.save(edit)
            heard.append(await anext(stream))
    assert heard == [Announcement("changed", "ed_0001", 2000.0)]


async def test_a_listener_whose_connection_dies_reconnects_and_catches_up(pg_url: str) -> None:
    """The database drops the listening connection; a change made meanwhile is still published."""
    ours, theirs = await PostgresEditStore.open(pg_url), await PostgresEditStore.open(pg_url)
    feed, heard = ChangeFeed(), anyio.Event()

    async def on_new(edit: Edit) -> None:
        if edit.edit_id == "ed_0002":
            heard.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(partial(watch_store, ours, feed, 60.0, start=time.time(), on_new=on_new))
        await anyio.sleep(0.3)
        killed = query(
            pg_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%%' "
            "AND datname = current_database()",
        )
        assert killed, "no listening connection to end"
        await theirs.add(make_edit(2, updated_at=time.time()))
        with anyio.fail_after(5):
            await heard.wait()
        tg.cancel_scope.cancel()
    await ours.close()
    await theirs.close()


async def test_connections_the_database_dropped_are_replaced_not_failed(pg_url: str) -> None:
    """After the server ends every connection of the pool (a restart, a failover), the next calls work."""
    store = await PostgresEditStore.open(pg_url)
    await store.add(make_edit(1))
    await gather(*(store.get("ed_0001") for _ in range(4)))  # a few connections in the pool
    ended = query(
        pg_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    assert ended
    assert [await store.get("ed_0001") for _ in range(6)] == [make_edit(1)] * 6
    await store.close()
