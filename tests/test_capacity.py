"""Edits waiting for a provider's capacity: 429s, ALEPH_MCP_<P>_MAX_CONCURRENT, deadlines, cancel, crashes."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from aleph_mcp.edits.capacity import capacity_limits, request_to_json
from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.edits.poller import Poller
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.edits.service import EditService
from aleph_mcp.errors import AlephError
from aleph_mcp.media.archive import LocalArchive
from aleph_mcp.models import Edit, EditRequest
from aleph_mcp.pricing.budget import Budget
from aleph_mcp.providers.base import Provider
from aleph_mcp.providers.kie import KieProvider
from aleph_mcp.providers.krea import KreaProvider
from aleph_mcp.store import EditStore, InMemoryEditStore, SQLiteEditStore
from tests.conftest import TEST_KEY, make_settings
from tests.fakes.base import FakeAPI, Fault
from tests.fakes.clock import START
from tests.fakes.clock import FakeClock as Clock
from tests.fakes.kie import FakeKie
from tests.fakes.krea import FakeKrea

BASE = "http://fake.invalid"
VIDEO = "https://cdn.example.com/in/clip.mp4"
POLICY = PollPolicy(interval=1.0, max_interval=8.0, edit_timeout=120.0, lease_seconds=60.0)
TOO_MANY = {"error": "Maximum number of concurrent jobs reached"}
FOREVER = ("queued", *("running",) * 1000)


@dataclass
class Rig:
    """A service and a poller of one process, sharing a store and a hand-moved clock."""

    fake: FakeAPI
    store: EditStore
    service: EditService
    poller: Poller
    clock: Clock

    async def submit(self, prompt: str = "Make it winter", **kwargs: Any) -> Edit:
        edit, _ = await self.service.submit(EditArgs(prompt, VIDEO, provider=self.fake.name, **kwargs))
        return edit

    async def get(self, edit_id: str) -> Edit:
        edit = await self.store.get(edit_id)
        assert edit is not None
        return edit

    async def step(self, edit_id: str) -> Edit:
        """Move the clock to when the edit is due, run one poller pass, return the stored edit."""
        edit = await self.get(edit_id)
        self.clock.now = max(self.clock.now, edit.next_poll_at or self.clock.now)
        with anyio.fail_after(10):
            await self.poller.poll_once()
        return await self.get(edit_id)


def adapter(fake: FakeAPI, client: httpx2.AsyncClient) -> Provider:
    if isinstance(fake, FakeKie):
        return KieProvider(client, api_key=TEST_KEY, base_url=BASE, upload_base_url=BASE)
    return KreaProvider(client, api_key=TEST_KEY, base_url=BASE)


@asynccontextmanager
async def rig_for(
    fake: FakeAPI, tmp_path: Path, store: EditStore | None = None, **settings: Any
) -> AsyncIterator[Rig]:
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        provider, clock, the_store = adapter(fake, client), Clock(), store or InMemoryEditStore()
        config = make_settings(tmp_path, **{f"{fake.name}_api_key": TEST_KEY, **settings})

        async def no_sleep(seconds: float) -> None:
            return None

        service = EditService(
            the_store, {fake.name: provider}, config, owner="p1", clock=clock, sleep=no_sleep, policy=POLICY
        )
        poller = Poller(
            the_store,
            {fake.name: provider},
            LocalArchive(tmp_path / "archive"),
            client,
            owner="p1",
            policy=POLICY,
            clock=clock,
            limits=capacity_limits(config),
        )
        yield Rig(fake, the_store, service, poller, clock)


async def test_a_429_s_retry_after_is_waited_out_before_the_create_is_sent_again(tmp_path: Path) -> None:
    """Retry-After 30: a pass at 29 s sends nothing; the pass at 30 s sends it and records the task."""
    fake = FakeKrea()
    async with rig_for(fake, tmp_path) as rig:
        fake.inject(Fault(kind="create", status=429, body=TOO_MANY, headers={"Retry-After": "30"}))
        edit = await rig.submit()
        assert (edit.status, edit.provider_task_id, edit.submit_after) == ("queued", None, START + 30)
        rig.clock.now = START + 29
        await rig.poller.poll_once()
        assert len(fake.creates) == 1
        sent = await rig.step(edit.edit_id)
    assert rig.clock.now == START + 30
    assert len(fake.creates) == 2 and list(fake.tasks) == [sent.provider_task_id]
    assert (sent.status, sent.notes, sent.pending_request, sent.submit_after) == ("queued", None, None, None)


async def test_max_concurrent_keeps_the_fourth_edit_local_until_a_job_ends(tmp_path: Path) -> None:
    """With ALEPH_MCP_KREA_MAX_CONCURRENT=3 the 4th create is never sent while 3 jobs run."""
    fake = FakeKrea(steps=FOREVER)
    async with rig_for(fake, tmp_path, krea_max_concurrent=3) as rig:
        edits = [await rig.submit(f"edit {n}") for n in range(4)]
        fourth = edits[3]
        assert len(fake.creates) == 3
        assert fourth.waiting_for_capacity and "ALEPH_MCP_KREA_MAX_CONCURRENT" in (fourth.notes or "")
        for _ in range(3):  # passes while all three still run: the 4th stays local
            await rig.step(fourth.edit_id)
        assert len(fake.creates) == 3
        first = fake.tasks[edits[0].provider_task_id or ""]
        first.steps, first.position = ("succeeded",), 0
        await rig.step(edits[0].edit_id)  # the first job ends: a slot frees
        sent = await rig.step(fourth.edit_id)
    assert len(fake.creates) == 4 and sent.provider_task_id in fake.tasks
    assert [c.body["prompt"] for c in fake.creates] == ["edit 0", "edit 1", "edit 2", "edit 3"]


async def test_cancelling_an_edit_waiting_for_capacity_sends_nothing(tmp_path: Path) -> None:
    """kie has no cancel API, but a waiting edit was never sent: it just ends cancelled, unbilled."""
    fake = FakeKie()
    async with rig_for(fake, tmp_path) as rig:
        fake.inject(Fault(kind="create", status=429, body={"code": 429, "msg": "Too many requests"}))
        edit = await rig.submit()
        sent = len(fake.requests)
        cancelled = await rig.service.cancel(edit.edit_id)
        rig.clock.now += 3600
        await rig.poller.poll_once()
    assert (cancelled.status, cancelled.error_code) == ("cancelled", "cancelled")
    assert "before it was sent" in (cancelled.error_message or "")
    assert len(fake.requests) == sent == 1
    assert cancelled.pending_request is None
    assert Budget(usd=1.0, edits=None, prices={}).counts(cancelled) is False


async def test_an_edit_refused_with_429_forever_fails_capacity_timeout_at_its_deadline(
    tmp_path: Path,
) -> None:
    """The hostile provider: tries back off (never more often than the interval) until the deadline."""
    fake = FakeKrea()
    async with rig_for(fake, tmp_path) as rig:
        fake.inject(Fault(kind="create", status=429, body=TOO_MANY, times=0))
        edit = await rig.submit()
        tries: list[float] = [rig.clock.now]
        while not edit.is_terminal:
            edit = await rig.step(edit.edit_id)
            tries.append(rig.clock.now)
    assert (edit.status, edit.error_code, edit.provider_task_id) == ("failed", "capacity_timeout", None)
    assert "never sent" in (edit.error_message or "") and "120 minutes" not in (edit.error_message or "")
    assert rig.clock.now == START + POLICY.edit_timeout
    assert 2 < len(fake.creates) <= POLICY.edit_timeout / POLICY.interval
    assert all(b - a >= POLICY.interval for a, b in itertools.pairwise(tries[:-1]))
    assert Budget(usd=1.0, edits=None, prices={}).counts(edit) is False


@pytest.mark.parametrize("retry_after", ["1000000000", "inf"])
async def test_a_retry_after_past_the_deadline_fails_the_edit_at_once(
    tmp_path: Path, retry_after: str
) -> None:
    """A wait of 10^9 s (or forever) cannot end in time: failed now, not parked for decades."""
    fake = FakeKrea()
    async with rig_for(fake, tmp_path) as rig:
        fake.inject(Fault(kind="create", status=429, body=TOO_MANY, headers={"Retry-After": retry_after}))
        with pytest.raises(AlephError) as caught:
            await rig.submit()
        (edit,) = (await rig.store.list_edits())[0]
    assert caught.value.code == edit.error_code == "capacity_timeout"
    assert "asked to wait" in (edit.error_message or "")
    assert len(fake.creates) == 1 and edit.next_poll_at is None


@pytest.mark.parametrize("retry_after", ["-5", "soon", "nan"])
async def test_a_negative_or_unreadable_retry_after_still_backs_off(tmp_path: Path, retry_after: str) -> None:
    """No hot loop: the next try is at least the poll interval away."""
    fake = FakeKrea()
    async with rig_for(fake, tmp_path) as rig:
        fake.inject(Fault(kind="create", status=429, body=TOO_MANY, headers={"Retry-After": retry_after}))
        edit = await rig.submit()
    assert edit.waiting_for_capacity
    assert edit.submit_after is not None and edit.submit_after >= START + POLICY.interval


async def test_a_claimed_create_whose_process_died_is_never_sent_again(tmp_path: Path) -> None:
    """create_sent_at was recorded, then nothing: the job may exist, so it fails submit_outcome_unknown."""
    fake = FakeKrea()
    async with rig_for(fake, tmp_path) as rig:
        request = EditRequest(prompt="Make it winter", video=VIDEO, model="aleph")
        edit = Edit(
            edit_id="ed_claimed",
            provider="krea",
            model="aleph",
            prompt=request.prompt,
            video=VIDEO,
            created_at=START,
            updated_at=START,
            next_poll_at=START,
            submit_after=START,
            pending_request=request_to_json(request),
        )
        await rig.store.add(edit)
        assert await rig.store.claim_create(edit.edit_id, "krea", None, START) == "claimed"
        failed = await rig.step(edit.edit_id)
    assert (failed.status, failed.error_code) == ("failed", "submit_outcome_unknown")
    assert fake.requests == []


async def test_two_processes_send_a_waiting_edit_once(tmp_path: Path) -> None:
    """Two pollers on one SQLite file, both passing when the edit is due: one create."""
    fake = FakeKrea()
    stores = [SQLiteEditStore(tmp_path / "shared.sqlite3") for _ in range(2)]
    async with (
        rig_for(fake, tmp_path, store=stores[0]) as one,
        rig_for(fake, tmp_path, store=stores[1]) as two,
    ):
        fake.inject(Fault(kind="create", status=429, body=TOO_MANY))
        edit = await one.submit()
        one.clock.now = two.clock.now = edit.submit_after or START
        two.poller.owner = "p2"
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(one.poller.poll_once)
                tg.start_soon(two.poller.poll_once)
        sent = await two.get(edit.edit_id)
    for store in stores:
        await store.close()
    assert len(fake.creates) == 2 and list(fake.tasks) == [sent.provider_task_id]


async def test_the_limit_counts_jobs_of_every_process_on_the_data_dir(tmp_path: Path) -> None:
    """claim_create counts and marks in one transaction: a second connection finds the slot taken."""
    stores = [SQLiteEditStore(tmp_path / "shared.sqlite3") for _ in range(2)]
    for n in range(2):
        await stores[0].add(Edit(f"ed_{n}", "krea", "aleph", "p", VIDEO, created_at=START, updated_at=START))
    assert await stores[0].claim_create("ed_0", "krea", 1, START) == "claimed"
    assert await stores[1].claim_create("ed_1", "krea", 1, START) == "full"
    assert await stores[1].claim_create("ed_0", "krea", None, START) == "gone"
    for store in stores:
        await store.close()
