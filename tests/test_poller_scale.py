"""The poller with many edits in flight: no per-pass cap, paced requests per provider, honest hints."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import anyio
import httpx2
from mcp import Client

from aleph_mcp.app import paces
from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.edits.poller import Poller
from aleph_mcp.edits.rates import Paces
from aleph_mcp.media.archive import LocalArchive
from aleph_mcp.media.fetch import FetchPolicy
from aleph_mcp.models import Edit, EditRequest, RemoteStatus
from aleph_mcp.providers.base import Capabilities
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.records import to_record
from aleph_mcp.server import create_server
from aleph_mcp.server.state import Health
from aleph_mcp.store import InMemoryEditStore, SQLiteEditStore
from tests.conftest import TEST_KEY, make_settings
from tests.fakes.runway import FakeRunway
from tests.fakes.server import serve_fakes
from tests.fakes.stub import StubProvider

SLOW = PollPolicy(interval=600.0, max_interval=600.0, concurrency=2)  # each edit is read once per test


def running(n: int, due: float, provider: str = "stub") -> Edit:
    return Edit(
        f"ed_{n:04d}",
        provider,
        "m" if provider == "stub" else "aleph2",
        "snow",
        "https://cdn.example.com/in.mp4",
        status="running",
        provider_task_id=f"task-{n}",
        created_at=due,
        updated_at=due,
        next_poll_at=due,
    )


class Reads:
    """A stub provider's status reads: which tasks, and how many at once at most."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds, self.tasks, self.in_flight, self.peak = seconds, list[str](), 0, 0

    async def poll(self, task_id: str) -> RemoteStatus:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await anyio.sleep(self.seconds)
            self.tasks.append(task_id)
            return RemoteStatus("running", progress=0.5)
        finally:
            self.in_flight -= 1


def stub_poller(
    store: InMemoryEditStore | SQLiteEditStore, reads: Reads, tmp_path: Path, **kw: object
) -> Poller:
    stub = StubProvider(name="stub", capabilities=Capabilities(models=("m",)), on_poll=reads.poll)
    http = httpx2.AsyncClient(transport=httpx2.MockTransport(lambda r: httpx2.Response(599)))
    archive = LocalArchive(tmp_path / "archive")
    return Poller(store, {"stub": stub}, archive, http, owner="p", policy=SLOW, **kw)  # type: ignore[arg-type]


async def run_until(poller: Poller, done: object, timeout: float = 10.0, tick: float = 30.0) -> float:
    """run() (with a long tick: nothing may wait for it) until `done()`; returns the seconds it took."""
    start = time.monotonic()
    with anyio.fail_after(timeout):
        async with anyio.create_task_group() as tg:
            tg.start_soon(poller.run, tick)
            while not done():  # type: ignore[operator]
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    return time.monotonic() - start


async def test_run_draws_every_due_edit_without_waiting_for_a_tick(tmp_path: Path) -> None:
    """300 due edits, concurrency 2, a 30-s tick: all are read within seconds, never more than two at
    once (a per-tick cap of concurrency x 8 would read 16 and wait 30 s for the next pass)."""
    store, reads = SQLiteEditStore(tmp_path / "edits.sqlite3"), Reads(seconds=0.001)
    now = time.time()
    for n in range(300):
        await store.add(running(n, now - 1))
    poller = stub_poller(store, reads, tmp_path)
    took = await run_until(poller, lambda: len(reads.tasks) == 300)
    await anyio.sleep(0.1)  # the writer's last batch
    edits, _ = await store.list_edits(limit=300)
    await store.close()
    assert took < 8
    assert sorted(reads.tasks) == sorted(f"task-{n}" for n in range(300))  # each once
    assert reads.peak == 2
    assert all(e.polls == 1 and (e.next_poll_at or 0) > now + 100 for e in edits)  # saved, rescheduled
    reopened = SQLiteEditStore(tmp_path / "edits.sqlite3")
    try:
        with anyio.fail_after(5):
            assert await reopened.lease_due(now + 1, "other", now + 60, 10) == []
    finally:
        await reopened.close()


async def test_run_gives_back_every_lease_once_the_checks_are_saved(tmp_path: Path) -> None:
    """After run() the edits are free for another process: the writer released each with its save."""
    store, reads = SQLiteEditStore(tmp_path / "edits.sqlite3"), Reads()
    now = time.time()
    for n in range(20):
        await store.add(running(n, now - 1))
    await run_until(stub_poller(store, reads, tmp_path), lambda: len(reads.tasks) == 20)
    await anyio.sleep(0.1)
    for n in range(20):  # a lease by someone else succeeds only on a free edit
        assert await store.lease(f"ed_{n:04d}", "other", now + 60, time.time())
    await store.close()


async def test_status_reads_to_one_provider_keep_its_pace(tmp_path: Path) -> None:
    """Runway paced at 20 requests/s, 16 edits due, 8 read at once: the loopback fake sees its status
    requests at least 50 ms apart (less a little for timer slack), never a burst."""
    fake = FakeRunway(TEST_KEY, steps=("running",) * 5)
    with serve_fakes({"runway": fake}) as origin:
        async with httpx2.AsyncClient() as http:
            provider = RunwayProvider(http, api_key=TEST_KEY, base_url=f"{origin}/runway")
            store = InMemoryEditStore()
            now = time.time()
            for n in range(16):
                edit = running(n, now - 1, "runway")
                edit.provider_task_id = await provider.submit(EditRequest("snow", edit.video, "aleph2"))
                await store.add(edit)
            policy = PollPolicy(interval=600.0, max_interval=600.0, concurrency=8)
            poller = Poller(
                store,
                {"runway": provider},
                LocalArchive(tmp_path / "a"),
                http,
                owner="p",
                policy=policy,
                fetch=FetchPolicy.trusting([origin]),
                paces=Paces({"runway": 20.0}),
            )
            await run_until(poller, lambda: len(fake.calls("status")) == 16)
    starts = sorted(x.started for x in fake.exchanges if x.kind == "status")
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 16
    assert min(gaps) > 0.04, gaps
    assert starts[-1] - starts[0] >= 15 * 0.05 - 0.02


def test_the_pace_of_each_hosted_provider_comes_from_the_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, poll_requests_per_second=7.0, kie_requests_per_second=2.5)
    built = paces(settings)
    assert built.of("kie").gap == 1 / 2.5
    assert built.of("runway").gap == 1 / 7.0
    assert built.of("local").gap == 0.0  # offline: nothing to pace


async def test_a_poller_behind_its_schedule_says_so_in_the_check_again_hint(tmp_path: Path) -> None:
    """40 edits that came due over the last 20 s, read one at a time at 2 per second: the poller falls
    behind, and an edit due a second ago is not promised a look in a second."""
    store, reads = InMemoryEditStore(), Reads()
    now = time.time()
    for n in range(40):
        await store.add(running(n, now - 20 + n * 0.5))
    poller = stub_poller(store, reads, tmp_path, paces=Paces({"stub": 2.0}))
    poller.policy = PollPolicy(interval=600.0, max_interval=600.0, concurrency=1)
    await run_until(poller, lambda: len(reads.tasks) >= 3)
    latest = await store.get("ed_0039")
    assert latest is not None and latest.polls == 0
    assert poller.behind >= 15
    assert to_record(latest).check_again_in_seconds == 1  # what the schedule alone would say
    hint = to_record(latest, behind=poller.behind).check_again_in_seconds
    assert hint is not None and hint >= 15


async def test_get_edit_status_adds_the_pollers_backlog_to_its_hint(tmp_path: Path) -> None:
    """Through the MCP client: the tool's check_again_in_seconds counts in how far behind the poller is."""
    settings = make_settings(tmp_path, default_provider="runway", runway_api_key=TEST_KEY, probe_urls=False)
    store = InMemoryEditStore()
    edit = running(1, time.time() + 3, "runway")
    await store.add(edit)
    async with httpx2.AsyncClient(transport=FakeRunway(TEST_KEY).transport()) as http:
        health = Health()
        server = create_server(settings, store=store, http=http, health=health)
        async with Client(server) as client:
            before = await client.call_tool("get_edit_status", {"edit_id": edit.edit_id})
            assert health.state is not None
            health.state.poller.behind = 120.0  # as _draw sets it when due edits wait their turn
            after = await client.call_tool("get_edit_status", {"edit_id": edit.edit_id})
    assert before.structured_content is not None and after.structured_content is not None
    assert before.structured_content["check_again_in_seconds"] <= 5
    assert after.structured_content["check_again_in_seconds"] >= 120
