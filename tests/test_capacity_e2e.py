"""End to end over stdio: 8 edits through a Krea plan that runs 3 jobs at a time, with a restart midway."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from .fakes.base import State
from .stdio import VIDEO, server_env, stdio_server
from .stdio import served_fakes as fakes

STEPS: tuple[State, ...] = ("queued", *("running",) * 6, "succeeded")  # about a second of polls per job


async def listed(client: Client) -> list[dict[str, Any]]:
    result = (await client.call_tool("list_edits", {"limit": 100})).structured_content
    assert result is not None
    edits: list[dict[str, Any]] = result["edits"]
    return edits


async def all_ended(client: Client) -> list[dict[str, Any]]:
    with anyio.fail_after(60):
        while True:
            edits = await listed(client)
            if all(e["status"] in ("succeeded", "failed", "cancelled") for e in edits):
                return edits
            await anyio.sleep(0.2)


async def test_eight_edits_on_a_three_job_plan_all_succeed_across_a_restart(tmp_path: Path) -> None:
    """Krea answers 429 beyond 3 unfinished jobs; the rest wait, survive a restart, and are sent once each."""
    with fakes(krea=STEPS) as (origin, apis), (tmp_path / "server.log").open("w") as log:
        krea = apis["krea"]
        krea.max_jobs = 3  # type: ignore[attr-defined]
        env = server_env(origin, tmp_path / "data", "krea") | {"ALEPH_MCP_REQUEST_TIMEOUT": "1"}
        async with stdio_server(env, log) as client:
            for n in range(8):
                started = await client.call_tool("edit_video", {"prompt": f"edit {n}", "video": VIDEO})
                assert not started.is_error, started.content
            waiting = [e for e in await listed(client) if e["provider_task_id"] is None]
            assert waiting and all("Waiting for krea capacity" in (e["notes"] or "") for e in waiting)
            assert {e["status"] for e in waiting} == {"queued"}
        # The first process is gone with edits still waiting; a new one on the same data dir takes over.
        async with stdio_server(env, log) as client:
            edits = await all_ended(client)
    assert sorted(e["status"] for e in edits) == ["succeeded"] * 8
    accepted = Counter(task.body["prompt"] for task in krea.tasks.values())
    assert accepted == Counter(f"edit {n}" for n in range(8))  # exactly 8 creates accepted, one per edit
    assert len({e["provider_task_id"] for e in edits}) == 8
    refused = len(krea.creates) - len(krea.tasks)
    assert refused >= len(waiting)  # the waiting ones were refused first, never accepted twice
