"""Duplicate requests: an identical call within ten minutes returns the earlier edit instead of a new bill."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest
from mcp import Client

from aleph_mcp.edits.requests import DUPLICATE_WINDOW, EditArgs
from aleph_mcp.edits.service import EditService
from aleph_mcp.errors import AlephError
from aleph_mcp.models import Edit, EditRequest, EditStatus
from aleph_mcp.providers.base import Provider
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.server import create_server
from aleph_mcp.store import EditStore, InMemoryEditStore, SQLiteEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.base import Fault
from .fakes.clock import FakeClock
from .fakes.runway import FakeRunway
from .fakes.stub import StubProvider
from .media import make_clip
from .test_store import open_kind

VIDEO = "https://cdn.example.com/in/clip.mp4"
BASE = "http://fake.invalid"
CLIP = base64.b64encode(b"\x00\x00\x00\x18ftypmp42" + bytes(range(200))).decode()


@dataclass
class Rig:
    fake: FakeRunway
    service: EditService
    store: EditStore
    clock: FakeClock


@asynccontextmanager
async def rig(tmp_path: Path, store: EditStore | None = None) -> AsyncIterator[Rig]:
    fake, clock = FakeRunway(TEST_KEY), FakeClock()
    the_store = store or InMemoryEditStore()
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = RunwayProvider(client, api_key=TEST_KEY, base_url=BASE)
        settings = make_settings(tmp_path, runway_api_key=TEST_KEY)
        service = EditService(the_store, {"runway": provider}, settings, owner="p1", clock=clock)
        yield Rig(fake, service, the_store, clock)


def args(**kwargs: Any) -> EditArgs:
    return EditArgs(**{"prompt": "Make it winter", "video": VIDEO, "provider": "runway", **kwargs})


async def test_an_identical_request_within_ten_minutes_returns_the_earlier_edit(tmp_path: Path) -> None:
    """Same provider, model, prompt, video and options nine minutes later: the same edit, one create."""
    async with rig(tmp_path) as r:
        first, first_dup = await r.service.submit(args(seed=7, aspect_ratio="16:9"))
        r.clock.now += 9 * 60
        second, second_dup = await r.service.submit(args(seed=7, aspect_ratio="16:9"))
    assert (first_dup, second_dup) == (False, True)
    assert second.edit_id == first.edit_id
    assert second.provider_task_id == first.provider_task_id
    assert len(r.fake.creates) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "Make it summer"},
        {"seed": 8},
        {"aspect_ratio": "9:16"},
        {"video": "https://cdn.example.com/in/other.mp4"},
        {"model": "gen4_aleph"},
        {"allow_duplicate": True},
    ],
    ids=["prompt", "seed", "aspect-ratio", "video", "model", "allow-duplicate"],
)
async def test_a_request_that_differs_or_allows_duplicates_is_a_new_edit(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    """Any changed argument, or allow_duplicate=True, starts a second edit with its own create."""
    async with rig(tmp_path) as r:
        first, _ = await r.service.submit(args(seed=7, aspect_ratio="16:9"))
        second, duplicate = await r.service.submit(args(**{"seed": 7, "aspect_ratio": "16:9", **change}))
    assert duplicate is False
    assert second.edit_id != first.edit_id
    assert len(r.fake.creates) == 2


async def test_an_identical_request_after_the_window_is_a_new_edit(tmp_path: Path) -> None:
    """Just past ten minutes the same request is taken as meant: a new, separately billed edit."""
    async with rig(tmp_path) as r:
        first, _ = await r.service.submit(args())
        r.clock.now += DUPLICATE_WINDOW + 1
        second, duplicate = await r.service.submit(args())
    assert duplicate is False
    assert second.edit_id != first.edit_id
    assert len(r.fake.creates) == 2


async def test_a_failed_earlier_edit_is_not_returned_as_the_duplicate(tmp_path: Path) -> None:
    """A request that went nowhere (refused by the vendor) may be asked again at once."""
    async with rig(tmp_path) as r:
        r.fake.inject(Fault(kind="create", status=400, body={"error": "Validation of body failed"}))
        with pytest.raises(AlephError):
            await r.service.submit(args())
        again, duplicate = await r.service.submit(args())
    assert (again.status, duplicate) == ("queued", False)
    assert len(r.fake.creates) == 2


async def test_a_fresh_idempotency_key_asks_for_a_new_edit_even_for_an_identical_request(
    tmp_path: Path,
) -> None:
    """The key names the request: a new key is a new edit, the same key the same edit, at any age."""
    async with rig(tmp_path) as r:
        first, _ = await r.service.submit(args(idempotency_key="a"))
        second, second_dup = await r.service.submit(args(idempotency_key="b"))
        r.clock.now += 30 * 24 * 3600
        again, again_dup = await r.service.submit(args(idempotency_key="a"))
    assert (second_dup, again_dup) == (False, True)
    assert second.edit_id != first.edit_id
    assert again.edit_id == first.edit_id
    assert len(r.fake.creates) == 2


@pytest.mark.parametrize("kind", ["sqlite", "memory", "postgres"])
async def test_data_uris_match_by_content_and_their_data_is_never_stored(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """The same bytes are a duplicate, other bytes of the same size are not; the DB holds no payload."""
    store = await open_kind(kind, tmp_path, request)
    other = base64.b64encode(b"\x00\x00\x00\x18ftypmp42" + bytes(range(1, 201))).decode()
    async with rig(tmp_path, store) as r:
        first, _ = await r.service.submit(args(video=f"data:video/mp4;base64,{CLIP}"))
        same, same_dup = await r.service.submit(args(video=f"data:video/mp4;base64,{CLIP}"))
        changed, changed_dup = await r.service.submit(args(video=f"data:video/mp4;base64,{other}"))
    await store.close()
    assert (same.edit_id, same_dup) == (first.edit_id, True)
    assert (changed_dup, changed.edit_id != first.edit_id) == (False, True)
    assert len(r.fake.creates) == 2
    if kind == "sqlite":
        # closing(): a connection's own `with` only commits; left open it is a ResourceWarning on 3.13.
        with closing(sqlite3.connect(tmp_path / "s.sqlite3")) as db:
            rows = repr(db.execute("SELECT * FROM edits").fetchall())
            prints = {row[0] for row in db.execute("SELECT fingerprint FROM edits")}
        assert CLIP[:40] not in rows and other[:40] not in rows
        assert len(prints) == 2 and all(p is not None and len(p) == 64 for p in prints)
    if kind == "postgres":
        with psycopg.connect(request.getfixturevalue("pg_url")) as db:
            rows = repr(db.execute("SELECT * FROM edits").fetchall())
            prints = {row[0] for row in db.execute("SELECT fingerprint FROM edits")}
        assert CLIP[:40] not in rows and other[:40] not in rows
        assert len(prints) == 2 and all(p is not None and len(p) == 64 for p in prints)


async def test_a_local_file_rewritten_in_place_is_a_new_request(tmp_path: Path, inputs: Path) -> None:
    """Same path, new content: not a duplicate (the fingerprint covers size and modification time)."""
    clip = make_clip(inputs / "clip.mp4")
    fake = FakeRunway(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = RunwayProvider(client, api_key=TEST_KEY, base_url=BASE)
        settings = make_settings(tmp_path, runway_api_key=TEST_KEY)
        service = EditService(InMemoryEditStore(), {"runway": provider}, settings, owner="p1")
        first, _ = await service.submit(args(video=str(clip)))
        _, same_dup = await service.submit(args(video=str(clip)))
        make_clip(clip, seconds=2.0)
        second, second_dup = await service.submit(args(video=str(clip)))
    assert (same_dup, second_dup) == (True, False)
    assert second.edit_id != first.edit_id
    assert len(fake.creates) == 2


@dataclass
class Held:
    """A create step that waits for `gate` once it has arrived."""

    gate: anyio.Event = field(default_factory=anyio.Event)
    arrived: anyio.Event = field(default_factory=anyio.Event)

    async def submit(self, request: EditRequest) -> str:
        self.arrived.set()
        await self.gate.wait()
        return "task-1"


def two_services(
    tmp_path: Path, provider: Provider, stores: list[EditStore] | None = None
) -> tuple[list[EditStore], list[EditService]]:
    """Two services, each with its own connection to one SQLite file (or the `stores` given), as two server
    processes have."""
    settings = make_settings(tmp_path, runway_api_key=TEST_KEY)
    stores = stores or [SQLiteEditStore(tmp_path / "shared.sqlite3") for _ in range(2)]
    services = [
        EditService(store, {"runway": provider}, settings, owner=f"p{n}") for n, store in enumerate(stores)
    ]
    return stores, services


async def test_a_repeat_while_the_first_create_is_in_flight_returns_that_edit(tmp_path: Path) -> None:
    """The second service finds the edit still being sent (no task id yet) and sends nothing."""
    held = Held()
    stub = StubProvider(name="runway", on_submit=held.submit)
    stores, (first, second) = two_services(tmp_path, stub)
    results: list[tuple[str, bool]] = []

    async def submit(service: EditService) -> None:
        edit, duplicate = await service.submit(args())
        results.append((edit.edit_id, duplicate))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(submit, first)
            await held.arrived.wait()
            await submit(second)
            assert results[0][1] is True  # answered while the first create is still waiting
            held.gate.set()
    for store in stores:
        await store.close()
    assert len(stub.requests) == 1
    assert [r[1] for r in results] == [True, False]
    assert results[0][0] == results[1][0]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_concurrent_identical_calls_from_two_services_on_one_store_create_one_task(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """Eight identical calls at once, half through each connection: one create, one edit, seven duplicates."""
    fake = FakeRunway(TEST_KEY)
    shared = [await open_kind(kind, tmp_path, request) for _ in range(2)] if kind == "postgres" else None
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider = RunwayProvider(client, api_key=TEST_KEY, base_url=BASE)
        stores, services = two_services(tmp_path, provider, shared)
        results: list[tuple[str, bool]] = []

        async def submit(service: EditService) -> None:
            edit, duplicate = await service.submit(args())
            results.append((edit.edit_id, duplicate))

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for n in range(8):
                    tg.start_soon(submit, services[n % 2])
        listed, _ = await stores[0].list_edits(limit=10)
        for store in stores:
            await store.close()
    assert len(fake.creates) == 1
    assert len(listed) == 1
    assert {edit_id for edit_id, _ in results} == {listed[0].edit_id}
    assert sorted(duplicate for _, duplicate in results) == [False] + [True] * 7


async def test_the_tool_marks_a_repeated_call_as_a_duplicate(tmp_path: Path) -> None:
    """Through MCP: the second identical edit_video call says duplicate_of_request and names the same edit."""
    fake = FakeRunway(TEST_KEY)
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        provider = RunwayProvider(http, api_key=TEST_KEY, base_url=BASE)
        settings = make_settings(tmp_path, default_provider="runway", runway_api_key=TEST_KEY)
        server = create_server(settings, providers={"runway": provider}, store=InMemoryEditStore(), http=http)
        async with Client(server) as client:
            first = await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
            second = await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
    assert first.structured_content is not None and second.structured_content is not None
    assert first.structured_content["duplicate_of_request"] is False
    assert second.structured_content["duplicate_of_request"] is True
    assert second.structured_content["edit_id"] == first.structured_content["edit_id"]
    assert len(fake.creates) == 1


@pytest.mark.parametrize("kind", ["sqlite", "memory", "postgres"])
async def test_the_store_finds_the_newest_live_repeat_within_the_window_only(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """add_unless_duplicate: same fingerprint in the window and not failed -> that edit; else it adds."""
    store = await open_kind(kind, tmp_path, request)

    def edit(n: int, at: float, status: EditStatus = "queued") -> Edit:
        return Edit(f"ed_{n}", "runway", "aleph2", "p", VIDEO, status=status, created_at=at, updated_at=at)

    try:
        assert await store.add_unless_duplicate(edit(1, 1000.0), "a", 600) is None
        assert await store.add_unless_duplicate(edit(2, 1100.0, "failed"), "b", 600) is None
        found = await store.add_unless_duplicate(edit(3, 1500.0), "a", 600)
        assert found is not None and found.edit_id == "ed_1"
        assert (
            await store.add_unless_duplicate(edit(4, 1500.0), "b", 600) is None
        )  # the failed one is no repeat
        assert await store.add_unless_duplicate(edit(5, 1700.0), "a", 600) is None  # ed_1 is 700 s old
        assert await store.add_unless_duplicate(edit(6, 1701.0), "a", 0) is None  # window 0: always adds
        newest = await store.add_unless_duplicate(edit(7, 1702.0), "a", 600)
        assert newest is not None and newest.edit_id == "ed_6"
        assert [e.edit_id for e in (await store.list_edits(limit=10))[0]] == [
            f"ed_{n}" for n in (6, 5, 4, 2, 1)
        ]
    finally:
        await store.close()
