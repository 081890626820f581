"""How soon a waiting `get_edit_status(wait_seconds=...)` answers once its edit ends.

    .venv/bin/python benchmarks/wait_wakeup.py [--runs 20] [--poll-interval 1.0]

One real server (`python -m aleph_mcp` over stdio, the offline `local` provider, a temporary data dir).

- in this process: `edit_video` with `local`, then one waiting `get_edit_status`; the server's own poller
  ends the edit. Measured from the edit's `finished_at` (read from the SQLite file) to the call's answer
  arriving here.
- another process: this benchmark writes an edit's end straight into the server's SQLite file, as a second
  server sharing the data dir would; the server's store watcher (every `min(1 s, poll interval)`) wakes the
  waiting call. Measured from just before the write to the answer. The write comes 0.3 s (so the call is
  surely waiting) plus a random part of a second (so it falls anywhere between two watcher ticks) after the
  call is sent.

Prints medians and p90 over `--runs` runs and the watcher interval. Everything stays on this machine.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from aleph_mcp.models import Edit
from aleph_mcp.store import SQLiteEditStore

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "sample.mp4"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(name: str, samples: list[float]) -> str:
    median, p90 = statistics.median(samples) * 1000, percentile(samples, 0.9) * 1000
    return f"{name:<44} median {median:8.1f} ms   p90 {p90:8.1f} ms   ({len(samples)} runs)"


def finished_at(store_path: Path, edit_id: str) -> float:
    with sqlite3.connect(store_path) as db:
        row = db.execute("SELECT finished_at FROM edits WHERE edit_id = ?", (edit_id,)).fetchone()
    return float(row[0])


async def waited(client: Client, edit_id: str) -> tuple[dict[str, Any], float]:
    result = await client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": 30})
    answered = time.time()
    assert result.structured_content is not None, result.content
    return result.structured_content, answered


async def ended_here(client: Client, store_path: Path) -> float:
    """A local edit that the server's own poller ends: finished_at -> the waiting call's answer."""
    started = await client.call_tool(
        "edit_video", {"prompt": "invert", "video": str(SAMPLE), "allow_duplicate": True}
    )
    edit_id = (started.structured_content or {})["edit_id"]
    record, answered = await waited(client, edit_id)
    assert record["status"] == "succeeded", record
    return answered - finished_at(store_path, edit_id)


async def ended_elsewhere(client: Client, store: SQLiteEditStore, n: int) -> float:
    """An edit another process ends in the shared SQLite file: the write -> the waiting call's answer."""
    now = time.time()
    edit = Edit(
        f"ed_other_{n:04d}", "runway", "aleph2", "snow", "https://example.com/in.mp4", status="running"
    )
    edit.created_at = edit.updated_at = now
    edit.provider_task_id = "elsewhere"  # followed by the other process: this server never polls it
    await store.add(edit)
    answer: dict[str, Any] = {}

    async def wait() -> None:
        answer["record"], answer["at"] = await waited(client, edit.edit_id)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.sleep(0.3 + random.random())  # a random phase against the watcher's ticks
        wrote = time.time()
        edit.finish("succeeded", wrote)
        await store.save(edit)
    assert answer["record"]["status"] == "succeeded", answer["record"]
    return float(answer["at"]) - wrote


async def main(runs: int, poll_interval: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "ALEPH_MCP_DATA_DIR": str(data),
            "ALEPH_MCP_ALLOWED_DIRS": str(SAMPLE.parent),
            "ALEPH_MCP_DEFAULT_PROVIDER": "local",
            "ALEPH_MCP_POLL_INTERVAL": str(poll_interval),
            "ALEPH_MCP_POLL_MAX_INTERVAL": str(poll_interval),
            "ALEPH_MCP_LOG_LEVEL": "WARNING",
        }
        params = StdioServerParameters(command=sys.executable, args=["-m", "aleph_mcp"], env=env)
        async with Client(params, mode="legacy") as client:
            await ended_here(client, data / "edits.sqlite3")  # warm-up: PyAV, the first render
            here = [await ended_here(client, data / "edits.sqlite3") for _ in range(runs)]
            store = SQLiteEditStore(data / "edits.sqlite3")
            try:
                elsewhere = [await ended_elsewhere(client, store, n) for n in range(runs)]
            finally:
                await store.close()
    watcher = min(1.0, poll_interval)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; store watcher interval {watcher:g} s")
    print(describe("edit ended in the server's own process", here))
    print(describe("edit ended by another process (SQLite)", elsewhere))
    print(f"  in-process median under 100 ms: {statistics.median(here) < 0.1}")
    print(f"  cross-process median under one watcher interval: {statistics.median(elsewhere) < watcher}")


def cli() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="runs of each measurement (at least 20)")
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="the server's ALEPH_MCP_POLL_INTERVAL"
    )
    return parser.parse_args()


if __name__ == "__main__":
    given = cli()
    anyio.run(main, max(20, given.runs), given.poll_interval)
