"""The poller with thousands of edits in flight: detection lag, peak memory, tool calls while it polls.

    .venv/bin/python benchmarks/poller_scale.py --in-flight 1000 [--max-interval 5] [--window 30]
    .venv/bin/python benchmarks/poller_scale.py --in-flight 5000 [--concurrency 4] [--against OTHER/src]

Three processes on this machine: this one (the MCP client), one real server (`python -m aleph_mcp` over
stdio, SQLite store on disk, poll concurrency `--concurrency`) and a loopback fake of Runway's API in its
own process (so its CPU does not share the server's); the server's pace for it is `--rate` requests/s
(ALEPH_MCP_RUNWAY_REQUESTS_PER_SECOND; the default 20/s could not read 5,000 edits every 5 s). Every
edit is seeded into the store as running at the fake; a task id carries the time its job finishes, so
the fake answers RUNNING before it and SUCCEEDED (with a tiny real MP4 to archive) after it, and keeps
when it first said so.

1. idle: every edit is scheduled far ahead; `get_edit_status` of random edits for `--call-seconds`,
   `--call-concurrency` callers at once, is the baseline (measured again after step 2, idle once more,
   so that a change of the machine's load weighs on both sides).
2. polling: every edit becomes due within one max interval. After `--warmup` s, `--finishing` of the jobs
   finish, spread evenly over `--window` s (the rest stay running, so the in-flight count stays near
   `--in-flight`); the same calls are timed meanwhile.

Prints the detection lag (the job finishing -> the fake's first SUCCEEDED answer to the server, and ->
the edit ending in the store), p50/p95 against one max interval, the server's peak RSS (VmHWM), and the
tool-call p50 while polling against idle. Compare ratios; milliseconds vary with the machine's load.
`--against OTHER/src` runs another checkout's server (e.g. before this change) on the same set-up;
`--py-spy OUT` samples the server through the window (collapsed stacks; `pip install py-spy`).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
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
import anyio.abc
from mcp import Client, StdioServerParameters

from aleph_mcp.models import Edit
from aleph_mcp.store import SQLiteEditStore
from aleph_mcp.store.base import COLUMNS
from aleph_mcp.store.sqlite import _edit_to_params

FAR = 10**7  # a finish time (ms past now) that never comes during a run


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the fake (its own process) ---------------------------------------------------------------------
def tiny_mp4() -> bytes:
    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 60 * i, dtype=np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


class FakeRunway(asyncio.Protocol):
    """A minimal HTTP/1.1 keep-alive server: GET /v1/tasks/<id>, GET /files/v.mp4, GET /stats."""

    seen: dict[str, float] = {}  # noqa: RUF012 -- one fake per process
    video = b""
    origin = ""
    requests = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
            length = next(
                (
                    int(h.split(b":")[1])
                    for h in head.split(b"\r\n")
                    if h.lower().startswith(b"content-length")
                ),
                0,
            )
            self.buffer = rest[length:]
            path = head.split(b" ")[1].decode()
            self.transport.write(self.answer(path))

    def answer(self, path: str) -> bytes:
        FakeRunway.requests += 1
        kind, body = "application/json", b""
        if path.startswith("/v1/tasks/"):
            task_id = path.rsplit("/", 1)[1]
            now = time.time()
            if now * 1000 >= int(task_id.rsplit("-", 1)[1]):
                self.seen.setdefault(task_id, now)
                task = {"id": task_id, "status": "SUCCEEDED", "output": [f"{self.origin}/files/v.mp4"]}
            else:
                task = {"id": task_id, "status": "RUNNING", "progress": 0.5}
            body = json.dumps(task).encode()
        elif path.startswith("/files/"):
            kind, body = "video/mp4", self.video
        elif path == "/stats":
            body = json.dumps({"seen": self.seen, "requests": self.requests}).encode()
        head = f"HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {len(body)}\r\n\r\n"
        return head.encode() + body


async def serve_fake(port_file: Path) -> None:
    FakeRunway.video = tiny_mp4()
    server = await asyncio.get_running_loop().create_server(FakeRunway, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    FakeRunway.origin = f"http://127.0.0.1:{port}"
    port_file.write_text(str(port))
    await server.serve_forever()


# -- the store -------------------------------------------------------------------------------------
def seed(path: Path, count: int, finishing: int, window: tuple[float, float], origin: str) -> None:
    """`count` running edits at the fake, scheduled far ahead; `finishing` of them end within `window`."""
    SQLiteEditStore(path)  # the schema
    now = time.time()
    start, span = window
    picked = set(random.Random(7).sample(range(count), finishing))
    ends = iter(sorted(start + span * random.random() for _ in picked))
    rows = []
    for n in range(count):
        finish_ms = round(next(ends) * 1000) if n in picked else round(now * 1000) + FAR
        edit = Edit(f"ed_{n:06d}", "runway", "aleph2", "snow", "https://example.com/in.mp4", status="running")
        edit.provider_task_id = f"job-{n}-{finish_ms}"
        edit.created_at = edit.updated_at = now
        edit.next_poll_at = now + FAR
        edit.create_sent_at = now
        rows.append(_edit_to_params(edit))
    with sqlite3.connect(path, isolation_level=None) as db:
        columns = ", ".join(COLUMNS)
        db.execute("BEGIN")
        db.executemany(f"INSERT INTO edits ({columns}) VALUES ({', '.join(':' + c for c in COLUMNS)})", rows)
        db.execute("COMMIT")
    db.close()


def make_due(path: Path, spread: float) -> None:
    """Every edit due within `spread` seconds from now (as if each had just been read)."""
    now = time.time()
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("UPDATE edits SET next_poll_at = ? + (abs(random()) % 1000) / 1000.0 * ?", (now, spread))
    db.close()


def make_idle(path: Path) -> None:
    """Every unfinished edit scheduled far ahead again: the poller has nothing to read."""
    with sqlite3.connect(path, isolation_level=None) as db:
        db.execute("UPDATE edits SET next_poll_at = ? WHERE finished_at IS NULL", (time.time() + FAR,))
    db.close()


def ended_at(path: Path) -> dict[str, float]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT provider_task_id, finished_at FROM edits WHERE finished_at IS NOT NULL")
        found = {task: float(at) for task, at in rows}
    db.close()
    return found


# -- the server and its client ---------------------------------------------------------------------
def server_params(args: argparse.Namespace, origin: str, data_dir: Path) -> StdioServerParameters:
    env = {
        **os.environ,
        "ALEPH_MCP_DATA_DIR": str(data_dir),
        "ALEPH_MCP_DEFAULT_PROVIDER": "runway",
        "RUNWAYML_API_SECRET": "key-benchmark",
        "ALEPH_MCP_RUNWAY_BASE_URL": origin,
        "ALEPH_MCP_POLL_INTERVAL": str(min(1.0, args.max_interval)),
        "ALEPH_MCP_POLL_MAX_INTERVAL": str(args.max_interval),
        "ALEPH_MCP_POLL_CONCURRENCY": str(args.concurrency),
        "ALEPH_MCP_RUNWAY_REQUESTS_PER_SECOND": str(args.rate),
        "ALEPH_MCP_ALLOW_PRIVATE_URLS": "true",
        "ALEPH_MCP_PROBE_URLS": "false",
        "ALEPH_MCP_LOG_LEVEL": "WARNING",
        # PYTHONPATH=<another checkout>/src: that version's server, against the same fake and goals
        "PYTHONPATH": args.against or "",
    }
    return StdioServerParameters(command=sys.executable, args=["-m", "aleph_mcp"], env=env)


async def call_latencies(client: Client, args: argparse.Namespace, seconds: float) -> list[float]:
    """`get_edit_status` of random edits, `--call-concurrency` at once, for `seconds`."""
    samples: list[float] = []
    rng = random.Random(3)
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < deadline:
            edit_id = f"ed_{rng.randrange(args.in_flight):06d}"
            start = time.perf_counter()
            result = await client.call_tool("get_edit_status", {"edit_id": edit_id})
            samples.append(time.perf_counter() - start)
            assert not result.is_error, result.content
            await anyio.sleep(args.pause)

    async with anyio.create_task_group() as tg:
        for _ in range(args.call_concurrency):
            tg.start_soon(caller)
    return samples


def server_pid() -> int:
    """The spawned server: this process's child running aleph_mcp."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"aleph_mcp" in cmdline:
            return int(entry.name)
    raise RuntimeError("the server process was not found")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def fake_stats(origin: str) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", int(origin.rsplit(":", 1)[1]))
    writer.write(b"GET /stats HTTP/1.1\r\nhost: x\r\n\r\n")
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    body = await reader.readexactly(length)
    writer.close()
    stats: dict[str, Any] = json.loads(body)
    return stats


# -- the run ---------------------------------------------------------------------------------------
def finish_time(task_id: str) -> float:
    return int(task_id.rsplit("-", 1)[1]) / 1000


def report_lag(name: str, lags: list[float], expected: int, goal: float) -> None:
    if not lags:
        print(f"{name:<44} none seen (of {expected})")
        return
    p50, p95 = statistics.median(lags), percentile(lags, 0.95)
    verdict = "meets" if p95 <= goal and len(lags) == expected else "MISSES"
    print(
        f"{name:<44} p50 {p50:6.2f} s   p95 {p95:6.2f} s   max {max(lags):6.2f} s   "
        f"({len(lags)}/{expected} seen; p95/goal {p95 / goal:.2f}: {verdict} p95 <= {goal:g} s)"
    )


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port_file = root / "port"
        fake = await anyio.open_process([sys.executable, __file__, "fake", str(port_file)])
        try:
            while not port_file.exists() or not port_file.read_text():  # noqa: ASYNC110 (another process)
                await anyio.sleep(0.05)
            origin = f"http://127.0.0.1:{port_file.read_text()}"
            await measured(args, origin, root / "data")
        finally:
            fake.terminate()
            await fake.wait()


async def measured(args: argparse.Namespace, origin: str, data_dir: Path) -> None:
    store_path = data_dir / "edits.sqlite3"
    start = time.time() + 60 + args.warmup  # seeding and the idle phase come first; re-based below
    seed(store_path, args.in_flight, args.finishing, (start, args.window), origin)
    async with Client(server_params(args, origin, data_dir), mode="legacy") as client:
        pid = server_pid()
        await call_latencies(client, args, 2)  # warm-up
        idle = await call_latencies(client, args, args.call_seconds)
        idle_rss = peak_rss_mb(pid)
        rebase(store_path, time.time() + args.warmup)
        make_due(store_path, args.max_interval)
        await anyio.sleep(args.warmup)
        profiler = await profile(args, pid)
        busy = await call_latencies(client, args, args.window)
        if profiler is not None:
            await profiler.wait()
        await anyio.sleep(args.max_interval * 2)  # the last jobs to finish are seen
        stats, rss = await fake_stats(origin), peak_rss_mb(pid)
        # Idle again, so a change of the machine's load during the run weighs on both sides alike.
        make_idle(store_path)
        await anyio.sleep(args.max_interval)  # the reads drawn before it end
        idle += await call_latencies(client, args, args.call_seconds)
    ended = ended_at(store_path)
    seen = {t: at - finish_time(t) for t, at in stats["seen"].items()}
    report(args, idle, busy, seen, {t: at - finish_time(t) for t, at in ended.items()}, idle_rss, rss)
    print(f"fake answered {stats['requests']} requests")


async def profile(args: argparse.Namespace, pid: int) -> anyio.abc.Process | None:
    """With `--py-spy OUT`: the server sampled through the window (py-spy, pip-installed into the venv)."""
    if not args.py_spy:
        return None
    command = [
        "py-spy",
        "record",
        "-p",
        str(pid),
        "-d",
        str(int(args.window)),
        "-f",
        "raw",
        "-o",
        args.py_spy,
    ]
    return await anyio.open_process(command)


def rebase(path: Path, start: float) -> None:
    """Move the finishing jobs' end times so the window opens at `start` (ids carry the time)."""
    with sqlite3.connect(path, isolation_level=None) as db:
        rows = db.execute("SELECT edit_id, provider_task_id FROM edits").fetchall()
        finishing = sorted(
            (finish_time(t), e, t) for e, t in rows if finish_time(t) < time.time() + FAR / 2000
        )
        if finishing:
            shift = start - finishing[0][0]
            updates = [(f"{t.rsplit('-', 1)[0]}-{round((at + shift) * 1000)}", e) for at, e, t in finishing]
            db.executemany("UPDATE edits SET provider_task_id = ? WHERE edit_id = ?", updates)
    db.close()


def report(
    args: argparse.Namespace,
    idle: list[float],
    busy: list[float],
    seen: dict[str, float],
    ended: dict[str, float],
    idle_rss: float,
    rss: float,
) -> None:
    print(
        f"{args.in_flight} in flight, max poll interval {args.max_interval:g} s, poll concurrency "
        f"{args.concurrency}, {args.finishing} jobs finishing over {args.window:g} s"
    )
    report_lag(
        "detection lag (job done -> status read)", list(seen.values()), args.finishing, args.max_interval
    )
    report_lag(
        "detection lag (job done -> edit ended)", list(ended.values()), args.finishing, args.max_interval
    )
    verdict = "meets" if rss <= 150 else "MISSES"
    print(f"{'peak RSS of the server':<44} {rss:6.1f} MB (idle {idle_rss:.1f} MB): {verdict} <= 150 MB")
    p50_idle, p50_busy = statistics.median(idle) * 1000, statistics.median(busy) * 1000
    ratio = p50_busy / p50_idle
    print(
        f"{'get_edit_status p50 idle / polling':<44} {p50_idle:6.1f} ms / {p50_busy:6.1f} ms   "
        f"p95 {percentile(idle, 0.95) * 1000:.1f} / {percentile(busy, 0.95) * 1000:.1f} ms   "
        f"ratio {ratio:.2f} ({'meets' if ratio <= 2 else 'MISSES'} <= 2x; "
        f"{len(idle)}/{len(busy)} calls at concurrency {args.call_concurrency})"
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "fake":
        asyncio.run(serve_fake(Path(sys.argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--max-interval", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=4, help="ALEPH_MCP_POLL_CONCURRENCY")
    parser.add_argument("--rate", type=float, default=5000, help="the fake host's requests/s limit")
    parser.add_argument("--finishing", type=int, default=300)
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--call-seconds", type=float, default=10.0)
    parser.add_argument("--call-concurrency", type=int, default=8)
    parser.add_argument("--pause", type=float, default=0.05, help="each caller's pause between calls")
    parser.add_argument("--against", metavar="OTHER/src", help="run another checkout's server instead")
    parser.add_argument("--py-spy", metavar="OUT", help="sample the server while it polls (collapsed stacks)")
    anyio.run(run, parser.parse_args())


if __name__ == "__main__":
    main()
