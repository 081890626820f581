"""End to end over stdio: get_edit_status(wait_seconds) answers when the edit ends, or when the time is up."""

from __future__ import annotations

from pathlib import Path

import anyio

from .fakes.base import State
from .stdio import VIDEO, server_env, stdio_server
from .stdio import served_fakes as fakes


async def test_one_waiting_call_returns_succeeded_for_an_edit_that_ends_within_the_window(
    tmp_path: Path,
) -> None:
    """wait_seconds=10, a render of a few polls: one call answers succeeded, with progress on the way."""
    steps: tuple[State, ...] = ("queued", "running", "running", "succeeded")
    reports: list[str] = []

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        reports.append(message or "")

    with fakes(runway=steps) as (origin, _), (tmp_path / "server.log").open("w") as log:
        async with stdio_server(server_env(origin, tmp_path / "data", "runway"), log) as client:
            started = await client.call_tool("edit_video", {"prompt": "make it snow", "video": VIDEO})
            assert isinstance(started.structured_content, dict)
            edit_id = started.structured_content["edit_id"]
            with anyio.fail_after(15):
                result = await client.call_tool(
                    "get_edit_status", {"edit_id": edit_id, "wait_seconds": 10}, progress_callback=progress
                )
    record = result.structured_content
    assert record is not None and record["status"] == "succeeded", record
    assert record["local_path"] and record["check_again_in_seconds"] is None
    assert "succeeded" in reports and any(r.startswith("running") for r in reports)


async def test_a_waiting_call_ends_after_wait_seconds_with_the_edit_still_running(tmp_path: Path) -> None:
    """A render that does not finish: the call answers at about wait_seconds, status running."""
    with fakes(runway=("running",) * 10_000) as (origin, _), (tmp_path / "server.log").open("w") as log:
        async with stdio_server(server_env(origin, tmp_path / "data", "runway"), log) as client:
            started = await client.call_tool("edit_video", {"prompt": "make it snow", "video": VIDEO})
            assert isinstance(started.structured_content, dict)
            edit_id = started.structured_content["edit_id"]
            with anyio.fail_after(10):
                began = anyio.current_time()
                result = await client.call_tool("get_edit_status", {"edit_id": edit_id, "wait_seconds": 2})
                took = anyio.current_time() - began
    record = result.structured_content
    assert record is not None and record["status"] == "running", record
    assert 2.0 <= took < 4.0
