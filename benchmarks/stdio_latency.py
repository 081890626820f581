"""How fast aleph-mcp starts and answers over stdio, against a bare MCPServer measured in the same run.

    .venv/bin/python benchmarks/stdio_latency.py [--calls 300] [--starts 5] [--against OTHER/src]

Reports medians (and p90) of: start-up (spawn -> initialize -> tools/list), `edit_video` with the offline
`local` provider (validation, PyAV probe, store write, submit), then with those edits stored the read-only
calls (`get_edit_status`, `list_edits` of 20, with and without the client's output-schema check); each
against the baseline echo tool, as a ratio. Last, the size of a `list_edits` answer of 20 and 100 edits
(100 edits are submitted first). `--against` also starts another checkout's server, in the same rounds.
Everything runs on this machine; no network. Numbers vary with the machine: compare the ratios, not the
milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
BASELINE = textwrap.dedent(
    """
    from mcp.server.mcpserver import MCPServer
    server = MCPServer("echo")

    @server.tool()
    async def echo(text: str) -> str:
        return text

    server.run()
    """
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def describe(name: str, samples: list[float], baseline: list[float] | None = None) -> str:
    median = statistics.median(samples)
    line = f"{name:<34} median {median * 1000:8.2f} ms   p90 {percentile(samples, 0.9) * 1000:8.2f} ms"
    if baseline:
        line += f"   x{median / statistics.median(baseline):.2f} baseline"
    return line


async def time_calls(calls: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(min(20, calls)):  # warm-up (a first budget check also sums its whole window)
        await call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


async def renders_done(client: Client, timeout: float = 120.0) -> None:
    with anyio.fail_after(timeout):
        while True:
            page = (await client.call_tool("list_edits", {"limit": 100})).structured_content or {}
            if all(e["status"] in ("succeeded", "failed", "cancelled") for e in page["edits"]):
                return
            await anyio.sleep(0.2)


async def answer_size(client: Client, limit: int) -> tuple[int, int]:
    """The JSON-RPC result's size on the wire, and its text blocks' share of it."""
    result = await client.call_tool("list_edits", {"limit": limit})
    text = sum(len(block.text.encode()) for block in result.content if block.type == "text")
    return len(result.model_dump_json(by_alias=True, exclude_none=True).encode()), text


def unchecked(client: Client, name: str, arguments: dict[str, Any]) -> Callable[[], Awaitable[Any]]:
    """The call as a client that does not revalidate structured content against the output schema."""

    async def skip(name: str, result: Any) -> None:
        return None

    async def call() -> Any:
        session: Any = client.session
        session.validate_tool_result = skip
        try:
            return await client.call_tool(name, arguments)
        finally:
            del session.validate_tool_result

    return call


async def interleaved(calls: int, named: dict[str, Callable[[], Awaitable[Any]]]) -> dict[str, list[float]]:
    """Each call timed in turn with the others, so a change of load on the machine hits all alike."""
    for call in named.values():
        for _ in range(20):  # warm-up
            await call()
    samples: dict[str, list[float]] = {name: [] for name in named}
    for _ in range(calls):
        for name, call in named.items():
            start = time.perf_counter()
            await call()
            samples[name].append(time.perf_counter() - start)
    return samples


async def start_up(params: StdioServerParameters) -> float:
    start = time.perf_counter()
    async with Client(params, mode="legacy") as client:
        await client.list_tools()
        return time.perf_counter() - start


async def main(calls: int, starts: int, against: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "echo_server.py").write_text(BASELINE)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "ALEPH_MCP_DATA_DIR": str(folder / "data"),
            "ALEPH_MCP_ALLOWED_DIRS": str(ROOT / "examples"),
            "ALEPH_MCP_LOG_LEVEL": "WARNING",
            # PYTHONPATH=<another checkout>/src measures that version against the same baseline
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
        }
        baseline_params = StdioServerParameters(command=sys.executable, args=[str(folder / "echo_server.py")])
        aleph_params = StdioServerParameters(command=sys.executable, args=["-m", "aleph_mcp"], env=env)

        other = StdioServerParameters(  # a data dir of its own: the two versions' schemas may differ
            command=sys.executable,
            args=["-m", "aleph_mcp"],
            env=env | {"PYTHONPATH": against or "", "ALEPH_MCP_DATA_DIR": str(folder / "other-data")},
        )
        base_starts, aleph_starts, other_starts = [], [], []
        for _ in range(starts):  # alternating, so a change of load on the machine hits all alike
            base_starts.append(await start_up(baseline_params))
            aleph_starts.append(await start_up(aleph_params))
            if against:
                other_starts.append(await start_up(other))
        async with (
            Client(baseline_params, mode="legacy") as base,
            Client(aleph_params, mode="legacy") as aleph,
        ):
            video = str(ROOT / "examples" / "sample.mp4")
            submit_args = {"prompt": "invert", "allow_duplicate": True, "video": video}
            submits = await time_calls(100, lambda: aleph.call_tool("edit_video", submit_args))
            first = await aleph.call_tool("edit_video", submit_args)
            edit_id = (first.structured_content or {})["edit_id"]
            await renders_done(aleph)  # the local renders run in the server: time the calls after them
            timed = await interleaved(
                calls,
                {
                    "echo": lambda: base.call_tool("echo", {"text": "hi"}),
                    "status": lambda: aleph.call_tool("get_edit_status", {"edit_id": edit_id}),
                    "list": lambda: aleph.call_tool("list_edits", {"limit": 20}),
                    "unchecked": unchecked(aleph, "list_edits", {"limit": 20}),
                },
            )
            sizes = {n: await answer_size(aleph, n) for n in (20, 100)}
        echo, status, listing, no_check = timed["echo"], timed["status"], timed["list"], timed["unchecked"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; {calls} calls, {starts} starts")
    print(describe("start-up: bare MCPServer", base_starts))
    print(describe("start-up: aleph-mcp", aleph_starts, base_starts))
    if against:
        print(describe("start-up: aleph-mcp of --against", other_starts, base_starts))
    print(describe("call: echo (bare MCPServer)", echo))
    print(describe("call: get_edit_status", status, echo))
    print(describe("call: list_edits (20)", listing, echo))
    print(describe("call: list_edits (20), no schema check", no_check, echo))
    print(describe("call: edit_video (local)", submits, echo))
    for n, (total, text) in sizes.items():
        print(f"answer: list_edits(limit={n}) of {n} edits      {total:8,} bytes (text block {text:,})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--against", help="another checkout's src folder, e.g. of the main branch")
    options = parser.parse_args()
    anyio.run(main, options.calls, options.starts, options.against)
