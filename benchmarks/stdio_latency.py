"""How fast aleph-mcp starts and answers over stdio, against a bare MCPServer measured in the same run.

    .venv/bin/python benchmarks/stdio_latency.py [--calls 300] [--starts 5]

Reports medians (and p90) of: start-up (spawn -> initialize -> tools/list), a read-only tool call
(`get_edit_status`, `list_edits`), and `edit_video` with the offline `local` provider (validation, PyAV probe,
store write, submit); each against the baseline echo tool, as a ratio. Everything runs on this machine; no
network. Numbers vary with the machine: compare the ratios, not the milliseconds.
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


async def time_calls(client: Client, calls: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    for _ in range(min(20, calls)):  # warm-up
        await call()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


async def start_up(params: StdioServerParameters) -> float:
    start = time.perf_counter()
    async with Client(params, mode="legacy") as client:
        await client.list_tools()
        return time.perf_counter() - start


async def main(calls: int, starts: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "echo_server.py").write_text(BASELINE)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "ALEPH_MCP_DATA_DIR": str(folder / "data"),
            "ALEPH_MCP_ALLOWED_DIRS": str(ROOT / "examples"),
            "ALEPH_MCP_LOG_LEVEL": "WARNING",
        }
        baseline_params = StdioServerParameters(command=sys.executable, args=[str(folder / "echo_server.py")])
        aleph_params = StdioServerParameters(command=sys.executable, args=["-m", "aleph_mcp"], env=env)

        base_starts = [await start_up(baseline_params) for _ in range(starts)]
        aleph_starts = [await start_up(aleph_params) for _ in range(starts)]
        async with Client(baseline_params, mode="legacy") as base:
            echo = await time_calls(base, calls, lambda: base.call_tool("echo", {"text": "hi"}))
        async with Client(aleph_params, mode="legacy") as aleph:
            first = await aleph.call_tool(
                "edit_video", {"prompt": "invert", "video": str(ROOT / "examples" / "sample.mp4")}
            )
            edit_id = (first.structured_content or {})["edit_id"]
            status = await time_calls(
                aleph, calls, lambda: aleph.call_tool("get_edit_status", {"edit_id": edit_id})
            )
            listing = await time_calls(aleph, calls, lambda: aleph.call_tool("list_edits", {"limit": 20}))
            submits = await time_calls(
                aleph,
                max(10, calls // 10),
                lambda: aleph.call_tool(
                    "edit_video",
                    {
                        "prompt": "invert",
                        "allow_duplicate": True,
                        "video": str(ROOT / "examples" / "sample.mp4"),
                    },
                ),
            )

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; {calls} calls, {starts} starts")
    print(describe("start-up: bare MCPServer", base_starts))
    print(describe("start-up: aleph-mcp", aleph_starts, base_starts))
    print(describe("call: echo (bare MCPServer)", echo))
    print(describe("call: get_edit_status", status, echo))
    print(describe("call: list_edits (20)", listing, echo))
    print(describe("call: edit_video (local)", submits, echo))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--starts", type=int, default=5)
    options = parser.parse_args()
    anyio.run(main, options.calls, options.starts)
