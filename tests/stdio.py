"""A real server over stdio for the end-to-end tests: its environment, the client, the loopback fakes."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from .conftest import TEST_KEY
from .fakes.base import DEFAULT_STEPS, FakeAPI, State
from .fakes.server import serve_fakes
from .fakes.vendors import FAKES

VIDEO = "https://cdn.example.com/in/clip.mp4"
REASON = "Your prompt was caught by our AI moderator"


def server_env(origin: str, data_dir: Path, provider: str) -> dict[str, str]:
    """The environment of a server whose every provider is the loopback fake under `origin`."""
    env = {
        "ALEPH_MCP_DATA_DIR": str(data_dir),
        "ALEPH_MCP_DEFAULT_PROVIDER": provider,
        "ALEPH_MCP_POLL_INTERVAL": "0.1",
        "ALEPH_MCP_POLL_MAX_INTERVAL": "0.3",
        "ALEPH_MCP_KIE_UPLOAD_BASE_URL": f"{origin}/kie",
        # The videos' made-up https URLs must not be fetched from here: tests never leave loopback.
        "ALEPH_MCP_PROBE_URLS": "false",
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    for name in FAKES:
        env[f"ALEPH_MCP_{name.upper()}_API_KEY"] = TEST_KEY
        env[f"ALEPH_MCP_{name.upper()}_BASE_URL"] = f"{origin}/{name}"
    return env


@asynccontextmanager
async def stdio_server(env: dict[str, str], log: TextIO) -> AsyncIterator[Client]:
    """`python -m aleph_mcp` as a child process, with the official client connected over stdio."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "aleph_mcp"], env=env)
    async with Client(stdio_client(params, errlog=log), mode="legacy") as client:
        yield client


@contextmanager
def served_fakes(**steps: tuple[State, ...]) -> Iterator[tuple[str, dict[str, FakeAPI]]]:
    """Every vendor's fake served on loopback (its tasks take `steps[name]`); yields the origin and fakes."""
    instances = {
        name: cls(
            TEST_KEY,
            steps=steps.get(name, DEFAULT_STEPS),
            failure_message=REASON,
        )
        for name, cls in FAKES.items()
    }
    with serve_fakes(instances) as origin:
        yield origin, instances


async def wait_for(
    client: Client, edit_id: str, statuses: tuple[str, ...], seconds: float = 30
) -> dict[str, Any]:
    """The edit's record once its status is one of `statuses` (get_edit_status with a wait)."""
    with anyio.fail_after(seconds):
        while True:
            result = await client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": 2})
            assert not result.is_error, result.content
            record = result.structured_content
            assert isinstance(record, dict), record
            if record["status"] in statuses:
                return record


def server_pids() -> list[int]:
    """Our `python -m aleph_mcp` children (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and b"aleph_mcp" in cmdline:
            pids.append(int(entry.name))
    return pids


async def kill_servers() -> list[int]:
    """SIGKILL every server child and wait until all are gone; returns the pids that were killed."""
    killed = server_pids()
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    with anyio.fail_after(10):
        while server_pids():
            await anyio.sleep(0.05)
    return killed
