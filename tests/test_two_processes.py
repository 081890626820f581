"""Two server processes on one data dir: one create per edit, and never two reads or downloads of one edit
at the same time (the fake logs when each request started and ended, and which process sent it)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2

from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.edits.poller import Poller
from aleph_mcp.media.archive import LocalArchive
from aleph_mcp.media.fetch import FetchPolicy
from aleph_mcp.models import Edit, EditRequest
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.store import SQLiteEditStore

from .conftest import TEST_KEY
from .fakes.base import FAKE_VIDEO, Exchange, Fault
from .fakes.runway import FakeRunway
from .fakes.server import serve_fakes
from .stdio import server_env, stdio_server

VIDEO = "https://127.0.0.1:9/in/clip.mp4"  # nothing listens: the server's pre-flight probe stays local
MOUNTS = ("/runway", "/runway-b")  # one fake, one base URL per process


@contextmanager
def shared_runway(**settings: Any) -> Iterator[tuple[str, FakeRunway]]:
    """One fake Runway reachable under two base URLs, so each request shows which process sent it."""
    fake = FakeRunway(TEST_KEY, **settings)
    with serve_fakes({"runway": fake, "runway-b": fake}) as origin:
        yield origin, fake


def envs(origin: str, data: Path) -> list[dict[str, str]]:
    base = server_env(origin, data, "runway")
    return [base | {"ALEPH_MCP_RUNWAY_BASE_URL": origin + mount} for mount in MOUNTS]


def by_task(exchanges: list[Exchange], kind: str) -> dict[str, list[Exchange]]:
    grouped: dict[str, list[Exchange]] = defaultdict(list)
    for exchange in exchanges:
        if exchange.kind == kind:
            task = exchange.path.rsplit("/", 1)[-1].split(".")[0]
            grouped[task].append(exchange)
    return grouped


def overlaps(exchanges: list[Exchange]) -> list[tuple[Exchange, Exchange]]:
    """Pairs of requests whose time on the wire overlapped."""
    ordered = sorted(exchanges, key=lambda e: e.started)
    return [(a, b) for a, b in itertools.pairwise(ordered) if b.started < a.ended]


async def test_two_processes_create_each_edit_once_and_never_poll_one_edit_at_the_same_time(
    tmp_path: Path,
) -> None:
    """Six edits through two servers sharing a data dir: six creates, no overlapping reads or downloads."""
    steps = ("queued", *(("running",) * 4), "succeeded")
    with shared_runway(steps=steps) as (origin, fake), (tmp_path / "server.log").open("w") as log:
        fake.latency = 0.05  # every read takes a while: two at once would overlap on the wire
        first_env, second_env = envs(origin, tmp_path / "data")
        async with stdio_server(first_env, log) as first, stdio_server(second_env, log) as second:
            ids = []
            for n in range(6):
                client = (first, second)[n % 2]
                result = await client.call_tool("edit_video", {"prompt": f"edit {n}", "video": VIDEO})
                assert result.structured_content is not None, result.content
                ids.append(result.structured_content["edit_id"])
            with anyio.fail_after(40):
                for edit_id in ids:
                    while True:
                        got = await second.call_tool(
                            "get_edit_status", {"edit_id": edit_id, "wait_seconds": 2}
                        )
                        assert got.structured_content is not None
                        if got.structured_content["status"] in ("succeeded", "failed"):
                            assert got.structured_content["status"] == "succeeded", got.structured_content
                            break
    assert len(fake.creates) == len(fake.tasks) == 6
    reads, files = by_task(fake.exchanges, "status"), by_task(fake.exchanges, "file")
    assert sorted(reads) == sorted(fake.tasks)
    for task_id in fake.tasks:
        assert overlaps(reads[task_id]) == [], task_id
        assert overlaps(files[task_id]) == [], task_id
        videos = [e for e in files[task_id] if e.path.endswith(".mp4")]
        assert [e.outcome for e in videos] == ["answered"]  # downloaded once, by one process
    assert {e.mount for e in fake.exchanges if e.kind == "status"} == set(MOUNTS)  # both did poll


async def test_identical_calls_to_two_processes_at_once_start_one_edit(tmp_path: Path) -> None:
    """The same edit_video sent to both servers at the same moment: one create, one edit, one duplicate."""
    with shared_runway() as (origin, fake), (tmp_path / "server.log").open("w") as log:
        first_env, second_env = envs(origin, tmp_path / "data")
        async with stdio_server(first_env, log) as first, stdio_server(second_env, log) as second:
            results: list[dict[str, Any]] = []

            async def call(client: Any) -> None:
                result = await client.call_tool("edit_video", {"prompt": "make it snow", "video": VIDEO})
                assert result.structured_content is not None, result.content
                results.append(result.structured_content)

            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call, first)
                    tg.start_soon(call, second)
    assert len(fake.creates) == len(fake.tasks) == 1
    assert results[0]["edit_id"] == results[1]["edit_id"]
    assert sorted(r["duplicate_of_request"] for r in results) == [False, True]


async def test_a_download_longer_than_the_lease_is_never_started_twice(tmp_path: Path) -> None:
    """Two pollers on one SQLite file: the one downloading keeps renewing its lease, the other keeps off."""
    policy = PollPolicy(interval=0.02, max_interval=0.05, lease_seconds=0.3)
    slow = Fault(kind="file", match=".mp4", hang=30.0, partial=10, trickle=0.05, after=True)
    with shared_runway(steps=("succeeded",)) as (origin, fake):
        fake.inject(slow)
        stores = [SQLiteEditStore(tmp_path / "edits.sqlite3") for _ in range(2)]
        async with httpx2.AsyncClient(timeout=5.0) as http:
            provider = RunwayProvider(http, api_key=TEST_KEY, base_url=f"{origin}/runway")
            task_id = await provider.submit(EditRequest(prompt="snow", video=VIDEO, model="aleph2"))
            edit = Edit("ed_1", "runway", "aleph2", "snow", VIDEO, provider_task_id=task_id, next_poll_at=0.0)
            await stores[0].add(edit)
            pollers = [
                Poller(
                    store,
                    {"runway": provider},
                    LocalArchive(tmp_path / "archive"),
                    http,
                    owner=f"p{n}",
                    policy=policy,
                    fetch=FetchPolicy.trusting([f"{origin}/runway"]),
                )
                for n, store in enumerate(stores)
            ]
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    for poller in pollers:
                        tg.start_soon(poller.run, 0.02)
                    while fake.holding["file"] == 0:
                        await anyio.sleep(0.02)
                    await anyio.sleep(1.0)  # more than three leases' worth of real time
                    downloads_during = len(fake.calls("file"))
                    fake.released.set()
                    fake.faults.clear()
                    while (done := await stores[1].get("ed_1")) is None or done.status != "succeeded":
                        await anyio.sleep(0.02)
                    tg.cancel_scope.cancel()
        for store in stores:
            await store.close()
    assert downloads_during == 1
    assert len(fake.calls("status")) == 1
    assert done is not None
    assert Path(done.local_path or "").read_bytes() == FAKE_VIDEO
