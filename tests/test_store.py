"""EditStore contract, run against the SQLite, in-memory and PostgreSQL stores; SQLite-only sharing tests
(PostgreSQL's are in test_store_postgres.py)."""

from __future__ import annotations

import base64
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from aleph_mcp.errors import InvalidInput
from aleph_mcp.models import Edit
from aleph_mcp.store import MIGRATIONS, EditStore, InMemoryEditStore, SQLiteEditStore
from aleph_mcp.store.postgres import PostgresEditStore


def make_edit(n: int, **fields: object) -> Edit:
    """A queued kie edit created at 1000 + n, with an id that sorts like n."""
    values: dict[str, Any] = {
        "edit_id": f"ed_{n:04d}",
        "provider": "kie",
        "model": "runway-aleph",
        "prompt": f"make clip {n} look like winter",
        "video": f"https://example.com/clip{n}.mp4",
        "created_at": 1000.0 + n,
        "updated_at": 1000.0 + n,
    }
    values.update(fields)
    return Edit(**values)


def full_edit() -> Edit:
    """An edit with every field set to a non-default value."""
    return Edit(
        edit_id="ed_full",
        provider="runway",
        model="gen4_aleph",
        prompt="turn the sky purple",
        video="data:video/mp4;base64,… (12345 bytes)",
        options={"aspect_ratio": "16:9", "seed": 42, "nested": {"a": [1, 2, None]}, "flag": True},
        status="running",
        provider_task_id="task-123",
        progress=0.25,
        output_url="https://cdn.example.com/out.mp4",
        thumbnail_url="https://cdn.example.com/out.jpg",
        local_path="/data/archive/ed_full.mp4",
        thumbnail_path="/data/archive/ed_full.jpg",
        error_code="provider_failed",
        error_message="the provider said no",
        notes="aspect ratio mapped to 1280:720",
        idempotency_key="key-full",
        created_at=1700000000.123456,
        updated_at=1700000010.654321,
        finished_at=1700000020.5,
        next_poll_at=1700000030.25,
        poll_failures=2,
        polls=7,
        parent_edit_id="ed_parent",
        trim_start=1.25,
        trim_end=3.5,
    )


async def open_kind(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> EditStore:
    """A fresh store of `kind`: sqlite (a file in tmp_path), memory, or postgres (a database of its own)."""
    if kind == "sqlite":
        return SQLiteEditStore(tmp_path / "s.sqlite3")
    if kind == "postgres":
        return await PostgresEditStore.open(request.getfixturevalue("pg_url"))
    return InMemoryEditStore()


@pytest.fixture(params=["sqlite", "memory", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EditStore]:
    """Each contract test runs once per implementation, with the same assertions."""
    the_store = await open_kind(request.param, tmp_path, request)
    yield the_store
    await the_store.close()


@pytest.fixture
async def shared_pair(tmp_path: Path) -> AsyncIterator[tuple[SQLiteEditStore, SQLiteEditStore]]:
    """Two SQLite stores on one file, as two server processes would open it."""
    path = tmp_path / "shared" / "edits.sqlite3"
    first, second = SQLiteEditStore(path), SQLiteEditStore(path)
    yield first, second
    await first.close()
    await second.close()


# -- add / get / save ------------------------------------------------------------------------------


async def test_an_added_edit_reads_back_with_every_field_intact(store: EditStore) -> None:
    """Every Edit field, the options dict and notes included, survives add and get unchanged."""
    edit = full_edit()
    await store.add(edit)
    assert await store.get("ed_full") == full_edit()


async def test_a_saved_edit_reads_back_with_every_changed_field(store: EditStore) -> None:
    """save writes every field back, including setting values to None and replacing options."""
    await store.add(full_edit())
    changed = replace(
        full_edit(),
        status="succeeded",
        options={"seed": 7},
        progress=None,
        output_url=None,
        error_code=None,
        error_message=None,
        notes="new note",
        updated_at=1700000099.0,
        next_poll_at=None,
        polls=8,
        poll_failures=0,
    )
    await store.save(changed)
    got = await store.get("ed_full")
    assert got == changed
    assert got is not None
    assert got.options == {"seed": 7}
    assert got.notes == "new note"


async def test_an_edit_with_default_fields_reads_back_with_the_defaults(store: EditStore) -> None:
    """Optional fields left at their defaults come back as None, zero and an empty options dict."""
    await store.add(make_edit(1))
    got = await store.get("ed_0001")
    assert got == make_edit(1)
    assert got is not None
    assert (got.options, got.status, got.provider_task_id, got.idempotency_key) == ({}, "queued", None, None)


async def test_getting_an_unknown_edit_returns_none(store: EditStore) -> None:
    """get of an id nobody added is None, not an error."""
    await store.add(make_edit(1))
    assert await store.get("ed_missing") is None


async def test_changing_a_returned_edit_does_not_change_the_stored_one(store: EditStore) -> None:
    """The store hands out copies: mutating one, nested options included, needs a save to persist."""
    await store.add(full_edit())
    got = await store.get("ed_full")
    assert got is not None
    got.status = "failed"
    got.options["nested"]["a"].append(3)
    again = await store.get("ed_full")
    assert again == full_edit()


async def test_saving_an_edit_that_was_never_added_stores_nothing(store: EditStore) -> None:
    """save only updates: an unknown edit does not appear."""
    await store.save(make_edit(5))
    assert await store.get("ed_0005") is None
    assert await store.list_edits() == ([], None)


async def test_adding_the_same_edit_id_twice_is_refused(store: EditStore) -> None:
    """A second add with an existing edit_id raises InvalidInput and keeps the first edit."""
    await store.add(make_edit(1))
    with pytest.raises(InvalidInput, match="ed_0001"):
        await store.add(make_edit(1, prompt="other"))
    got = await store.get("ed_0001")
    assert got is not None
    assert got.prompt == "make clip 1 look like winter"


# -- idempotency keys ------------------------------------------------------------------------------


async def test_a_second_edit_with_the_same_idempotency_key_is_refused(store: EditStore) -> None:
    """Idempotency keys are unique: the second add raises InvalidInput and is not stored."""
    await store.add(make_edit(1, idempotency_key="k-1"))
    with pytest.raises(InvalidInput, match="k-1"):
        await store.add(make_edit(2, idempotency_key="k-1"))
    assert await store.get("ed_0002") is None


async def test_an_edit_is_found_by_its_idempotency_key(store: EditStore) -> None:
    """get_by_idempotency_key returns the edit holding the key, and None for an unused key."""
    await store.add(make_edit(1, idempotency_key="k-1"))
    await store.add(make_edit(2, idempotency_key="k-2"))
    found = await store.get_by_idempotency_key("k-2")
    assert found is not None
    assert found.edit_id == "ed_0002"
    assert await store.get_by_idempotency_key("k-3") is None


async def test_edits_without_an_idempotency_key_never_collide(store: EditStore) -> None:
    """Many edits may have no key at all."""
    for n in range(3):
        await store.add(make_edit(n))
    edits, _ = await store.list_edits()
    assert [e.edit_id for e in edits] == ["ed_0002", "ed_0001", "ed_0000"]


# -- list_edits ------------------------------------------------------------------------------------


async def test_edits_are_listed_newest_first(store: EditStore) -> None:
    """list_edits orders by created_at descending, whatever the insertion order."""
    for n in (3, 1, 4, 2):
        await store.add(make_edit(n))
    edits, next_cursor = await store.list_edits()
    assert [e.edit_id for e in edits] == ["ed_0004", "ed_0003", "ed_0002", "ed_0001"]
    assert next_cursor is None


async def test_edits_are_filtered_by_status_and_provider(store: EditStore) -> None:
    """status and provider filter on their own and together."""
    await store.add(make_edit(1, status="succeeded", provider="kie"))
    await store.add(make_edit(2, status="running", provider="kie"))
    await store.add(make_edit(3, status="succeeded", provider="krea"))
    await store.add(make_edit(4, status="failed", provider="krea"))

    async def ids(**filters: Any) -> list[str]:
        edits, _ = await store.list_edits(**filters)
        return [e.edit_id for e in edits]

    assert await ids(status="succeeded") == ["ed_0003", "ed_0001"]
    assert await ids(provider="krea") == ["ed_0004", "ed_0003"]
    assert await ids(status="succeeded", provider="kie") == ["ed_0001"]
    assert await ids(status="cancelled") == []


async def test_edits_are_filtered_by_parent_and_its_fields_survive_a_save(store: EditStore) -> None:
    """parent= lists the edits made from that edit's output, with their trims, newest first, pages too."""
    await store.add(make_edit(1))
    await store.add(make_edit(2, parent_edit_id="ed_0001", trim_start=0.5, trim_end=2.0))
    await store.add(make_edit(3, parent_edit_id="ed_0002"))
    await store.add(make_edit(4, parent_edit_id="ed_0001"))
    first, cursor = await store.list_edits(parent="ed_0001", limit=1)
    rest, end = await store.list_edits(parent="ed_0001", cursor=cursor)
    assert [e.edit_id for e in first + rest] == ["ed_0004", "ed_0002"] and end is None
    assert (rest[0].trim_start, rest[0].trim_end) == (0.5, 2.0)
    assert [e.edit_id for e in (await store.list_edits(parent="ed_0004"))[0]] == []
    assert [e.edit_id for e in (await store.list_edits(parent="ed_0001", status="failed"))[0]] == []


async def test_paging_through_45_edits_in_pages_of_20_sees_each_once(store: EditStore) -> None:
    """The cursor walks 20, 20, 5 edits newest first with no duplicates or gaps, then stops."""
    for n in range(45):
        await store.add(make_edit(n))
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        edits, cursor = await store.list_edits(limit=20, cursor=cursor)
        pages.append([e.edit_id for e in edits])
        if cursor is None:
            break
    assert [len(p) for p in pages] == [20, 20, 5]
    seen = [edit_id for page in pages for edit_id in page]
    assert seen == [f"ed_{n:04d}" for n in reversed(range(45))]


async def test_a_page_that_ends_exactly_at_the_last_edit_has_no_next_cursor(store: EditStore) -> None:
    """With exactly `limit` edits there is no further page to offer."""
    for n in range(20):
        await store.add(make_edit(n))
    edits, next_cursor = await store.list_edits(limit=20)
    assert len(edits) == 20
    assert next_cursor is None


async def test_paging_combines_with_filters(store: EditStore) -> None:
    """The cursor keeps the filter's view: only matching edits, in order, across pages."""
    for n in range(10):
        await store.add(make_edit(n, provider="krea" if n % 2 else "kie"))
    first, cursor = await store.list_edits(provider="krea", limit=3)
    assert cursor is not None
    second, end = await store.list_edits(provider="krea", limit=3, cursor=cursor)
    assert [e.edit_id for e in first] == ["ed_0009", "ed_0007", "ed_0005"]
    assert [e.edit_id for e in second] == ["ed_0003", "ed_0001"]
    assert end is None


async def test_edits_created_at_the_same_instant_are_ordered_by_id(store: EditStore) -> None:
    """Identical created_at ties break on edit_id (descending), and paging across the tie loses nothing."""
    for n in (2, 5, 1, 4, 3):
        await store.add(make_edit(n, created_at=5000.0))
    await store.add(make_edit(9, created_at=4000.0))
    first, cursor = await store.list_edits(limit=2)
    second, cursor2 = await store.list_edits(limit=2, cursor=cursor)
    third, end = await store.list_edits(limit=2, cursor=cursor2)
    assert [e.edit_id for e in first] == ["ed_0005", "ed_0004"]
    assert [e.edit_id for e in second] == ["ed_0003", "ed_0002"]
    assert [e.edit_id for e in third] == ["ed_0001", "ed_0009"]
    assert end is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "",
        "!!!!",
        base64.urlsafe_b64encode(b"123").decode(),
        base64.urlsafe_b64encode(b"yesterday|ed_0001").decode(),
        base64.urlsafe_b64encode(b"nan|ed_0001").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe|x").decode(),
    ],
)
async def test_a_cursor_the_server_never_gave_out_is_refused(store: EditStore, cursor: str) -> None:
    """A garbage cursor raises InvalidInput telling the caller to start over."""
    await store.add(make_edit(1))
    with pytest.raises(InvalidInput, match="without it"):
        await store.list_edits(cursor=cursor)


async def test_a_limit_below_one_is_refused(store: EditStore) -> None:
    """list_edits(limit=0) raises InvalidInput rather than crashing or returning everything."""
    await store.add(make_edit(1))
    with pytest.raises(InvalidInput, match="limit"):
        await store.list_edits(limit=0)


# -- due_for_poll ----------------------------------------------------------------------------------


async def test_only_edits_whose_poll_time_has_come_are_due(store: EditStore) -> None:
    """due_for_poll returns unfinished edits with next_poll_at <= now, earliest first."""
    await store.add(make_edit(1, next_poll_at=100.0, status="running", provider_task_id="t1"))
    await store.add(make_edit(2, next_poll_at=50.0, provider_task_id="t2"))
    await store.add(make_edit(3, next_poll_at=150.0, provider_task_id="t3"))  # exactly now
    await store.add(make_edit(4, next_poll_at=150.5, provider_task_id="t4"))  # future
    await store.add(make_edit(5, next_poll_at=None, provider_task_id="t5"))  # not scheduled
    await store.add(make_edit(6, status="succeeded", next_poll_at=None, finished_at=90.0))
    due = await store.due_for_poll(150.0, limit=10)
    assert [e.edit_id for e in due] == ["ed_0002", "ed_0001", "ed_0003"]


async def test_a_finished_edit_is_never_due_even_with_a_stale_poll_time(store: EditStore) -> None:
    """Terminal edits are not polled, so they cannot crowd real work out of the limit."""
    for n, status in enumerate(("succeeded", "failed", "cancelled")):
        await store.add(make_edit(n, status=status, next_poll_at=10.0))
    await store.add(make_edit(9, status="running", next_poll_at=20.0, provider_task_id="t"))
    due = await store.due_for_poll(100.0, limit=1)
    assert [e.edit_id for e in due] == ["ed_0009"]


async def test_due_for_poll_returns_at_most_limit_edits(store: EditStore) -> None:
    """The earliest `limit` due edits come back."""
    for n in range(6):
        await store.add(make_edit(n, next_poll_at=100.0 - n, provider_task_id=f"t{n}"))
    due = await store.due_for_poll(200.0, limit=3)
    assert [e.edit_id for e in due] == ["ed_0005", "ed_0004", "ed_0003"]


async def test_a_leased_edit_is_not_due_until_its_lease_expires(store: EditStore) -> None:
    """An edit someone holds is skipped; once the lease has lapsed it is due again."""
    await store.add(make_edit(1, next_poll_at=100.0, provider_task_id="t1"))
    await store.add(make_edit(2, next_poll_at=100.0, provider_task_id="t2"))
    assert await store.lease("ed_0001", "proc-a", until=300.0, now=150.0)
    assert [e.edit_id for e in await store.due_for_poll(200.0, limit=10)] == ["ed_0002"]
    assert [e.edit_id for e in await store.due_for_poll(301.0, limit=10)] == ["ed_0001", "ed_0002"]


async def test_a_released_edit_is_due_again(store: EditStore) -> None:
    """release makes the edit available before its lease would have expired."""
    await store.add(make_edit(1, next_poll_at=100.0, provider_task_id="t1"))
    assert await store.lease("ed_0001", "proc-a", until=300.0, now=150.0)
    await store.release("ed_0001", "proc-a")
    assert [e.edit_id for e in await store.due_for_poll(200.0, limit=10)] == ["ed_0001"]


# -- lease_due / save_many (the poller's batched round trips) --------------------------------------


async def test_lease_due_leases_the_earliest_due_edits_and_returns_them(store: EditStore) -> None:
    """Up to `limit` due, unfinished, unleased edits, earliest first, each now held by the caller."""
    await store.add(make_edit(1, next_poll_at=100.0, status="running", provider_task_id="t1"))
    await store.add(make_edit(2, next_poll_at=50.0, provider_task_id="t2"))
    await store.add(make_edit(3, next_poll_at=150.0, provider_task_id="t3"))
    await store.add(make_edit(4, next_poll_at=150.5, provider_task_id="t4"))  # not due yet
    await store.add(make_edit(5, next_poll_at=None, provider_task_id="t5"))  # not scheduled
    await store.add(make_edit(6, status="succeeded", next_poll_at=10.0, finished_at=90.0))
    await store.add(make_edit(7, next_poll_at=60.0, provider_task_id="t7"))
    assert await store.lease("ed_0007", "other", until=400.0, now=150.0)  # held by someone else
    leased = await store.lease_due(150.0, "me", 300.0, limit=2)
    assert [e.edit_id for e in leased] == ["ed_0002", "ed_0001"]
    assert leased[1] == make_edit(1, next_poll_at=100.0, status="running", provider_task_id="t1")
    assert [e.edit_id for e in await store.due_for_poll(150.0, limit=10)] == ["ed_0003"]
    assert await store.lease("ed_0002", "other", until=400.0, now=200.0) is False  # mine until 300
    assert [e.edit_id for e in await store.lease_due(150.0, "me", 300.0, limit=5)] == ["ed_0003"]
    assert await store.lease_due(150.0, "me", 300.0, limit=5) == []  # none left


async def test_an_edit_leased_by_lease_due_is_drawn_again_once_the_lease_lapses(store: EditStore) -> None:
    """A crashed drawer blocks nobody: after `until` the edit is due for the next caller."""
    await store.add(make_edit(1, next_poll_at=100.0, provider_task_id="t1"))
    assert len(await store.lease_due(150.0, "crashed", 200.0, limit=1)) == 1
    assert await store.lease_due(199.0, "next", 400.0, limit=1) == []
    assert [e.edit_id for e in await store.lease_due(201.0, "next", 400.0, limit=1)] == ["ed_0001"]


async def test_save_many_writes_every_edit_and_releases_the_holders_leases(store: EditStore) -> None:
    """Every field written back; the holder's leases end; another holder's lease stays; unknown skipped."""
    for n in range(3):
        await store.add(make_edit(n, next_poll_at=100.0, provider_task_id=f"t{n}"))
    mine = await store.lease_due(150.0, "me", 300.0, limit=2)
    assert await store.lease("ed_0002", "other", until=300.0, now=150.0)
    theirs = await store.get("ed_0002")
    assert theirs is not None
    changed = [replace(e, status="running", progress=0.5, polls=e.polls + 1) for e in [*mine, theirs]]
    await store.save_many([*changed, make_edit(9)], release="me")
    for edit in changed:
        assert await store.get(edit.edit_id) == edit
    assert await store.get("ed_0009") is None
    assert await store.lease("ed_0000", "third", until=300.0, now=160.0)  # released
    assert await store.lease("ed_0001", "third", until=300.0, now=160.0)
    assert await store.lease("ed_0002", "third", until=300.0, now=160.0) is False  # still "other"'s
    await store.save_many([])


async def test_save_many_without_release_keeps_the_leases(store: EditStore) -> None:
    await store.add(make_edit(1, next_poll_at=100.0, provider_task_id="t1"))
    (edit,) = await store.lease_due(150.0, "me", 300.0, limit=1)
    await store.save_many([replace(edit, next_poll_at=120.0)])
    assert await store.due_for_poll(200.0, limit=10) == []
    assert await store.lease("ed_0001", "other", until=400.0, now=200.0) is False


# -- lease / release -------------------------------------------------------------------------------


async def test_a_lease_is_exclusive_until_it_expires(store: EditStore) -> None:
    """A gets the lease; B is refused while it runs and gets it once it has expired."""
    await store.add(make_edit(1))
    assert await store.lease("ed_0001", "A", until=200.0, now=100.0) is True
    assert await store.lease("ed_0001", "B", until=250.0, now=150.0) is False
    assert await store.lease("ed_0001", "B", until=250.0, now=200.0) is False  # not yet past `until`
    assert await store.lease("ed_0001", "B", until=300.0, now=200.5) is True
    assert await store.lease("ed_0001", "A", until=400.0, now=250.0) is False


async def test_the_holder_can_renew_its_own_lease(store: EditStore) -> None:
    """Leasing again as the owner succeeds and moves the expiry."""
    await store.add(make_edit(1))
    assert await store.lease("ed_0001", "A", until=200.0, now=100.0)
    assert await store.lease("ed_0001", "A", until=500.0, now=150.0)
    assert await store.lease("ed_0001", "B", until=600.0, now=300.0) is False
    assert await store.lease("ed_0001", "B", until=600.0, now=501.0) is True


async def test_a_lease_is_free_for_others_once_its_holder_releases_it(store: EditStore) -> None:
    """After A releases, B can lease at once."""
    await store.add(make_edit(1))
    assert await store.lease("ed_0001", "A", until=200.0, now=100.0)
    await store.release("ed_0001", "A")
    assert await store.lease("ed_0001", "B", until=200.0, now=110.0) is True


async def test_release_by_someone_else_leaves_the_lease_in_place(store: EditStore) -> None:
    """Only the holder can release: B's release does not free A's lease."""
    await store.add(make_edit(1))
    assert await store.lease("ed_0001", "A", until=200.0, now=100.0)
    await store.release("ed_0001", "B")
    await store.release("ed_0001", "")
    assert await store.lease("ed_0001", "B", until=200.0, now=110.0) is False
    assert await store.lease("ed_0001", "A", until=200.0, now=110.0) is True


async def test_releasing_an_edit_nobody_holds_does_nothing(store: EditStore) -> None:
    """release without a lease, or of an unknown edit, is harmless."""
    await store.add(make_edit(1))
    await store.release("ed_0001", "A")
    await store.release("ed_0001", "")
    await store.release("ed_missing", "A")
    assert await store.lease("ed_0001", "B", until=200.0, now=110.0) is True


async def test_leasing_an_unknown_edit_fails(store: EditStore) -> None:
    """There is nothing to claim for an id that does not exist."""
    assert await store.lease("ed_missing", "A", until=200.0, now=100.0) is False


async def test_saving_an_edit_keeps_its_lease(store: EditStore) -> None:
    """save writes edit fields only: the lease stays with its holder."""
    await store.add(make_edit(1, next_poll_at=100.0, provider_task_id="t1"))
    assert await store.lease("ed_0001", "A", until=300.0, now=100.0)
    edit = await store.get("ed_0001")
    assert edit is not None
    edit.status, edit.polls = "running", 1
    await store.save(edit)
    assert await store.lease("ed_0001", "B", until=400.0, now=200.0) is False
    assert await store.due_for_poll(200.0, limit=10) == []
    saved = await store.get("ed_0001")
    assert saved is not None
    assert (saved.status, saved.polls) == ("running", 1)


# -- changed_since / unsubmitted -------------------------------------------------------------------


async def test_changed_since_returns_later_updates_oldest_first(store: EditStore) -> None:
    """Edits updated strictly after `since` come back in update order, up to `limit`."""
    await store.add(make_edit(1, updated_at=30.0))
    await store.add(make_edit(2, updated_at=10.0))
    await store.add(make_edit(3, updated_at=20.0))
    await store.add(make_edit(4, updated_at=40.0))
    assert [e.edit_id for e in await store.changed_since(15.0)] == ["ed_0003", "ed_0001", "ed_0004"]
    assert [e.edit_id for e in await store.changed_since(20.0, limit=1)] == ["ed_0001"]
    assert await store.changed_since(40.0) == []


async def test_changed_since_sees_a_saved_update(store: EditStore) -> None:
    """A save that moves updated_at makes the edit show up as changed."""
    await store.add(make_edit(1, updated_at=10.0))
    edit = await store.get("ed_0001")
    assert edit is not None
    edit.updated_at, edit.status = 50.0, "running"
    await store.save(edit)
    changed = await store.changed_since(20.0)
    assert [(e.edit_id, e.status) for e in changed] == [("ed_0001", "running")]


async def test_unsubmitted_lists_unfinished_edits_without_a_task_id(store: EditStore) -> None:
    """Edits never handed to a provider, and not already ended, are the unsubmitted ones."""
    await store.add(make_edit(1))
    await store.add(make_edit(2, status="running"))
    await store.add(make_edit(3, provider_task_id="t3"))
    await store.add(make_edit(4, status="failed"))
    await store.add(make_edit(5, status="cancelled"))
    await store.add(make_edit(6, status="succeeded", provider_task_id="t6"))
    assert sorted(e.edit_id for e in await store.unsubmitted()) == ["ed_0001", "ed_0002"]


# -- SQLite only: several processes on one file ----------------------------------------------------


async def test_two_stores_on_one_file_see_each_others_edits(
    shared_pair: tuple[SQLiteEditStore, SQLiteEditStore],
) -> None:
    """An edit added or saved through one connection is visible through the other."""
    first, second = shared_pair
    await first.add(make_edit(1))
    await second.add(make_edit(2, idempotency_key="k"))
    from_second = await second.get("ed_0001")
    assert from_second == make_edit(1)
    assert from_second is not None
    from_second.status = "running"
    await second.save(from_second)
    again = await first.get("ed_0001")
    assert again is not None
    assert again.status == "running"
    edits, _ = await first.list_edits()
    assert [e.edit_id for e in edits] == ["ed_0002", "ed_0001"]
    with pytest.raises(InvalidInput):
        await first.add(make_edit(3, idempotency_key="k"))


async def test_a_lease_is_exclusive_across_two_stores_on_one_file(
    shared_pair: tuple[SQLiteEditStore, SQLiteEditStore],
) -> None:
    """A lease taken through one connection blocks the other until released or expired."""
    first, second = shared_pair
    await first.add(make_edit(1, next_poll_at=100.0, provider_task_id="t"))
    assert await first.lease("ed_0001", "proc-1", until=200.0, now=100.0)
    assert await second.lease("ed_0001", "proc-2", until=200.0, now=150.0) is False
    assert await second.due_for_poll(150.0, limit=10) == []
    await second.release("ed_0001", "proc-2")
    assert await second.lease("ed_0001", "proc-2", until=300.0, now=201.0) is True
    assert await first.lease("ed_0001", "proc-1", until=300.0, now=250.0) is False
    await second.release("ed_0001", "proc-2")
    assert await first.lease("ed_0001", "proc-1", until=300.0, now=250.0) is True


async def test_concurrent_leases_from_two_stores_have_exactly_one_winner(
    shared_pair: tuple[SQLiteEditStore, SQLiteEditStore],
) -> None:
    """20 simultaneous lease attempts by two owners on two connections: exactly one owner ever wins."""
    first, second = shared_pair
    await first.add(make_edit(1))
    results: list[tuple[str, bool]] = []

    async def attempt(store: SQLiteEditStore, owner: str) -> None:
        results.append((owner, await store.lease("ed_0001", owner, until=500.0, now=100.0)))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for i in range(20):
                if i % 2:
                    tg.start_soon(attempt, first, "owner-1")
                else:
                    tg.start_soon(attempt, second, "owner-2")
    assert len(results) == 20
    winners = {owner for owner, ok in results if ok}
    assert len(winners) == 1
    winner = winners.pop()
    loser = "owner-2" if winner == "owner-1" else "owner-1"
    assert all(ok for owner, ok in results if owner == winner)
    assert not any(ok for owner, ok in results if owner == loser)
    assert await first.lease("ed_0001", loser, until=600.0, now=400.0) is False


async def test_concurrent_draws_from_two_stores_never_hand_out_one_edit_twice(
    shared_pair: tuple[SQLiteEditStore, SQLiteEditStore],
) -> None:
    """Two processes drawing 7 at a time from 100 due edits: every edit goes to exactly one of them."""
    first, second = shared_pair
    for n in range(100):
        await first.add(make_edit(n, next_poll_at=100.0 + n % 7, provider_task_id=f"t{n}"))
    drawn: dict[str, list[str]] = {"one": [], "two": []}

    async def draw(store: SQLiteEditStore, owner: str) -> None:
        while batch := await store.lease_due(200.0, owner, 500.0, limit=7):
            drawn[owner] += [e.edit_id for e in batch]

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(draw, first, "one")
            tg.start_soon(draw, second, "two")
    everything = drawn["one"] + drawn["two"]
    assert sorted(everything) == [f"ed_{n:04d}" for n in range(100)]  # each once, none twice


async def test_edits_survive_closing_and_reopening_the_file(tmp_path: Path) -> None:
    """State lives in the file: a new store on the same path finds the edit and its lease."""
    path = tmp_path / "s.sqlite3"
    store = SQLiteEditStore(path)
    await store.add(full_edit())
    assert await store.lease("ed_full", "A", until=200.0, now=100.0)
    await store.close()
    reopened = SQLiteEditStore(path)
    try:
        assert await reopened.get("ed_full") == full_edit()
        assert await reopened.lease("ed_full", "B", until=200.0, now=150.0) is False
    finally:
        await reopened.close()


async def test_opening_a_file_twice_migrates_it_once(tmp_path: Path) -> None:
    """The second open finds the schema current; user_version equals the number of migrations."""
    path = tmp_path / "s.sqlite3"
    first = SQLiteEditStore(path)
    await first.add(make_edit(1))
    await first.close()
    second = SQLiteEditStore(path)
    try:
        assert await second.get("ed_0001") == make_edit(1)
    finally:
        await second.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    finally:
        db.close()


async def test_the_file_uses_wal_and_has_its_indexes(tmp_path: Path) -> None:
    """journal_mode is persisted as WAL and the listing and polling indexes exist."""
    path = tmp_path / "s.sqlite3"
    store = SQLiteEditStore(path)
    await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        db.close()
    assert {"edits_newest", "edits_due", "edits_updated"} <= names


async def test_the_store_creates_missing_parent_directories(tmp_path: Path) -> None:
    """A fresh data dir needs no setup: the store makes its folder."""
    path = tmp_path / "a" / "b" / "edits.sqlite3"
    store = SQLiteEditStore(path)
    try:
        await store.add(make_edit(1))
    finally:
        await store.close()
    assert path.is_file()


CHILD = """
import sys
from pathlib import Path

import anyio

from aleph_mcp.store import SQLiteEditStore


async def main() -> None:
    store = SQLiteEditStore(Path(sys.argv[1]))
    ok = await store.lease(sys.argv[2], "child-process", until=2000.0, now=1000.0)
    await store.close()
    sys.stdout.write("leased" if ok else "refused")


anyio.run(main)
"""


async def test_a_lease_taken_by_another_process_blocks_this_one(tmp_path: Path) -> None:
    """A real second Python process leases an edit in the shared file; this process cannot take it."""
    path = tmp_path / "edits.sqlite3"
    store = SQLiteEditStore(path)
    try:
        await store.add(make_edit(1, next_poll_at=900.0, provider_task_id="t"))
        with anyio.fail_after(60):
            result = await anyio.run_process([sys.executable, "-c", CHILD, str(path), "ed_0001"])
        assert result.stdout.decode() == "leased"
        assert await store.lease("ed_0001", "parent", until=1600.0, now=1500.0) is False
        assert await store.due_for_poll(1500.0, limit=10) == []
        assert await store.lease("ed_0001", "parent", until=2600.0, now=2001.0) is True
    finally:
        await store.close()


async def test_close_in_a_cancelled_scope_still_closes_the_file(tmp_path: Path) -> None:
    """A server or CLI ended by cancellation closes its store: no connection is left for the GC to find."""
    store = SQLiteEditStore(tmp_path / "s.sqlite3")
    with anyio.CancelScope() as scope:
        scope.cancel()
        await store.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store._db.execute("SELECT 1")


class BusyReader:
    """Stands in for the store's event-loop reader when SQLite would make it wait (a recovery, a lock)."""

    def execute(self, sql: str, params: Any = ()) -> Any:
        raise sqlite3.OperationalError("database is locked")

    def close(self) -> None:
        return None


async def test_a_get_the_event_loop_cannot_serve_at_once_is_read_in_a_thread(tmp_path: Path) -> None:
    """The quick read on the loop gives way to the worker-thread read: the edit is still found."""
    store = SQLiteEditStore(tmp_path / "edits.sqlite3")
    await store.add(Edit("ed_1", "local", "ffmpeg", "p", "v"))
    reader = store._reader
    store._reader = BusyReader()  # type: ignore[assignment]
    found = await store.get("ed_1")
    reader.close()
    await store.close()
    assert found is not None and found.edit_id == "ed_1"


async def test_a_page_the_event_loop_cannot_serve_at_once_is_read_in_a_thread(tmp_path: Path) -> None:
    """list_edits' page, also read on the loop, gives way to the worker thread the same way: same page,
    same cursor."""
    store = SQLiteEditStore(tmp_path / "edits.sqlite3")
    for n in range(3):
        await store.add(
            Edit(f"ed_{n}", "local", "ffmpeg", "p", "v", created_at=float(n), updated_at=float(n))
        )
    quick = await store.list_edits(limit=2)
    reader = store._reader
    store._reader = BusyReader()  # type: ignore[assignment]
    waited = await store.list_edits(limit=2)
    reader.close()
    await store.close()
    assert [e.edit_id for e in waited[0]] == [e.edit_id for e in quick[0]] == ["ed_2", "ed_1"]
    assert waited[1] == quick[1] is not None


async def test_a_page_sees_what_another_connection_just_committed(tmp_path: Path) -> None:
    """The loop's reader lists the newest commit of any writer on the file, as a get reads it."""
    path = tmp_path / "edits.sqlite3"
    first, second = SQLiteEditStore(path), SQLiteEditStore(path)
    await first.list_edits(limit=5)  # the reader has read before the other connection writes
    await second.add(Edit("ed_1", "local", "ffmpeg", "p", "v"))
    listed, _ = await first.list_edits(limit=5)
    await first.close()
    await second.close()
    assert [e.edit_id for e in listed] == ["ed_1"]


async def test_a_get_sees_what_another_connection_just_committed(tmp_path: Path) -> None:
    """The loop's reader reads the newest commit of any writer on the file (another process, say)."""
    path = tmp_path / "edits.sqlite3"
    first, second = SQLiteEditStore(path), SQLiteEditStore(path)
    await second.add(Edit("ed_1", "local", "ffmpeg", "p", "v"))
    seen = [await first.get("ed_1")]
    edit = await second.get("ed_1")
    assert edit is not None
    edit.status = "succeeded"
    await second.save(edit)
    seen.append(await first.get("ed_1"))
    await first.close()
    await second.close()
    assert [e.status if e else None for e in seen] == ["queued", "succeeded"]
