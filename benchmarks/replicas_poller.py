"""The poller's sustained status checks per second: three replicas on one PostgreSQL against one on SQLite.

    .venv/bin/python benchmarks/replicas_poller.py [--in-flight 5000] [--window 15] [--concurrency 16]

One loopback fake of Runway's API in its own process (poller_scale.py's: every job stays RUNNING, it counts
the status reads it answers) and `--in-flight` running edits seeded into each store, every one due all the
time (poll interval 0.05 s, max 0.1 s), so each replica reads as fast as it can. In one run:
1. the baseline: one `aleph-mcp serve --http` on SQLite in its own data dir;
2. one replica on a throwaway PostgreSQL (tests/postgres.py; or ALEPH_MCP_TEST_POSTGRES_URL);
3. three replicas on that database (each with a data dir of its own, as on different hosts).
Each phase warms up for `--warmup` s, then the fake's count is sampled every second for `--window` s.
Prints the median (and p10-p90) of the per-second rates and each against the baseline. The machine's cores
bound what three replicas can add: compare ratios from one run, not rates across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test suite's PostgreSQL helper, poller_scale's fake and seeding

from benchmarks.poller_scale import FAR, fake_stats, seed  # noqa: E402
from tests.postgres import Databases, postgres_server  # noqa: E402

from aleph_mcp.models import Edit  # noqa: E402
from aleph_mcp.store.base import COLUMNS  # noqa: E402
from aleph_mcp.store.postgres import PostgresEditStore, _params  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sqlite_store(data_dir: Path, count: int) -> None:
    """`count` running edits at the fake, due at once (poller_scale's seed schedules them far ahead)."""
    path = data_dir / "edits.sqlite3"
    seed(path, count, 0, (0.0, 0.0), "")
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("UPDATE edits SET next_poll_at = 0")
    db.close()


async def postgres_store(url: str, count: int) -> None:
    """The same edits as poller_scale's seed, due at once, in PostgreSQL (its schema made by the store)."""
    await (await PostgresEditStore.open(url)).close()
    now = time.time()
    rows = []
    for n in range(count):
        edit = Edit(f"ed_{n:06d}", "runway", "aleph2", "snow", "https://example.com/in.mp4", status="running")
        edit.provider_task_id = f"job-{n}-{round(now * 1000) + FAR}"
        edit.created_at = edit.updated_at = edit.create_sent_at = now
        edit.next_poll_at = 0.0
        rows.append(_params(edit))
    insert = f"INSERT INTO edits ({', '.join(COLUMNS)}) VALUES ({', '.join(f'%({c})s' for c in COLUMNS)})"
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        cursor.executemany(insert, rows)
        conn.execute("ANALYZE edits")


def server_env(
    args: argparse.Namespace, origin: str, data_dir: Path, store_url: str | None
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT / "src"),
        "ALEPH_MCP_DATA_DIR": str(data_dir),
        "ALEPH_MCP_DEFAULT_PROVIDER": "runway",
        "RUNWAYML_API_SECRET": "key-benchmark",
        "ALEPH_MCP_RUNWAY_BASE_URL": origin,
        "ALEPH_MCP_POLL_INTERVAL": "0.05",
        "ALEPH_MCP_POLL_MAX_INTERVAL": "0.1",
        "ALEPH_MCP_POLL_CONCURRENCY": str(args.concurrency),
        "ALEPH_MCP_RUNWAY_REQUESTS_PER_SECOND": "100000",
        "ALEPH_MCP_ALLOW_PRIVATE_URLS": "true",
        "ALEPH_MCP_PROBE_URLS": "false",
        "ALEPH_MCP_LOG_LEVEL": "WARNING",
        "ALEPH_MCP_HTTP_TOKENS": "bench=token-benchmark-0123456789",
    }
    if store_url:
        env["ALEPH_MCP_STORE_URL"] = store_url
    return env


@contextmanager
def servers(envs: list[dict[str, str]], log: Path) -> Iterator[list[str]]:
    """`serve --http` replicas; yields their base URLs."""
    processes, bases = [], []
    with log.open("ab") as out:
        for env in envs:
            port = free_port()
            command = [sys.executable, "-m", "aleph_mcp", "serve", "--http", "--port", str(port)]
            processes.append(subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT))
            bases.append(f"http://127.0.0.1:{port}")
    try:
        yield bases
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


async def healthy(bases: list[str]) -> None:
    async with httpx2.AsyncClient() as http:
        for base in bases:
            with anyio.fail_after(60):
                while True:
                    try:
                        if (await http.get(f"{base}/healthz")).status_code == 200:
                            break
                    except httpx2.TransportError:
                        pass
                    await anyio.sleep(0.1)


async def rates(origin: str, bases: list[str], args: argparse.Namespace) -> list[float]:
    """Status reads per second at the fake, one sample a second through the window (after the replicas
    answer /healthz and a warm-up)."""
    await healthy(bases)
    await anyio.sleep(args.warmup)
    samples: list[float] = []
    before, at = (await fake_stats(origin))["requests"], time.perf_counter()
    for _ in range(int(args.window)):
        await anyio.sleep(1.0)
        now_count, now = (await fake_stats(origin))["requests"], time.perf_counter()
        samples.append((now_count - before) / (now - at))
        before, at = now_count, now
    return samples


def line(name: str, samples: list[float], baseline: float | None) -> float:
    median = statistics.median(samples)
    deciles = statistics.quantiles(samples, n=10)
    versus = f"   x{median / baseline:.2f} the baseline" if baseline else "   (baseline)"
    print(f"{name:<36} median {median:8.1f}/s   p10 {deciles[0]:8.1f}   p90 {deciles[-1]:8.1f}{versus}")
    return median


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port_file = root / "port"
        fake = await anyio.open_process(
            [sys.executable, str(ROOT / "benchmarks" / "poller_scale.py"), "fake", str(port_file)]
        )
        try:
            while not port_file.exists() or not port_file.read_text():  # noqa: ASYNC110 (another process)
                await anyio.sleep(0.05)
            origin = f"http://127.0.0.1:{port_file.read_text()}"
            with postgres_server() as server:
                databases = Databases(server)
                try:
                    await phases(args, origin, root, databases)
                finally:
                    databases.close()
        finally:
            fake.terminate()
            await fake.wait()


async def phases(args: argparse.Namespace, origin: str, root: Path, databases: Databases) -> None:
    log = root / "servers.log"
    print(f"{args.in_flight} edits in flight, all due; poll concurrency {args.concurrency} per replica")
    (root / "sqlite").mkdir()
    sqlite_store(root / "sqlite", args.in_flight)
    with servers([server_env(args, origin, root / "sqlite", None)], log) as bases:
        baseline = line("1 replica, SQLite", await rates(origin, bases, args), None)
    for count in (1, 3):
        url = databases.fresh()
        await postgres_store(url, args.in_flight)
        envs = [server_env(args, origin, root / f"pg{count}-{n}", url) for n in range(count)]
        with servers(envs, log) as bases:
            name = f"{count} replica{'s' if count > 1 else ''}, one PostgreSQL"
            line(name, await rates(origin, bases, args), baseline)
        databases.give_back(url)
    errors = [t for t in log.read_text(errors="replace").splitlines() if "Traceback" in t or "ERROR" in t]
    if errors:
        print(f"servers logged {len(errors)} errors; see {log}: {errors[:3]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--in-flight", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16, help="ALEPH_MCP_POLL_CONCURRENCY per replica")
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--window", type=float, default=15.0)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
