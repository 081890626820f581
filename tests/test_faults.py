"""Fault injection: the real service, poller, adapters and SQLite store against loopback fakes that misbehave.

Every edit must end as its render did, with exactly one task created at the provider, whatever the weather:
429s with Retry-After, 500s, hangs past the request timeout, dropped connections, malformed JSON, result
URLs that have expired, downloads that stall halfway.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from aleph_mcp.app import fetch_policy
from aleph_mcp.config import Settings
from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.edits.poller import Poller
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.edits.service import EditService
from aleph_mcp.errors import AlephError
from aleph_mcp.media.archive import LocalArchive
from aleph_mcp.media.fetch import FetchPolicy
from aleph_mcp.models import Edit, EditRequest
from aleph_mcp.providers import build_providers
from aleph_mcp.providers.runway import RunwayProvider
from aleph_mcp.store import InMemoryEditStore, SQLiteEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.base import FAKE_VIDEO, FakeAPI, Fault, State
from .fakes.chaos import Chaos
from .fakes.runway import FakeRunway
from .fakes.server import serve_fakes
from .fakes.vendors import FAKES

REASON = "The render failed: content moderation flagged the prompt"
FAILS = "render fails"
TIMEOUT = 1.0  # per request: a hang costs this much (shorter ones time out spuriously on a busy machine)
WEATHER = {
    "create": ("429",),  # only faults that prove no task was made (see fakes/chaos.py)
    "status": ("429", "500", "hang", "drop", "malformed"),
    "file": ("expired", "500", "hang", "drop", "stall"),
}


def render_steps(body: Any) -> tuple[State, ...]:
    """A task renders to failure when its prompt says so, else to success."""
    end: State = "failed" if FAILS in json.dumps(body) else "succeeded"
    return ("queued", "running", "running", end)


@dataclass
class Stack:
    fakes: dict[str, FakeAPI]
    settings: Settings
    store: SQLiteEditStore
    service: EditService
    poller: Poller

    async def edits(self) -> list[Edit]:
        return (await self.store.list_edits(limit=100))[0]

    async def all_ended(self, count: int, seconds: float) -> list[Edit]:
        with anyio.fail_after(seconds):
            while True:
                edits = await self.edits()
                if len(edits) == count and all(e.is_terminal for e in edits):
                    return edits
                await anyio.sleep(0.05)


@contextmanager
def loopback() -> Iterator[tuple[str, dict[str, FakeAPI]]]:
    """All five fake APIs on one loopback server; a task's prompt decides how its render ends."""
    fakes = {name: cls(TEST_KEY, failure_message=REASON) for name, cls in FAKES.items()}
    for fake in fakes.values():
        fake.steps_for = render_steps
    with serve_fakes(fakes) as origin:
        yield origin, fakes


@asynccontextmanager
async def stack(
    tmp_path: Path, origin: str, fakes: dict[str, FakeAPI], **overrides: Any
) -> AsyncIterator[Stack]:
    """Service and running poller wired as the server wires them, every hosted provider on loopback."""
    values: dict[str, Any] = {
        "request_timeout": TIMEOUT,
        "poll_interval": 0.02,
        "poll_max_interval": 0.1,
        "poll_concurrency": 16,
        "edit_timeout": 60.0,
        "kie_upload_base_url": f"{origin}/kie",
    }
    for name in fakes:
        values[f"{name}_api_key"] = TEST_KEY
        values[f"{name}_base_url"] = f"{origin}/{name}"
    settings = make_settings(tmp_path, **(values | overrides))
    policy = PollPolicy(
        interval=settings.poll_interval,
        max_interval=settings.poll_max_interval,
        edit_timeout=settings.edit_timeout,
        concurrency=settings.poll_concurrency,
        lease_seconds=settings.request_timeout * 4,
    )
    store = SQLiteEditStore(settings.store_path)
    async with httpx2.AsyncClient(timeout=settings.request_timeout) as http:
        providers = build_providers(settings, http)
        poller = Poller(
            store,
            providers,
            LocalArchive(settings.archive_dir),
            http,
            owner="p1",
            policy=policy,
            fetch=fetch_policy(settings),
        )

        async def submitted(edit: Edit) -> None:
            poller.wake()

        service = EditService(
            store,
            providers,
            settings,
            owner="p1",
            lease_seconds=policy.lease_seconds,
            poll_interval=policy.interval,
            on_submitted=submitted,
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(poller.run, 0.02)
            yield Stack(fakes, settings, store, service, poller)
            tg.cancel_scope.cancel()
    await store.close()


def edit_args(n: int) -> EditArgs:
    provider = list(FAKES)[n % len(FAKES)]
    fate = FAILS if (n // len(FAKES)) % 5 == 0 else "make it snow"
    return EditArgs(
        prompt=f"edit {n}: {fate}", video=f"https://cdn.example.com/in/clip-{n}.mp4", provider=provider
    )


def assert_one_task_per_edit(edits: list[Edit], fakes: dict[str, FakeAPI]) -> None:
    """Each edit has its own task at its provider, made from its own prompt, and no other task exists."""
    for name, fake in fakes.items():
        mine = [e for e in edits if e.provider == name]
        assert sorted(fake.tasks) == sorted(e.provider_task_id or "-" for e in mine), name
        for edit in mine:
            assert edit.prompt in json.dumps(fake.tasks[edit.provider_task_id or ""].body), edit.edit_id


async def test_fifty_edits_in_thirty_percent_faults_each_end_as_their_render_did(tmp_path: Path) -> None:
    """50 edits over five providers, 30% of requests faulted: each ends as its render, one task apiece."""
    chaos = Chaos(rate=0.3, faults=WEATHER, seed=5, retry_after="1")
    with loopback() as (origin, fakes):
        chaos.attach(fakes.values())
        async with stack(tmp_path, origin, fakes) as s:
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    for n in range(50):
                        tg.start_soon(s.service.submit, edit_args(n))
            edits = await s.all_ended(50, seconds=30)
    for edit in edits:
        expected = "failed" if FAILS in edit.prompt else "succeeded"
        assert edit.status == expected, (edit.edit_id, edit.prompt, edit.error_code, edit.error_message)
        if expected == "failed":
            assert REASON in (edit.error_message or ""), edit.error_message
        else:
            assert Path(edit.local_path or "").read_bytes() == FAKE_VIDEO
    assert_one_task_per_edit(edits, fakes)
    archive = sorted(
        p.name for p in s.settings.archive_dir.iterdir() if p.suffix == ".mp4" or ".part" in p.name
    )
    assert archive == sorted(f"{e.edit_id}.mp4" for e in edits if e.status == "succeeded")
    # The weather really happened: every fault of every kind, at about the asked rate.
    assert {(kind, name) for kind, names in WEATHER.items() for name in names} <= set(chaos.injected)
    assert 0.2 <= chaos.total / sum(chaos.seen.values()) <= 0.4


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="create", after=True, hang=5.0),
        Fault(kind="create", after=True, raise_exc=httpx2.RemoteProtocolError),
        Fault(kind="create", after=True, status=502, body={"error": "Bad gateway"}),
        Fault(kind="create", after=True, status=200, body=b'{"id": "tas'),
    ],
    ids=["hang", "drop", "502", "malformed"],
)
async def test_a_create_whose_answer_is_lost_after_the_task_was_made_is_never_sent_again(
    tmp_path: Path, fault: Fault
) -> None:
    """The vendor made the task but the answer never arrived: failed as submit_outcome_unknown, one task."""
    with loopback() as (origin, fakes):
        fakes["runway"].inject(fault)
        async with stack(tmp_path, origin, fakes, request_timeout=0.3) as s:
            with anyio.fail_after(10), pytest.raises(AlephError) as caught:
                await s.service.submit(
                    EditArgs(prompt="snow", video="https://cdn.example.com/a.mp4", provider="runway")
                )
            (edit,) = await s.edits()
    assert caught.value.code == "submit_outcome_unknown"
    assert (edit.status, edit.error_code, edit.provider_task_id) == ("failed", "submit_outcome_unknown", None)
    assert "dashboard" in (edit.error_message or "")
    assert len(fakes["runway"].tasks) == 1
    assert len(fakes["runway"].creates) == 1


async def test_a_stalled_download_does_not_hold_up_other_edits(tmp_path: Path) -> None:
    """While one result download hangs halfway, another edit is read, archived and finished."""
    with loopback() as (origin, fakes):
        runway = fakes["runway"]
        runway.steps_for = lambda body: ("succeeded",)
        runway.inject(Fault(kind="file", match=".mp4", hang=10.0, partial=len(FAKE_VIDEO) // 2))
        async with stack(tmp_path, origin, fakes, request_timeout=10.0) as s:
            with anyio.fail_after(10):
                slow, _ = await s.service.submit(
                    EditArgs(prompt="one", video="https://cdn.example.com/1.mp4", provider="runway")
                )
                while runway.holding["file"] == 0:
                    await anyio.sleep(0.02)
                fast, _ = await s.service.submit(
                    EditArgs(prompt="two", video="https://cdn.example.com/2.mp4", provider="runway")
                )
                while (await s.service.get(fast.edit_id)).status != "succeeded":
                    await anyio.sleep(0.02)
                assert runway.holding["file"] == 1
                assert (await s.service.get(slow.edit_id)).status == "running"
                runway.released.set()
                while (await s.service.get(slow.edit_id)).status != "succeeded":
                    await anyio.sleep(0.02)
            parts = [p.name for p in s.settings.archive_dir.iterdir() if ".part" in p.name]
    assert parts == []
    assert len(runway.tasks) == 2


class LockedOnce(InMemoryEditStore):
    """A store whose first draw of due edits and first two saves of one edit fail, as a busy SQLite file
    can (the batch, then the edit alone)."""

    def __init__(self, edit_id: str) -> None:
        super().__init__()
        self.edit_id, self.failed, self.save_failures = edit_id, False, 0

    async def lease_due(self, now: float, owner: str, until: float, limit: int) -> list[Edit]:
        if not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("database is locked")
        return await super().lease_due(now, owner, until, limit)

    async def save_many(self, edits: Sequence[Edit], *, release: str | None = None) -> None:
        if any(e.edit_id == self.edit_id for e in edits) and self.save_failures < 2:
            self.save_failures += 1
            raise sqlite3.OperationalError("database is locked")
        await super().save_many(edits, release=release)


async def test_a_store_error_on_one_edit_does_not_stop_the_poller(tmp_path: Path) -> None:
    """The draw of due edits fails once, and so does a save of one edit: run() logs them, keeps going
    (the edit whose save failed comes round again at once, not when its lease lapses), and both finish."""
    fake = FakeRunway(TEST_KEY, steps=("running", "succeeded"))
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        provider = RunwayProvider(http, api_key=TEST_KEY, base_url="http://fake.invalid")
        edits = [
            Edit(f"ed_{n}", "runway", "aleph2", "snow", "https://cdn.example.com/a.mp4", next_poll_at=0.0)
            for n in range(2)
        ]
        store = LockedOnce("ed_0")
        for edit in edits:
            edit.provider_task_id = await provider.submit(EditRequest("snow", edit.video, "aleph2"))
            await store.add(edit)
        policy = PollPolicy(interval=0.01, max_interval=0.02)
        poller = Poller(
            store,
            {"runway": provider},
            LocalArchive(tmp_path / "archive"),
            http,
            owner="p",
            policy=policy,
            fetch=FetchPolicy.trusting(["http://fake.invalid"]),
        )
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(poller.run, 0.01)
                while not all(e.is_terminal for e in (await store.list_edits())[0]):
                    await anyio.sleep(0.01)
                tg.cancel_scope.cancel()
    assert store.failed and store.save_failures == 2
    assert [e.status for e in (await store.list_edits())[0]] == ["succeeded", "succeeded"]
