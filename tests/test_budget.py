"""The 24-hour budget (ALEPH_MCP_BUDGET_USD / _EDITS): refused before anything is sent, summed from the store
(so it holds across restarts and processes, atomically), and counting failed or cancelled edits only where
the provider bills them."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from aleph_mcp.config import PriceOverride
from aleph_mcp.edits.dry_run import preview
from aleph_mcp.edits.requests import EditArgs
from aleph_mcp.edits.service import EditService
from aleph_mcp.errors import BudgetExceeded
from aleph_mcp.models import Edit, EditStatus
from aleph_mcp.pricing.budget import WINDOW, Budget, BudgetGate
from aleph_mcp.pricing.catalog import quote
from aleph_mcp.providers.kie import KieProvider
from aleph_mcp.records import iso
from aleph_mcp.store import MIGRATIONS, EditStore, InMemoryEditStore, SQLiteEditStore

from .conftest import TEST_KEY, make_settings
from .fakes.clock import START, FakeClock
from .fakes.kie import FakeKie
from .fakes.runway import FakeRunway
from .fakes.server import serve_fakes
from .stdio import server_env, stdio_server

VIDEO = "https://cdn.example.com/in/clip.mp4"
HALF_A_DOLLAR = {"kie": {"usd": 0.5}}


def service_for(
    store: EditStore, http: httpx2.AsyncClient, tmp_path: Path, clock: FakeClock, **settings: Any
) -> EditService:
    provider = KieProvider(
        http, api_key=TEST_KEY, base_url="http://fake.invalid", upload_base_url="http://x.invalid"
    )
    config = make_settings(tmp_path, kie_api_key=TEST_KEY, **settings)
    return EditService(store, {"kie": provider}, config, owner="test", clock=clock)


@asynccontextmanager
async def kie(tmp_path: Path, store: EditStore | None = None, **settings: Any) -> AsyncIterator[Any]:
    """(fake, service, store, clock) for kie, priced and capped as `settings` say."""
    fake, clock = FakeKie(TEST_KEY), FakeClock()
    the_store = store or InMemoryEditStore()
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        yield fake, service_for(the_store, http, tmp_path, clock, **settings), the_store, clock


def edit_args(n: int) -> EditArgs:
    return EditArgs(prompt=f"edit number {n}", video=VIDEO, provider="kie")


async def test_an_edit_over_the_usd_budget_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    """$0.50 edits under a $1.00 budget: two go, the third is refused with the spend and when budget frees."""
    async with kie(tmp_path, budget_usd=1.0, prices=HALF_A_DOLLAR) as (fake, service, store, clock):
        await service.submit(edit_args(1))
        clock.now += 100
        await service.submit(edit_args(2))
        clock.now += 100
        with pytest.raises(BudgetExceeded) as refused:
            await service.submit(edit_args(3))
        assert len(fake.creates) == 2
        assert len((await store.list_edits())[0]) == 2
    message = refused.value.message
    assert message.startswith("Refused before spending: this edit is estimated at $0.50 ($0.50 per edit")
    assert "$1.00 on 2 edits in the last 24 hours" in message and "ALEPH_MCP_BUDGET_USD is $1.00" in message
    assert f"Budget frees up at {iso(START + WINDOW)} (in about 23 h 57 min)" in message
    assert message.endswith("Nothing was sent.")


async def test_the_budget_frees_up_when_the_oldest_edit_leaves_the_24_hour_window(tmp_path: Path) -> None:
    """A day after the first edit, its cost no longer counts and the next edit goes through."""
    async with kie(tmp_path, budget_usd=1.0, prices=HALF_A_DOLLAR) as (fake, service, _, clock):
        await service.submit(edit_args(1))
        clock.now += 3600
        await service.submit(edit_args(2))
        clock.now = START + WINDOW - 1
        with pytest.raises(BudgetExceeded):
            await service.submit(edit_args(3))
        clock.now = START + WINDOW + 1
        await service.submit(edit_args(3))
    assert len(fake.creates) == 3


async def test_an_edit_count_budget_refuses_the_edit_past_the_count(tmp_path: Path) -> None:
    """BUDGET_EDITS=2: the third edit of the day is refused, naming the edit whose exit frees a slot."""
    async with kie(tmp_path, budget_edits=2) as (fake, service, _, clock):
        first, _ = await service.submit(edit_args(1))
        clock.now += 60
        await service.submit(edit_args(2))
        with pytest.raises(BudgetExceeded) as refused:
            await service.submit(edit_args(3))
    assert len(fake.creates) == 2
    assert "2 billable edits started in the last 24 hours" in refused.value.message
    assert "ALEPH_MCP_BUDGET_EDITS allows 2" in refused.value.message
    assert f"when edit {first.edit_id} (started {iso(START)}) leaves" in refused.value.message


async def test_an_unknown_price_cannot_pass_a_usd_budget_but_may_pass_a_count(tmp_path: Path) -> None:
    """kie publishes no price: under a USD cap it is refused with how to set one; under a count it goes."""
    async with kie(tmp_path, budget_usd=5.0) as (fake, service, store, _):
        with pytest.raises(BudgetExceeded) as refused:
            await service.submit(edit_args(1))
        assert fake.requests == [] and (await store.list_edits())[0] == []
    assert refused.value.code == "price_unknown"
    assert "ALEPH_MCP_PRICES='{\"kie/aleph\": 0.5}'" in refused.value.message
    async with kie(tmp_path, budget_edits=1) as (fake, service, _, _):
        edit, _ = await service.submit(edit_args(1))
    assert (
        edit.estimated_cost_usd is None
        and edit.cost_basis == "no known price for kie/aleph; set ALEPH_MCP_PRICES"
    )
    assert len(fake.creates) == 1


async def test_a_repeat_of_an_earlier_request_is_returned_even_when_the_budget_is_spent(
    tmp_path: Path,
) -> None:
    """A duplicate spends nothing, so the budget does not stand in its way."""
    async with kie(tmp_path, budget_edits=1) as (fake, service, _, _):
        first, _ = await service.submit(edit_args(1))
        again, duplicate = await service.submit(edit_args(1))
    assert duplicate and again.edit_id == first.edit_id and len(fake.creates) == 1


async def test_the_budget_and_the_cost_hold_across_a_restart(tmp_path: Path) -> None:
    """The SQLite store reopened by a new service still counts yesterday's edit and keeps its estimate."""
    path = tmp_path / "edits.sqlite3"
    store = SQLiteEditStore(path)
    async with kie(tmp_path, store, budget_usd=0.6, prices=HALF_A_DOLLAR) as (_, service, _, _):
        first, _ = await service.submit(edit_args(1))
    await store.close()
    reopened = SQLiteEditStore(path)
    async with kie(tmp_path, reopened, budget_usd=0.6, prices=HALF_A_DOLLAR) as (fake, service, _, clock):
        clock.now += 3600
        with pytest.raises(BudgetExceeded) as refused:
            await service.submit(edit_args(2))
        stored = await reopened.get(first.edit_id)
    await reopened.close()
    assert fake.requests == []
    assert "$0.50 on 1 edit in the last 24 hours" in refused.value.message
    assert stored is not None and (stored.estimated_cost_usd, stored.cost_basis) == (
        0.5,
        "$0.50 per edit; your price",
    )


async def test_services_on_one_file_cannot_both_squeeze_under_the_cap(tmp_path: Path) -> None:
    """Twelve simultaneous submits through four stores on one SQLite file with room for three: three start."""
    path = tmp_path / "shared.sqlite3"
    stores = [SQLiteEditStore(path) for _ in range(4)]  # as four server processes would open it
    fake, clock = FakeKie(TEST_KEY), FakeClock()
    outcomes: list[str] = []
    async with httpx2.AsyncClient(transport=fake.transport()) as http:
        services = [service_for(s, http, tmp_path, clock, budget_edits=3) for s in stores]

        async def submit(n: int) -> None:
            try:
                await services[n % len(services)].submit(edit_args(n))
                outcomes.append("started")
            except BudgetExceeded:
                outcomes.append("refused")

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for n in range(12):
                    tg.start_soon(submit, n)
        stored = (await stores[0].list_edits())[0]
    for store in stores:
        await store.close()
    assert sorted(outcomes) == ["refused"] * 9 + ["started"] * 3
    assert len(stored) == len(fake.creates) == 3


@dataclass
class MeetingGate:
    """A budget gate that waits (up to half a second) for another store's check before deciding: if two
    checks could run at once, both would see room and both would insert."""

    inner: BudgetGate
    meeting: threading.Barrier

    @property
    def since(self) -> float:
        return self.inner.since

    def check(self, recent: list[Edit]) -> None:
        # Broken (timed out) when the other check is held back by the write lock: the atomic case.
        with contextlib.suppress(threading.BrokenBarrierError):
            self.meeting.wait()
        self.inner.check(recent)


async def test_the_budget_check_and_the_insert_are_one_step_across_stores(tmp_path: Path) -> None:
    """Two stores on one file insert at once under a one-edit cap: one edit is stored, the other refused."""
    path = tmp_path / "shared.sqlite3"
    stores = [SQLiteEditStore(path), SQLiteEditStore(path)]
    meeting = threading.Barrier(2, timeout=0.5)
    gate = Budget(usd=None, edits=1, prices={}).gate(quote("runway", "gen4_aleph", None), START)
    outcomes: list[str] = []

    async def add(n: int) -> None:
        edit = made("runway", "gen4_aleph", "queued", provider_task_id=None)
        edit.edit_id = f"ed_{n}"
        try:
            await stores[n].add_unless_duplicate(edit, f"print-{n}", 600.0, MeetingGate(gate, meeting))
            outcomes.append("stored")
        except BudgetExceeded:
            outcomes.append("refused")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(add, 0)
            tg.start_soon(add, 1)
    stored = await stores[0].created_since(0.0)
    for store in stores:
        await store.close()
    assert sorted(outcomes) == ["refused", "stored"] and len(stored) == 1


async def test_two_server_processes_on_one_data_dir_share_one_budget(tmp_path: Path) -> None:
    """Two stdio servers with BUDGET_EDITS=1 called at the same moment: one edit starts, one is refused."""
    with serve_fakes({"runway": FakeRunway(TEST_KEY)}) as origin, (tmp_path / "server.log").open("w") as log:
        env = server_env(origin, tmp_path / "data", "runway") | {"ALEPH_MCP_BUDGET_EDITS": "1"}
        async with stdio_server(env, log) as first, stdio_server(env, log) as second:
            answers: list[Any] = []

            async def call(client: Any, n: int) -> None:
                answers.append(await client.call_tool("edit_video", {"prompt": f"edit {n}", "video": VIDEO}))

            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(call, first, 1)
                    tg.start_soon(call, second, 2)
                later = await first.call_tool("edit_video", {"prompt": "edit 3", "video": VIDEO})
    started = [a for a in answers if not a.is_error]
    refused = [a.content[0].text for a in [*answers, later] if a.is_error]
    assert len(started) == 1 and len(refused) == 2
    assert all(
        "Refused before spending" in text and "ALEPH_MCP_BUDGET_EDITS allows 1" in text for text in refused
    )


async def test_a_dry_run_says_whether_a_real_call_would_pass_the_budget(tmp_path: Path) -> None:
    """The preview reports the spend so far, or the refusal a real call would meet; it spends nothing."""
    async with kie(tmp_path, budget_usd=0.9, prices=HALF_A_DOLLAR) as (fake, service, _, _):
        before = await preview(service, await service.check(edit_args(1)))
        await service.submit(edit_args(1))
        after = await preview(service, await service.check(edit_args(2)))
    assert before.dry_run is not None and after.dry_run is not None
    assert before.dry_run.budget == (
        "Within the budget (ALEPH_MCP_BUDGET_USD $0.90): $0.00 on 0 edits in the last 24 hours."
    )
    assert after.dry_run.budget is not None
    assert after.dry_run.budget.startswith("A real call would be refused. Refused before spending")
    assert len(fake.creates) == 1


# -- what counts -----------------------------------------------------------------------------------


def made(provider: str, model: str, status: EditStatus, **fields: Any) -> Edit:
    values: dict[str, Any] = {"provider_task_id": "task-1", "estimated_cost_usd": 1.0, "created_at": START}
    values.update(fields)
    return Edit("ed_x", provider, model, "p", VIDEO, status=status, **values)


@pytest.mark.parametrize(
    ("edit", "counted"),
    [
        (made("kie", "aleph", "succeeded"), True),
        (made("kie", "aleph", "running"), True),
        (made("kie", "aleph", "failed", error_code="kie_500"), True),  # kie does not say: counted
        (made("krea", "aleph", "failed", error_code="generation_failed"), False),  # krea bills no failures
        (made("krea", "aleph", "cancelled", error_code="cancelled"), False),  # nor cancellations
        (made("runway", "gen4_aleph", "cancelled", error_code="cancelled"), True),  # runway does not say
        (made("krea", "aleph", "failed", error_code="timeout"), True),  # our deadline: it may still render
        (made("kie", "aleph", "failed", error_code="submit_outcome_unknown", provider_task_id=None), True),
        (
            made("kie", "aleph", "failed", error_code="auth_failed", provider_task_id=None),
            False,
        ),  # never created
        (made("local", "ffmpeg", "succeeded", estimated_cost_usd=0.0), False),  # free
    ],
)
def test_failed_and_cancelled_edits_count_only_where_the_provider_bills_them(
    edit: Edit, counted: bool
) -> None:
    """The rules of what a day's spend includes, one edit at a time."""
    spend = Budget(usd=10.0, edits=None, prices={}).spend([edit])
    assert [e.edit_id for e, _ in spend.counted] == (["ed_x"] if counted else [])


def test_a_price_set_by_the_user_overrides_the_catalog_on_billing_of_failures() -> None:
    """A failed krea edit stays uncounted under a user price too: billing rules are the catalog's."""
    budget = Budget(usd=1.0, edits=None, prices={"krea": PriceOverride(usd=0.4)})
    assert budget.spend([made("krea", "aleph", "failed", error_code="x")]).counted == []


def test_an_edit_stored_without_an_estimate_is_counted_at_todays_price() -> None:
    """An edit from before costs were stored is re-quoted: runway gen4_aleph at its 5-second most."""
    budget = Budget(usd=1.0, edits=None, prices={})
    spend = budget.spend([made("runway", "gen4_aleph", "succeeded", estimated_cost_usd=None)])
    assert spend.usd == quote("runway", "gen4_aleph", None).usd == 0.75
    with pytest.raises(BudgetExceeded):
        budget.check(quote("runway", "gen4_aleph", 3.0), [made("runway", "gen4_aleph", "succeeded")], START)


def test_a_free_edit_is_never_refused() -> None:
    """local costs nothing: not even a zero edit budget refuses it."""
    budget = Budget(usd=0.0, edits=0, prices={})
    budget.check(quote("local", "ffmpeg", 1.0), [made("kie", "aleph", "succeeded")] * 3, START)


def test_an_old_store_gains_the_cost_columns_and_keeps_its_edits(tmp_path: Path) -> None:
    """A data dir from before costs were stored migrates; its edits read back with no estimate."""
    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        for number, script in enumerate(MIGRATIONS[:3], start=1):
            db.executescript(script)
            db.execute(f"PRAGMA user_version={number}")
        db.execute(
            "INSERT INTO edits (edit_id, provider, model, prompt, video, status, created_at, updated_at) "
            "VALUES ('ed_old', 'runway', 'gen4_aleph', 'p', 'v', 'succeeded', 1.0, 1.0)"
        )
        db.commit()

    async def read() -> Edit | None:
        store = SQLiteEditStore(path)
        try:
            return await store.get("ed_old")
        finally:
            await store.close()

    edit = anyio.run(read)
    assert edit is not None and (edit.estimated_cost_usd, edit.cost_basis) == (None, None)
