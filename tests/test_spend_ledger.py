"""The budget's sums (`spend_since`): the SQLite ledger, kept by triggers, and the in-memory store's sums
agree with a full recount of every edit, whatever edits fail, are cancelled or leave the window, across
a reopen; and the sums pass an edit only where the full check would."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import pytest

from aleph_mcp.config import PriceOverride
from aleph_mcp.errors import BudgetExceeded, ErrorCode
from aleph_mcp.models import Edit, EditStatus, SpendGroup, billing_class, cost_kind, stored_cost
from aleph_mcp.pricing.budget import WINDOW, Budget, BudgetGate, sure_margin
from aleph_mcp.pricing.catalog import Quote, quote
from aleph_mcp.store import MIGRATIONS, EditStore, Gate, InMemoryEditStore, SQLiteEditStore
from aleph_mcp.store import ledger as ledger_sql

from .fakes.clock import START

MODELS = [("runway", "gen4_aleph"), ("krea", "aleph"), ("kie", "aleph"), ("local", "ffmpeg"), ("gone", "x")]
OWNERS = ["local", "token:ann", "oauth:bo"]
CODES: list[str | None] = [None, "render_failed", *get_args(ErrorCode)]
COSTS = [None, 0.0, 0.05, 0.75, 1.0 / 3, 0.1 + 0.2, 2.5e6]  # 2.5e6: an outlier, recounted one by one
BUDGETS = [
    Budget(usd=None, edits=None, prices={}),
    Budget(usd=None, edits=None, prices={"krea": PriceOverride(usd=0.4), "gone/x": PriceOverride(usd=1.0)}),
]


def key(groups: list[SpendGroup]) -> list[tuple[Any, ...]]:
    """Groups in a comparable order; same-key groups (one per owner in a store) merged."""
    merged: dict[tuple[Any, ...], list[int]] = {}
    for g in groups:
        sums = merged.setdefault((g.provider, g.model, g.billing, g.kind), [0, 0, 0])
        sums[0], sums[1], sums[2] = sums[0] + g.edits, sums[1] + g.nano, sums[2] + g.free
    return sorted((*k, *v) for k, v in merged.items() if v[0])


def recount(budget: Budget, edits: list[Edit]) -> tuple[int, float, bool]:
    """(counted edits, dollars, whether an outlier cost is among them), edit by edit as `check` counts."""
    spend = budget.spend(edits)
    outlier = any(cost_kind(stored_cost(e)) == "outlier" for e, _ in spend.counted)
    return len(spend.counted), spend.usd, outlier


@dataclass
class World:
    """Both stores, driven alike by one seeded random sequence."""

    path: Path
    rng: random.Random
    stores: list[EditStore] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    now: float = START

    def open(self) -> None:
        memory = self.stores[1] if self.stores else InMemoryEditStore()
        self.stores = [SQLiteEditStore(self.path), memory]

    async def add(self, gate: Gate | None = None) -> None:
        provider, model = self.rng.choice(MODELS)
        edit = Edit(
            f"ed_{len(self.ids):05d}",
            provider,
            model,
            "p",
            "v",
            created_at=self.now + self.rng.choice([0.0, 0.0, -30.0]),  # some out of order
            estimated_cost_usd=self.rng.choice(COSTS),
            owner=self.rng.choice(OWNERS),
        )
        self.ids.append(edit.edit_id)
        for store in self.stores:
            if gate is None:
                await store.add(edit)
            else:
                with contextlib.suppress(BudgetExceeded):
                    await store.add_unless_duplicate(edit, edit.edit_id, 0.0, gate)

    async def change(self) -> None:
        """Fail, cancel, finish or re-report the cost of a random edit (in both stores alike)."""
        edit_id = self.rng.choice(self.ids)
        status: EditStatus = self.rng.choice(["failed", "cancelled", "succeeded", "running", "queued"])
        code, task = self.rng.choice(CODES), self.rng.choice([None, "task-1"])
        reported = self.rng.choice([None, None, 0.0, 0.4, 7e6])
        for store in self.stores:
            stored = await store.get(edit_id)
            if stored is None:  # refused by a gate in both stores
                continue
            stored.status, stored.error_code, stored.provider_task_id = status, code, task
            stored.provider_cost_usd = reported
            await store.save(stored)

    async def look(self, since: float) -> None:
        """Both stores' sums are alike, and say what a recount of the window's edits says."""
        for owner in [None, *OWNERS]:
            sqlite_sums, memory_sums = [await s.spend_since(since, owner) for s in self.stores]
            assert key(sqlite_sums) == key(memory_sums)
            recent = [
                e for e in await self.stores[0].created_since(since) if owner is None or e.owner == owner
            ]
            for budget in BUDGETS:
                tallied, (counted, usd, outlier) = budget.tally(sqlite_sums), recount(budget, recent)
                if outlier:
                    assert tallied is None
                    continue
                assert tallied is not None and tallied[0] == counted
                assert abs(tallied[1] - usd) <= sure_margin(counted, usd)

    async def close(self) -> None:
        for store in self.stores:
            await store.close()


class AdmitAll:
    """A budget gate passing every edit, from the sums; the window's edits are never read."""

    def __init__(self, since: float) -> None:
        self.since = since
        self.sums_owner: str | None = None

    def check(self, recent: list[Edit]) -> None:
        raise AssertionError("admitted from the sums: the edits are not read")

    def admits(self, everyone: list[SpendGroup], own: list[SpendGroup]) -> bool:
        return True


async def play(world: World, steps: int) -> None:
    rng = world.rng
    for step in range(steps):
        world.now += rng.choice([0.0, 1.0, 60.0, 3600.0, 6 * 3600.0])
        roll = rng.random()
        if roll < 0.4 or not world.ids:
            await world.add()
        elif roll < 0.75:
            await world.change()
        elif roll < 0.9:
            # A gated insert moves the ledger's window (forward, or back for a lagging clock).
            await world.add(AdmitAll(world.now - WINDOW + rng.choice([0.0, -7200.0, 5.0])))
        else:
            await world.look(world.now - rng.choice([WINDOW, WINDOW / 3, 10 * WINDOW, 0.0]))
        if step == steps // 2:  # a restart: the ledger is in the file
            await world.stores[0].close()
            world.open()
    for since in (START - 1.0, world.now - WINDOW, world.now - 60.0, world.now + 1.0):
        await world.look(since)


@pytest.mark.parametrize("seed", range(12))
async def test_the_ledger_and_a_full_recount_agree_after_random_edits_failures_and_cancellations(
    tmp_path: Path, seed: int
) -> None:
    """150 random adds, failures, cancellations, cost reports, window moves and looks, with a reopen."""
    world = World(tmp_path / "edits.sqlite3", random.Random(seed))
    world.open()
    try:
        await play(world, 150)
    finally:
        await world.close()


async def test_a_second_connection_writing_the_file_keeps_the_ledger_right(tmp_path: Path) -> None:
    """Another process's writes (a second store on the file) fire the same triggers: the sums still agree."""
    path = tmp_path / "edits.sqlite3"
    first, second = SQLiteEditStore(path), SQLiteEditStore(path)
    gate = AdmitAll(START - WINDOW)
    for n in range(6):
        edit = Edit(
            f"ed_{n}", "runway", "gen4_aleph", "p", "v", created_at=START + n, estimated_cost_usd=0.75
        )
        await (first if n % 2 else second).add_unless_duplicate(edit, f"p{n}", 0.0, gate)
    failed = await second.get("ed_1")
    assert failed is not None
    failed.status, failed.error_code, failed.provider_task_id = "failed", "auth_failed", None
    await second.save(failed)
    sums = await first.spend_since(START - WINDOW)
    await first.close()
    await second.close()
    assert key(sums) == [
        ("runway", "gen4_aleph", "billed", "summed", 5, 5 * 750_000_000, 0),
        ("runway", "gen4_aleph", "refused", "summed", 1, 750_000_000, 0),
    ]


async def at_cap(budget: Budget, estimate: Quote, edits: list[Edit]) -> tuple[bool, bool]:
    """(whether the sums admit the edit, whether the full check passes it)."""
    try:
        budget.check(estimate, edits, START, "local")
        passes = True
    except BudgetExceeded:
        passes = False
    store = InMemoryEditStore()
    for edit in edits:
        await store.add(edit)
    since = START - WINDOW
    return budget.admits(
        estimate, await store.spend_since(since), await store.spend_since(since, "local")
    ), passes


@pytest.mark.parametrize("cap", [None, 0.0, 1.49, 1.5, 1.5 + 1e-10, 2.25, 2.26])
@pytest.mark.parametrize("edits", [None, 0, 1, 2, 3])
@pytest.mark.parametrize("per_user", [None, 1.5, 2.25])
async def test_the_sums_admit_an_edit_only_where_the_full_check_passes_it(
    cap: float | None, edits: int | None, per_user: float | None
) -> None:
    """Around each cap's edge: admitted from the sums implies passed by the recount (else the recount
    decides), and far from the edges the sums do admit."""
    stored = [
        Edit(f"ed_{n}", "runway", "gen4_aleph", "p", "v", created_at=START - 10 + n, estimated_cost_usd=0.75)
        for n in range(2)
    ]
    stored.append(Edit("ed_free", "local", "ffmpeg", "p", "v", created_at=START - 5, estimated_cost_usd=0.0))
    budget = Budget(usd=cap, edits=edits, prices={}, usd_per_user=per_user)
    sums_admit, passes = await at_cap(budget, quote("runway", "gen4_aleph", None), stored)
    assert passes or not sums_admit
    roomy = all(limit is None or limit >= 2.26 for limit in (cap, per_user)) and edits in (None, 3)
    assert sums_admit == roomy


@dataclass(frozen=True)
class CountingGate(BudgetGate):
    """The budget's gate, recording each time the store had to hand it every edit of the window."""

    reads: list[int] = field(default_factory=list)

    def check(self, recent: list[Edit]) -> None:
        self.reads.append(len(recent))
        super().check(recent)


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
async def test_an_edit_with_room_under_the_cap_is_passed_without_reading_the_window(
    tmp_path: Path, kind: str
) -> None:
    """Room left: the sums decide and no edit is read; at the cap: the edits are read and it is refused."""
    store: EditStore = SQLiteEditStore(tmp_path / "e.sqlite3") if kind == "sqlite" else InMemoryEditStore()
    budget = Budget(usd=None, edits=3, prices={})
    estimate = quote("runway", "gen4_aleph", None)
    gates = []
    for n in range(4):
        gate = CountingGate(budget, estimate, START + n, START + n - WINDOW)
        gates.append(gate)
        edit = Edit(
            f"ed_{n}", "runway", "gen4_aleph", "p", "v", created_at=START + n, estimated_cost_usd=0.75
        )
        with contextlib.suppress(BudgetExceeded):
            await store.add_unless_duplicate(edit, f"print-{n}", 0.0, gate)
    assert [gate.reads for gate in gates] == [[], [], [], [3]]
    assert len(await store.created_since(0.0)) == 3
    await store.close()


def test_the_sql_billing_class_and_cost_kind_are_the_python_ones() -> None:
    """Every status, error code (ours and others), with a task or without, every cost: SQL and Python
    classify alike."""
    with contextlib.closing(sqlite3.connect(":memory:")) as db:
        db.execute(
            "CREATE TABLE edits (status TEXT, provider_task_id TEXT, error_code TEXT, "
            "provider_cost_usd REAL, estimated_cost_usd REAL)"
        )
        cases = [
            Edit(
                "ed",
                "kie",
                "aleph",
                "p",
                "v",
                status=status,
                error_code=code,
                provider_task_id=task,
                estimated_cost_usd=cost,
                provider_cost_usd=reported,
            )
            for status in get_args(EditStatus)
            for code in CODES
            for task in (None, "task-1")
            for cost, reported in [(None, None), (0.5, None), (0.5, 0.0), (None, 2e6), (-1.0, None)]
        ]
        db.executemany(
            "INSERT INTO edits VALUES (?, ?, ?, ?, ?)",
            [
                (e.status, e.provider_task_id, e.error_code, e.provider_cost_usd, e.estimated_cost_usd)
                for e in cases
            ],
        )
        classes = f"{ledger_sql.billing_sql('edits')}, {ledger_sql.kind_sql('edits')}"
        sql = f"SELECT {classes} FROM edits ORDER BY rowid"
        in_sql = db.execute(sql).fetchall()
    assert in_sql == [(billing_class(e), cost_kind(stored_cost(e))) for e in cases]


async def test_a_store_from_before_the_ledger_migrates_and_sums_its_earlier_edits(tmp_path: Path) -> None:
    """A version-9 data dir with edits gains the ledger; the first gated insert sums what was there."""
    path = tmp_path / "old.sqlite3"
    with contextlib.closing(sqlite3.connect(path)) as db:
        for number, script in enumerate(MIGRATIONS[:9], start=1):
            db.executescript(script)
            db.execute(f"PRAGMA user_version={number}")
        for n, status in enumerate(["succeeded", "failed", "running"]):
            db.execute(
                "INSERT INTO edits (edit_id, provider, model, prompt, video, status, provider_task_id, "
                "created_at, updated_at, estimated_cost_usd) VALUES (?, 'runway', 'gen4_aleph', 'p', 'v', ?, "
                "'task', ?, ?, 0.75)",
                (f"ed_old{n}", status, START + n, START + n),
            )
        db.commit()
    store = SQLiteEditStore(path)
    gate = CountingGate(
        Budget(usd=3.5, edits=None, prices={}), quote("runway", "gen4_aleph", None), START, 0.0
    )
    new = Edit("ed_new", "runway", "gen4_aleph", "p", "v", created_at=START + 9, estimated_cost_usd=0.75)
    await store.add_unless_duplicate(new, "print", 0.0, gate)
    sums = await store.spend_since(0.0)
    await store.close()
    assert gate.reads == []  # $2.25 + $0.75 well under $3.50: passed from the sums
    assert key(sums) == [
        ("runway", "gen4_aleph", "billed", "summed", 3, 3 * 750_000_000, 0),
        ("runway", "gen4_aleph", "failed", "summed", 1, 750_000_000, 0),
    ]
