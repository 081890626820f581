"""How the PostgreSQL store scales with the edits it holds: 100,000 edits against 100, in one run.

    .venv/bin/python benchmarks/postgres_scale.py [--small 100] [--large 100000] [--calls 300] [--rounds 6]

Starts its own throwaway cluster (tests/postgres.py; or ALEPH_MCP_TEST_POSTGRES_URL) with two databases,
fills one with `--small` and one with `--large` edits over 30 days (of 20 owners, 2 in a small store; 1 %
running, half in a small store, all of the caller's), and times,
in alternating rounds so a change of load on the machine hits both alike:
- `list_edits(owner=…)`: one user's newest 20, and the page after that (a cursor);
- `list_edits(owner=…, status="running")`: the filter an agent uses to find its running edits;
- `get_edit_status`'s read: `EditService.get(edit_id, owner)` of a random edit of that owner.
Prints medians and the large/small ratio of each; compare the ratios, not the milliseconds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's PostgreSQL helper and stub provider

from tests.fakes.stub import StubProvider  # noqa: E402
from tests.postgres import Databases, postgres_server  # noqa: E402

from aleph_mcp.config import Settings  # noqa: E402
from aleph_mcp.edits.service import EditService  # noqa: E402
from aleph_mcp.store.postgres import PostgresEditStore  # noqa: E402

OWNER = "token:user0"  # the caller: the owner of every 20th edit (every 2nd of the small store's)


def owners(count: int) -> int:
    """20 owners; fewer in a small store, so that the caller has more than a page of edits there too."""
    return max(2, min(20, count // 50))


def running_every(count: int) -> int:
    """Every 100th edit is running (each of them the caller's); every 2nd in a small store, so that a
    page of running edits is a full page there too."""
    return 100 if count >= 2000 else 2


DAY = 24 * 3600.0
FILL = """
INSERT INTO edits (edit_id, provider, model, prompt, video, status, created_at, updated_at, owner,
                   next_poll_at, provider_task_id, fingerprint, estimated_cost_usd)
SELECT 'ed_' || md5(n::text),
       CASE WHEN n %% %(every)s = 0 THEN 'kie' ELSE 'runway' END, 'gen4_aleph', 'make it snow',
       'https://cdn.example.com/in.mp4',
       CASE WHEN n %% %(every)s = 0 THEN 'running' WHEN n %% 9 = 0 THEN 'failed' ELSE 'succeeded' END,
       %(start)s + n * %(step)s, %(start)s + n * %(step)s, 'token:user' || (n %% %(owners)s),
       CASE WHEN n %% %(every)s = 0 THEN %(start)s + n * %(step)s + 60 END,
       'task-' || n, md5('fp' || n), 0.05
FROM generate_series(1, %(count)s) AS n;
ANALYZE edits;
"""

Call = Callable[[], Awaitable[Any]]


async def filled(url: str, count: int, now: float) -> PostgresEditStore:
    store = await PostgresEditStore.open(url)  # creates the schema
    step = 30 * DAY / count
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in FILL.split(";"):
            if statement.strip():
                params = {"start": now - 30 * DAY, "step": step, "owners": owners(count), "count": count}
                params["every"] = running_every(count)
                conn.execute(statement.encode(), params if "%(" in statement else None)
    return store


def ids_of(url: str, owner: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [str(r[0]) for r in conn.execute("SELECT edit_id FROM edits WHERE owner = %s", [owner])]


async def time_calls(calls: int, call: Call) -> list[float]:
    for _ in range(min(20, calls)):  # warm-up: the pool's connections, the plan cache
        await call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


def calls_for(store: PostgresEditStore, service: EditService, ids: list[str], cursor: str) -> dict[str, Call]:
    owner, rng = OWNER, random.Random(7)
    return {
        "list_edits(owner), newest 20": lambda: store.list_edits(owner=owner, limit=20),
        "list_edits(owner), from a cursor": lambda: store.list_edits(owner=owner, limit=20, cursor=cursor),
        "list_edits(owner, status=running)": lambda: store.list_edits(
            owner=owner, status="running", limit=20
        ),
        "get_edit_status read (service.get)": lambda: service.get(rng.choice(ids), owner),
    }


async def main(small: int, large: int, calls: int, rounds: int) -> None:
    now = time.time()
    with postgres_server() as server:
        databases = Databases(server)
        try:
            setups = {}
            for count in (small, large):
                url = databases.fresh()
                began = time.perf_counter()
                store = await filled(url, count, now)
                print(f"filled {count:,} edits in {time.perf_counter() - began:.1f} s")
                settings = Settings(_env_file=None, data_dir=ROOT / "build" / "bench")  # type: ignore[call-arg]
                service = EditService(store, {"runway": StubProvider(name="runway")}, settings, owner="bench")
                _, cursor = await store.list_edits(owner=OWNER, limit=2)  # a cursor at any size
                setups[count] = (store, calls_for(store, service, ids_of(url, OWNER), cursor or ""))
                running, _ = await store.list_edits(owner=OWNER, status="running")
                owned = len(ids_of(url, OWNER))
                print(f"  {OWNER} owns {owned:,}; a page of running edits holds {len(running)}")
            samples: dict[tuple[int, str], list[float]] = {}
            for _ in range(rounds):
                for count, (_, named) in setups.items():
                    for name, call in named.items():
                        samples.setdefault((count, name), []).extend(await time_calls(calls // rounds, call))
            report(samples, small, large, calls, rounds)
            for store, _ in setups.values():
                await store.close()
        finally:
            databases.close()


def report(
    samples: dict[tuple[int, str], list[float]], small: int, large: int, calls: int, rounds: int
) -> None:
    print(f"{calls} calls each, in {rounds} alternating rounds")
    names = [name for count, name in samples if count == small]
    for name in names:
        base, big = statistics.median(samples[small, name]), statistics.median(samples[large, name])
        print(
            f"{name:<40} {small:>7,}: {base * 1000:7.3f} ms   {large:>7,}: {big * 1000:7.3f} ms"
            f"   ratio x{big / base:.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=6)
    options = parser.parse_args()
    anyio.run(main, options.small, options.large, options.calls, options.rounds)
