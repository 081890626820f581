"""The size of the tools/list answer as it goes over the wire (compact JSON), per tool and in total.

    .venv/bin/python benchmarks/tools_list_size.py

Clients read it on every session and validate every tool result against its output schemas, so its size
is latency for every client (tests/test_tool_text.py keeps it under 14,000 bytes).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import anyio
from mcp import Client

from aleph_mcp.config import Settings
from aleph_mcp.server import create_server


def compact(value: object) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


async def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        async with Client(create_server(Settings(data_dir=Path(data)))) as client:
            tools = [
                t.model_dump(mode="json", by_alias=True, exclude_none=True)
                for t in (await client.list_tools()).tools
            ]
    for tool in tools:
        parts = {k: compact(tool.get(k, {})) for k in ("inputSchema", "outputSchema", "description")}
        sizes = f"input {parts['inputSchema']}, output {parts['outputSchema']}"
        print(f"{tool['name']:<16} {compact(tool):>6} B  ({sizes})")
    print(f"{'tools/list':<16} {compact({'tools': tools}):>6} B in all")


if __name__ == "__main__":
    anyio.run(main)
