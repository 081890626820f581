"""Crash: SIGKILL a stdio server while one edit's create is in flight, one's status read and one's download;
a new process on the same data dir takes every edit to its end with no second create and no partial file."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from .fakes.base import FAKE_VIDEO, Fault, State
from .stdio import kill_servers, served_fakes, server_env, stdio_server

VIDEO = "https://127.0.0.1:9/in/clip.mp4"  # nothing listens: the server's pre-flight probe stays local
# A slow answer that never times out: one byte every half second, never the last one.
SLOW: dict[str, Any] = {"hang": 120.0, "partial": 1, "trickle": 0.5, "after": True}


def steps_for(body: Any) -> tuple[State, ...]:
    """The download edit's render is done at once; the others run until the test says otherwise."""
    if "mid-download" in json.dumps(body):
        return ("succeeded",)
    return ("queued", *(("running",) * 1000))


async def edit(client: Client, prompt: str) -> dict[str, Any]:
    result = await client.call_tool("edit_video", {"prompt": prompt, "video": VIDEO})
    assert not result.is_error, result.content
    record = result.structured_content
    assert isinstance(record, dict), record
    return record


def part_files(data: Path) -> list[str]:
    archive = data / "archive"
    return [p.name for p in archive.iterdir() if p.name.endswith(".part")] if archive.is_dir() else []


async def all_ended(client: Client, count: int) -> list[dict[str, Any]]:
    with anyio.fail_after(30):
        while True:
            listed = (await client.call_tool("list_edits", {})).structured_content
            assert listed is not None
            edits: list[dict[str, Any]] = listed["edits"]
            if len(edits) == count and all(
                e["status"] in ("succeeded", "failed", "cancelled") for e in edits
            ):
                return edits
            await anyio.sleep(0.2)


async def test_a_server_killed_mid_create_mid_poll_and_mid_download_loses_nothing_after_restart(
    tmp_path: Path,
) -> None:
    """One SIGKILL with three edits in flight; after restart: one create each, all ended, no .part left."""
    data = tmp_path / "data"
    with served_fakes() as (origin, apis), (tmp_path / "server.log").open("w") as log:
        runway = apis["runway"]
        runway.steps_for = steps_for
        env = server_env(origin, data, "runway") | {"ALEPH_MCP_REQUEST_TIMEOUT": "1"}  # lease: 4 s
        runway.inject(Fault(kind="file", match=".mp4", times=0, **(SLOW | {"partial": len(FAKE_VIDEO) // 2})))
        in_flight: dict[str, bool] = {}
        killed: list[int] = []
        with contextlib.suppress(Exception):  # the transport breaks when its server dies
            async with stdio_server(env, log) as client:
                polled = await edit(client, "mid-poll: make it snow")
                runway.inject(Fault(kind="status", match=polled["provider_task_id"], times=0, **SLOW))
                await edit(client, "mid-download: make it snow")
                runway.inject(Fault(kind="create", **SLOW))
                async with anyio.create_task_group() as tg:
                    tg.start_soon(
                        client.call_tool, "edit_video", {"prompt": "mid-create: snow", "video": VIDEO}
                    )
                    with anyio.fail_after(20):
                        while not all(in_flight.values()) or not in_flight:
                            await anyio.sleep(0.02)
                            in_flight = {
                                "create": runway.holding["create"] == 1,
                                "status": runway.holding["status"] >= 1,
                                "download": runway.holding["file"] >= 1 and bool(part_files(data)),
                            }
                    # Shielded: the edit_video call fails as the server dies, and that cancels this
                    # task group; the kill must still be recorded.
                    with anyio.CancelScope(shield=True):
                        killed = await kill_servers()
        assert len(killed) == 1 and all(in_flight.values()), in_flight
        assert part_files(data)  # the killed download left its temp file behind
        runway.faults.clear()
        runway.released.set()
        polled_task = runway.tasks[polled["provider_task_id"]]
        polled_task.steps, polled_task.position = ("succeeded",), 0
        async with stdio_server(env, log) as client:
            edits = await all_ended(client, 3)
    by_prompt = {e["prompt"].split(":")[0]: e for e in edits}
    assert by_prompt["mid-poll"]["status"] == by_prompt["mid-download"]["status"] == "succeeded"
    created = by_prompt["mid-create"]
    assert (created["status"], created["error"]["code"]) == ("failed", "submit_outcome_unknown")
    assert "dashboard" in created["error"]["message"]
    assert len(runway.creates) == len(runway.tasks) == 3  # the lost create was never sent again
    for name in ("mid-poll", "mid-download"):
        assert Path(by_prompt[name]["local_path"]).read_bytes() == FAKE_VIDEO
    assert part_files(data) == []
