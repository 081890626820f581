"""How soon an edit shows `succeeded` once its provider finishes: with webhooks, and with polling only.

    .venv/bin/python benchmarks/webhook_latency.py [--runs 10] [--finish-within 10] [--seed 1]

Two real aleph-mcp HTTP servers (uvicorn on 127.0.0.1, `build_http_app`) in this process, both with kie at a
loopback fake kie (`tests/fakes/kie.py`) and the default poll intervals (ALEPH_MCP_POLL_INTERVAL=5,
ALEPH_MCP_POLL_MAX_INTERVAL=60), measured in the same run:

- webhooks: ALEPH_MCP_PUBLIC_URL is the server's own URL, so kie's create carries a `callBackUrl`. The fake
  task finishes, and this benchmark POSTs that callback as kie would (`{"code":200,"msg":"success",...}`).
- polling only: no public URL, so no callback; the task finishes at a random moment `--finish-within`
  seconds after the create (as a provider would), and the server's poller finds it on its next status read.

Each run: `edit_video`, then a waiting `get_edit_status(wait_seconds=...)` (woken by the change itself), then
the finish. Measured from the moment the fake task finishes to the waiting call's answer arriving here,
which includes the status read, the download of the result from the fake and the archive. Prints medians and
p90 over `--runs` runs of each, the ratio, kie status reads per edit, and the part until the edit's
`finished_at` in the SQLite file (the rest is the answer's way back). Randomness is seeded (`--seed`);
the poller's own jitter is not, so polling numbers vary a little between runs. Everything stays on loopback.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import TEST_KEY, make_settings  # noqa: E402
from tests.fakes.kie import FakeKie  # noqa: E402
from tests.fakes.server import serve_fakes  # noqa: E402
from tests.http_server import http_client, served_http  # noqa: E402

VIDEO = "https://cdn.example.com/in/clip.mp4"  # never fetched: probe_urls is off, the fake takes any URL
WAIT = 45.0  # seconds a status call waits for the end (the tool allows 50)
Sample = tuple[float, int, float]  # finish -> answer (s), kie status reads, finish -> finished_at (s)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(name: str, samples: list[float]) -> str:
    median, p90 = statistics.median(samples) * 1000, percentile(samples, 0.9) * 1000
    return f"{name:<36} median {median:8.1f} ms   p90 {p90:8.1f} ms   ({len(samples)} runs)"


@asynccontextmanager
async def server(folder: Path, origin: str, *, public: bool) -> AsyncIterator[Served]:
    """An aleph-mcp HTTP server with kie at the fake, and a signed-in client of it."""
    settings = make_settings(
        folder,
        http_tokens="ops=tok",
        default_provider="kie",
        kie_api_key=TEST_KEY,
        kie_base_url=f"{origin}/kie",
        kie_upload_base_url=f"{origin}/kie",
        probe_urls=False,
        poll_interval=5.0,  # the defaults, which make_settings shortens for tests
        poll_max_interval=60.0,
    )
    async with served_http(settings, public=public) as base, http_client(base, "tok") as client:
        yield Served(client, settings.store_path)


@dataclass
class Served:
    client: Client
    store_path: Path


class Run:
    """One edit on `served`, its fake task on `fake`, and the waiting status call."""

    def __init__(self, served: Served, fake: FakeKie) -> None:
        self.client, self.store_path, self.fake = served.client, served.store_path, fake
        self.answer: dict[str, Any] = {}
        self.answered = self.finished_wall = 0.0

    async def start(self) -> dict[str, Any]:
        started = await self.client.call_tool(
            "edit_video", {"prompt": "snow", "video": VIDEO, "allow_duplicate": True}
        )
        record = started.structured_content
        assert isinstance(record, dict) and record["status"] in ("queued", "running"), record
        return record

    async def wait(self, edit_id: str) -> None:
        result = await self.client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": WAIT})
        self.answered = time.monotonic()
        assert isinstance(result.structured_content, dict), result.content
        self.answer = result.structured_content

    def finish(self, task_id: str) -> float:
        task = self.fake.tasks[task_id]
        task.steps, task.position = ("succeeded",), 0
        self.finished_wall = time.time()
        return time.monotonic()

    def stored(self) -> float:
        """From the finish to the edit's finished_at in the SQLite file (the same machine's clock)."""
        with sqlite3.connect(self.store_path) as db:
            row = db.execute("SELECT finished_at FROM edits WHERE edit_id = ?", (self.answer["edit_id"],))
            return float(row.fetchone()[0]) - self.finished_wall

    def reads(self, task_id: str) -> int:
        return sum(1 for r in self.fake.calls("status") if r.params.get("taskId") == task_id)


async def by_webhook(served: Served, fake: FakeKie, http: httpx2.AsyncClient, rng: random.Random) -> Sample:
    """The task finishes and kie calls back: finish -> the waiting call's answer."""
    run = Run(served, fake)
    record = await run.start()
    task_id = record["provider_task_id"]
    callback = fake.tasks[task_id].body["callBackUrl"]
    async with anyio.create_task_group() as tg:
        tg.start_soon(run.wait, record["edit_id"])
        await anyio.sleep(0.3 + rng.random())  # surely waiting; a random phase against the poller's tick
        finished = run.finish(task_id)
        answer = await http.post(callback, json={"code": 200, "msg": "success", "taskId": task_id})
        assert answer.status_code == 200, answer.text
    assert run.answer["status"] == "succeeded", run.answer
    return run.answered - finished, run.reads(task_id), run.stored()


async def by_polling(served: Served, fake: FakeKie, rng: random.Random, within: float) -> Sample:
    """The task finishes at a random moment after the create; only the poller can notice."""
    run = Run(served, fake)
    record = await run.start()
    created = time.monotonic()
    task_id = record["provider_task_id"]
    assert "callBackUrl" not in fake.tasks[task_id].body
    async with anyio.create_task_group() as tg:
        tg.start_soon(run.wait, record["edit_id"])
        await anyio.sleep(max(0.0, created + rng.uniform(0, within) - time.monotonic()))
        finished = run.finish(task_id)
    assert run.answer["status"] == "succeeded", run.answer
    return run.answered - finished, run.reads(task_id), run.stored()


async def main(runs: int, within: float, seed: int) -> None:
    for name in [n for n in os.environ if n.startswith("ALEPH_MCP_")]:  # the shell's settings stay out
        del os.environ[name]
    rng = random.Random(seed)
    fake = FakeKie(TEST_KEY, steps=("running",) * 10_000)
    with tempfile.TemporaryDirectory() as tmp, serve_fakes({"kie": fake}) as origin:
        async with AsyncExitStack() as stack:
            hooked = await stack.enter_async_context(server(Path(tmp) / "hooked", origin, public=True))
            polled = await stack.enter_async_context(server(Path(tmp) / "polled", origin, public=False))
            http = await stack.enter_async_context(httpx2.AsyncClient(timeout=30))
            await by_webhook(hooked, fake, http, rng)  # warm-up: the first download, thumbnail, archive
            webhook = [await by_webhook(hooked, fake, http, rng) for _ in range(runs)]
            polling = [await by_polling(polled, fake, rng, within) for _ in range(runs)]
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores; poll interval 5 s (max 60 s), seed {seed}"
    )
    print(f"polling only: the task finishes at a random 0-{within:g} s after the create")
    print(describe("webhook (POST callback)", [t for t, _, _ in webhook]))
    print(describe("polling only", [t for t, _, _ in polling]))
    ratio = statistics.median(t for t, _, _ in polling) / statistics.median(t for t, _, _ in webhook)
    print(f"  polling median / webhook median: x{ratio:.1f}")
    for name, results in (("webhook", webhook), ("polling", polling)):
        reads = statistics.median(n for _, n, _ in results)
        stored = statistics.median(s for _, _, s in results) * 1000
        print(f"  {name}: kie status reads per edit median {reads:g}; finish -> finished_at {stored:.1f} ms")
    print(f"  webhook median under 1 s: {statistics.median(t for t, _, _ in webhook) < 1.0}")


def cli() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10, help="runs of each measurement (at least 10)")
    parser.add_argument(
        "--finish-within", type=float, default=10.0, help="polling: the task ends 0..this many s after create"
    )
    parser.add_argument("--seed", type=int, default=1, help="seeds the finish moments")
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)  # before MCPServer would set up INFO logging
    given = cli()
    anyio.run(main, max(10, given.runs), given.finish_within, given.seed)
