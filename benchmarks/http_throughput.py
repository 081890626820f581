"""How many `get_edit_status` calls per second aleph-mcp answers over HTTP, against a bare MCPServer.

    .venv/bin/python benchmarks/http_throughput.py [--runs 5] [--clients 20] [--seconds 3] [--inline]

Two uvicorn servers on ephemeral loopback ports, started on pre-bound sockets, measured in the same run:
aleph-mcp's HTTP app (`build_http_app`, a static bearer token, one finished edit made with the offline `local`
provider on a generated clip) and a bare `MCPServer` with one echo tool (`server.streamable_http_app()`).
`--clients` clients, each with its own `httpx2.AsyncClient` and `Client(streamable_http_client(...))`,
call in a loop for `--seconds`: `get_edit_status` on aleph-mcp, `echo` on the bare server.

By default each server runs in a child process of its own, so the clients (in this process) do not share an
event loop or the GIL with it; `--inline` serves both from this process's event loop instead, as the tests
do (then a number is for clients and server together). Rounds alternate between the servers (bare first,
then aleph-mcp, `--runs` times, after one warm-up round of each), so both see the same machine load. Prints
the median calls/s of each over the rounds and their ratio, and CPU milliseconds per call: each server's (read
from its child process; on a shared machine steadier than calls/s) and this process's clients'. Everything
stays on loopback.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import anyio
import httpx2
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.mcpserver import MCPServer
from starlette.types import ASGIApp

from aleph_mcp.server.http import build_http_app

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import make_settings  # noqa: E402
from tests.http_server import loopback_socket  # noqa: E402
from tests.media import make_clip  # noqa: E402

TOKEN = "tok"
Call = Callable[[Client], Awaitable[Any]]


def bare_app() -> ASGIApp:
    server = MCPServer("bare")

    @server.tool()
    async def echo(text: str) -> str:
        return text

    return server.streamable_http_app()


def aleph_app(folder: Path, port: int) -> object:
    settings = make_settings(
        folder,
        http_tokens=f"ops={TOKEN}",
        http_allowed_dirs=str(folder / "inputs"),
        default_provider="local",
        poll_interval=0.1,  # the local edit made first ends quickly; nothing is polled while measuring
        poll_max_interval=0.5,
        log_level="WARNING",
    )
    return build_http_app(settings, "127.0.0.1", port)


def app_for(kind: str, folder: Path, port: int) -> object:
    return aleph_app(folder, port) if kind == "aleph" else bare_app()


async def serve(
    kind: str, folder: Path, started: Callable[[str], None], stop: Callable[[], Awaitable[object]]
) -> None:
    """One uvicorn server on a pre-bound loopback socket; `started(url)` once it listens, until `stop()`."""
    sock = loopback_socket()  # TCP_NODELAY on its connections, as uvicorn's own bind gets
    port = sock.getsockname()[1]
    config = uvicorn.Config(app_for(kind, folder, port), log_level="warning", lifespan="on")  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(30):
                while not server.started:  # noqa: ASYNC110 (uvicorn has no event to wait on)
                    await anyio.sleep(0.02)
            started(f"http://127.0.0.1:{port}/mcp")
            await stop()
            server.should_exit = True
    finally:
        sock.close()


def child(kind: str, folder: str, conn: Connection, stop: Event) -> None:
    """A child process's whole life: serve until the parent sets `stop`; answer "cpu" with its CPU time."""
    logging.basicConfig(level=logging.WARNING)

    def answer() -> None:
        try:
            while conn.recv() == "cpu":
                conn.send(time.process_time())
        except (EOFError, OSError):  # the parent is gone
            pass

    threading.Thread(target=answer, daemon=True).start()
    anyio.run(serve, kind, Path(folder), conn.send, lambda: anyio.to_thread.run_sync(stop.wait))


class Served:
    """A running server: its URL, and its CPU seconds so far (None when it shares this process)."""

    def __init__(self, url: str, conn: Connection | None = None) -> None:
        self.url, self.conn = url, conn

    def cpu(self) -> float | None:
        if self.conn is None:
            return None
        self.conn.send("cpu")
        return float(self.conn.recv())


@asynccontextmanager
async def in_child(kind: str, folder: Path) -> AsyncIterator[Served]:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    stop = context.Event()
    process = context.Process(target=child, args=(kind, str(folder), theirs, stop), daemon=True)
    process.start()
    try:
        with anyio.fail_after(60):
            while not ours.poll():
                if not process.is_alive():
                    raise RuntimeError(f"the {kind} server exited with {process.exitcode}")
                await anyio.sleep(0.05)
        yield Served(str(ours.recv()), ours)
    finally:
        stop.set()
        await anyio.to_thread.run_sync(process.join, 15)
        if process.is_alive():  # it did not stop in time
            process.terminate()
            process.join(5)


@asynccontextmanager
async def in_loop(kind: str, folder: Path) -> AsyncIterator[Served]:
    done, url = anyio.Event(), anyio.Event()
    found: list[str] = []

    def started(address: str) -> None:
        found.append(address)
        url.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve, kind, folder, started, done.wait)
        await url.wait()
        try:
            yield Served(found[0])
        finally:
            done.set()


@asynccontextmanager
async def clients(url: str, count: int, token: str | None) -> AsyncIterator[list[Client]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with AsyncExitStack() as stack:
        opened = []
        for _ in range(count):
            http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=30))
            opened.append(
                await stack.enter_async_context(Client(streamable_http_client(url, http_client=http)))
            )
        yield opened


class Round:
    """One round against one server: calls completed, wall time, CPU seconds of the server and of here."""

    def __init__(self, calls: int, wall: float, server_cpu: float | None, client_cpu: float) -> None:
        self.calls, self.wall, self.server_cpu, self.client_cpu = calls, wall, server_cpu, client_cpu

    @property
    def rate(self) -> float:
        return self.calls / self.wall


async def measure(served: Served, group: list[Client], call: Call, seconds: float) -> Round:
    """Every client calls in a loop until `seconds` pass."""
    done = [0]
    server_cpu, client_cpu = served.cpu(), time.process_time()
    began = time.perf_counter()
    deadline = began + seconds

    async def loop(client: Client) -> None:
        while time.perf_counter() < deadline:
            await call(client)
            done[0] += 1

    async with anyio.create_task_group() as tg:
        for client in group:
            tg.start_soon(loop, client)
    wall = time.perf_counter() - began
    after = served.cpu()
    used = None if server_cpu is None or after is None else after - server_cpu
    return Round(done[0], wall, used, time.process_time() - client_cpu)


def per_call_ms(rounds: list[Round], which: str) -> float | None:
    values = [getattr(r, which) for r in rounds]
    if any(v is None for v in values):
        return None
    return float(statistics.median(v / r.calls * 1000 for v, r in zip(values, rounds, strict=True)))


async def first_edit(client: Client, clip: Path) -> str:
    """A local edit, followed to its end, for get_edit_status to read."""
    started = await client.call_tool("edit_video", {"prompt": "black and white", "video": str(clip)})
    assert isinstance(started.structured_content, dict), started.content
    edit_id = str(started.structured_content["edit_id"])
    ended = await client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": 30})
    assert isinstance(ended.structured_content, dict) and ended.structured_content["status"] == "succeeded"
    return edit_id


def checked(name: str, arguments: dict[str, Any]) -> Call:
    async def call(client: Client) -> Any:
        result = await client.call_tool(name, arguments)
        assert not result.is_error, result.content
        return result

    return call


async def main(runs: int, count: int, seconds: float, inline: bool) -> None:
    for name in [n for n in os.environ if n.startswith("ALEPH_MCP_")]:  # the shell's settings stay out
        del os.environ[name]
    served = in_loop if inline else in_child
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "inputs").mkdir()
        clip = make_clip(folder / "inputs" / "clip.mp4")
        async with AsyncExitStack() as stack:
            bare_server = await stack.enter_async_context(served("bare", folder))
            aleph_server = await stack.enter_async_context(served("aleph", folder))
            bare = await stack.enter_async_context(clients(bare_server.url, count, None))
            aleph = await stack.enter_async_context(clients(aleph_server.url, count, TOKEN))
            edit_id = await first_edit(aleph[0], clip)
            targets = {
                "bare": (bare_server, bare, checked("echo", {"text": "hello"})),
                "aleph": (aleph_server, aleph, checked("get_edit_status", {"edit_id": edit_id})),
            }
            rounds: dict[str, list[Round]] = {"bare": [], "aleph": []}
            sizes = {
                name: len((await call(group[0])).model_dump_json())
                for name, (_, group, call) in targets.items()
            }
            for server, group, call in targets.values():
                await measure(server, group, call, 1.0)  # warm-up
            for _ in range(runs):
                for name, (server, group, call) in targets.items():
                    rounds[name].append(await measure(server, group, call, seconds))
    where = "one event loop with the clients" if inline else "one child process each"
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; servers: {where}")
    print(f"{count} concurrent clients, {runs} rounds of {seconds:g} s per server")
    for name, label in (("bare", "bare MCPServer, echo"), ("aleph", "aleph-mcp, get_edit_status")):
        values = [r.rate for r in rounds[name]]
        spread = f"(min {min(values):.1f}, max {max(values):.1f})"
        line = f"{label:<28} median {statistics.median(values):7.1f} calls/s {spread}"
        server_ms = per_call_ms(rounds[name], "server_cpu")
        if server_ms is not None:
            line += f"   server CPU {server_ms:.2f} ms/call"
        here = "CPU here (clients + server)" if inline else "client CPU"
        print(line + f"   {here} {per_call_ms(rounds[name], 'client_cpu'):.2f} ms/call")
        print(f"{'':<28} one answer: {sizes[name]} bytes of JSON")
    ratio = statistics.median(r.rate for r in rounds["aleph"]) / statistics.median(
        r.rate for r in rounds["bare"]
    )
    print(f"  calls/s, aleph-mcp / bare: x{ratio:.2f}")
    aleph_ms, bare_ms = per_call_ms(rounds["aleph"], "server_cpu"), per_call_ms(rounds["bare"], "server_cpu")
    if aleph_ms is not None and bare_ms is not None:
        print(f"  server CPU per call, aleph-mcp / bare: x{aleph_ms / bare_ms:.2f}")


def cli() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="measured rounds per server")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients per server")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one round")
    parser.add_argument("--inline", action="store_true", help="serve from this process's event loop")
    return parser.parse_args()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)  # before MCPServer would set up INFO logging
    given = cli()
    anyio.run(main, max(1, given.runs), given.clients, given.seconds, given.inline)
