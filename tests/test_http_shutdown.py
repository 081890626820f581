"""SIGTERM on `aleph-mcp serve --http` mid-edit: a clean exit, and the edit resumes on the next start."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2

from .http_server import http_client
from .stdio import VIDEO, served_fakes, server_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "aleph_mcp", "serve", "--http", "--port", str(port)]
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


async def healthy(base: str) -> None:
    async with httpx2.AsyncClient() as http:
        with anyio.fail_after(30):
            while True:
                try:
                    if (await http.get(f"{base}/healthz")).status_code == 200:
                        return
                except httpx2.TransportError:
                    pass
                await anyio.sleep(0.1)


async def test_sigterm_mid_edit_exits_cleanly_and_the_edit_resumes_after_restart(tmp_path: Path) -> None:
    """The server stops within its grace period with exit 0; restarted, it finishes the same edit."""
    log = tmp_path / "server.log"
    with served_fakes(runway=("running",) * 1000) as (origin, apis):
        env = server_env(origin, tmp_path / "data", "runway") | {"ALEPH_MCP_HTTP_TOKENS": "ops=tok"}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        process = start(env, port, log)
        try:
            await healthy(base)
            async with http_client(base, "tok") as client:
                started = (
                    await client.call_tool("edit_video", {"prompt": "snow", "video": VIDEO})
                ).structured_content
            assert isinstance(started, dict) and started["status"] in ("queued", "running")
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):
                while process.poll() is None:
                    await anyio.sleep(0.1)
            assert process.returncode == 0, log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
        task = apis["runway"].tasks[started["provider_task_id"]]
        task.steps, task.position = ("succeeded",), 0
        process = start(env, port, log)
        try:
            await healthy(base)
            async with http_client(base, "tok") as client:
                with anyio.fail_after(30):
                    while True:
                        result = await client.call_tool(
                            "get_edit_status", {"edit_id": started["edit_id"], "wait_seconds": 2}
                        )
                        record = result.structured_content
                        assert isinstance(record, dict)
                        if record["status"] == "succeeded":
                            break
        finally:
            process.terminate()
            process.wait(timeout=20)
    assert len(apis["runway"].creates) == 1
    assert "tok" not in log.read_text().replace("token", "")
