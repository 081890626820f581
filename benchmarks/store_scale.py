"""How the SQLite store scales with the edits it holds, each against a baseline measured in the same run.

    .venv/bin/python benchmarks/store_scale.py status [--small 100] [--large 100000] [--calls 300]
    .venv/bin/python benchmarks/store_scale.py budget [--days 0,3000,30000] [--submits 300]

`status`: `list_edits(status="running")` (newest 20) on a store of `--large` edits against one of `--small`
edits, `--running` of them running (at another provider, for the provider filter), spread through the
store; the ratio should stay near 1.
`budget`: the submit rate (EditService.start: insert, lease, create, release) with ALEPH_MCP_BUDGET_EDITS
and ALEPH_MCP_BUDGET_USD set (caps never reached), against the same store with no budget, for stores
already holding that many edits of the last 24 h.
Prints medians; compare the ratios, not the milliseconds (they vary with the machine and its load).
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's stub provider

from stdio_latency import time_calls  # noqa: E402  (this folder)
from tests.fakes.stub import StubProvider  # noqa: E402

from aleph_mcp.config import Settings  # noqa: E402
from aleph_mcp.edits.requests import EditArgs  # noqa: E402
from aleph_mcp.edits.service import EditService  # noqa: E402
from aleph_mcp.models import Edit  # noqa: E402
from aleph_mcp.store import SQLiteEditStore  # noqa: E402
from aleph_mcp.store.base import COLUMNS  # noqa: E402
from aleph_mcp.store.sqlite import _edit_to_params  # noqa: E402

DAY = 24 * 3600.0
OTHER_STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "cancelled")


def fill(path: Path, count: int, *, now: float, span: float, running: int = 0) -> None:
    """`count` edits created over the `span` seconds before `now`, `running` of them still running (spread
    evenly), in one transaction."""
    SQLiteEditStore(path)  # creates the schema
    rng = random.Random(count)
    db = sqlite3.connect(path, isolation_level=None)
    columns = ", ".join(COLUMNS)
    sql = f"INSERT INTO edits ({columns}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
    rows = []
    for n in range(count):
        created = now - span + span * n / max(1, count)
        every = count // running if running else 0
        status = "running" if every and n % every == 0 else rng.choice(OTHER_STATUSES)
        edit = Edit(
            edit_id=f"ed_{n:08d}",
            provider="kie" if status == "running" else "runway",  # a rare provider too
            model="aleph" if status == "running" else "gen4_aleph",
            prompt="make it snow",
            video="https://cdn.example.com/in.mp4",
            status=status,  # type: ignore[arg-type]
            provider_task_id=f"task-{n}",
            error_code="render_failed" if status == "failed" else None,
            created_at=created,
            updated_at=created,
            estimated_cost_usd=0.05,
        )
        rows.append(_edit_to_params(edit))
    db.execute("BEGIN")
    db.executemany(sql, rows)
    db.execute("COMMIT")
    db.close()


def line(name: str, samples: list[float], baseline: list[float] | None = None) -> str:
    text = f"{name:<48} median {statistics.median(samples) * 1000:8.3f} ms"
    if baseline:
        text += f"   x{statistics.median(samples) / statistics.median(baseline):.2f} baseline"
    return text


async def status_filter(small: int, large: int, running: int, calls: int) -> None:
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for count in (small, large):
            path = Path(tmp) / f"{count}.sqlite3"
            fill(path, count, now=now, span=30 * DAY, running=running)
            store = SQLiteEditStore(path)
            results[count] = await time_calls(calls, lambda s=store: s.list_edits(status="running", limit=20))
            results[-count] = await time_calls(calls, lambda s=store: s.list_edits(provider="kie", limit=20))
            await store.close()
    print(f"{calls} calls each; {running} running edits in each store")
    print(line(f"list_edits(status=running) on {small:,}", results[small]))
    print(line(f"list_edits(status=running) on {large:,}", results[large], results[small]))
    print(line(f"list_edits(provider=kie) on {small:,}", results[-small]))
    print(line(f"list_edits(provider=kie) on {large:,}", results[-large], results[-small]))


def service(store: SQLiteEditStore, data: Path, budget_edits: int | None) -> EditService:
    """A service on `store`; with `budget_edits`, both caps are set (the USD one as high: never reached)."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=data,
        runway_api_key="bench-key-0123456789",
        budget_edits=budget_edits,
        budget_usd=None if budget_edits is None else budget_edits * 10.0,
        prices={"runway/aleph2": {"usd": 0.05}},  # the stub's model: priced, as a USD cap needs
    )
    return EditService(store, {"runway": StubProvider(name="runway")}, settings, owner="bench")


async def submit_rate(days: list[int], submits: int, rounds: int = 10) -> None:
    """Per day size: a store without a budget and one with, submitted to in alternating rounds (so a load
    change on the machine hits both alike)."""
    args = EditArgs(prompt="make it snow", video="https://cdn.example.com/in.mp4", allow_duplicate=True)
    print(f"{submits} submits each, in {rounds} alternating rounds (rate = 1 / median submit time)")
    with tempfile.TemporaryDirectory() as tmp:
        for day in days:
            caps: list[int | None] = [None, day + 10 * submits + 100]  # a cap never reached
            services, samples = [], {}
            for cap in caps:
                folder = Path(tmp) / f"{day}-{cap}"
                path = folder / "edits.sqlite3"
                path.parent.mkdir(parents=True)
                fill(path, day, now=time.time(), span=DAY - 600)
                svc = service(SQLiteEditStore(path), folder, cap)
                services.append((svc, await svc.check(args)))
                samples[cap] = []
            for _ in range(rounds):
                for cap, (svc, intake) in zip(caps, services, strict=True):
                    samples[cap] += await time_calls(submits // rounds, lambda s=svc, i=intake: s.start(i))
            for svc, _ in services:
                await svc.store.close()
            plain, capped = samples[None], samples[caps[1]]
            rates = [1 / statistics.median(plain), 1 / statistics.median(capped)]
            print(line(f"submit, no budget, {day:,} edits in 24 h", plain))
            print(line(f"submit, BUDGET_EDITS+USD set, {day:,} edits in 24 h", capped, plain))
            print(f"    rate {rates[0]:.0f}/s without, {rates[1]:.0f}/s with: x{rates[1] / rates[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status")
    status.add_argument("--small", type=int, default=100)
    status.add_argument("--large", type=int, default=100_000)
    status.add_argument("--running", type=int, default=10)
    status.add_argument("--calls", type=int, default=300)
    budget = commands.add_parser("budget")
    budget.add_argument("--days", default="0,3000,30000")
    budget.add_argument("--submits", type=int, default=300)
    options = parser.parse_args()
    if options.command == "status":
        anyio.run(status_filter, options.small, options.large, options.running, options.calls)
    else:
        anyio.run(submit_rate, [int(d) for d in options.days.split(",")], options.submits)
