"""MCP logging over HTTP (2025 era): a client that set a level hears about its own edits, never another's."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
from mcp.shared.exceptions import MCPDeprecationWarning

from .conftest import make_settings
from .http_server import http_client, served_http


async def test_log_lines_reach_only_the_client_whose_edit_they_are_about(tmp_path: Path, clip: Path) -> None:
    """alice and bob both ask for info logs; alice's edit is logged to alice, and bob hears nothing of it."""
    settings = make_settings(
        tmp_path,
        http_tokens="alice=alice-token,bob=bob-token",
        http_allowed_dirs=str(clip.parent),
        default_provider="local",
        poll_interval=0.1,
        poll_max_interval=0.2,
    )
    heard: dict[str, list[types.LoggingMessageNotificationParams]] = {"alice": [], "bob": []}

    def listener(name: str) -> Any:
        async def on_log(params: types.LoggingMessageNotificationParams) -> None:
            heard[name].append(params)

        return on_log

    async with (
        served_http(settings) as base,
        http_client(base, "alice-token", mode="legacy", logging_callback=listener("alice")) as alice,
        http_client(base, "bob-token", mode="legacy", logging_callback=listener("bob")) as bob,
    ):
        with warnings.catch_warnings():  # deprecated for 2026-07-28; 2025-era clients send it
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await alice.set_logging_level("info")
            await bob.set_logging_level("info")
        started = await alice.call_tool("edit_video", {"prompt": "sepia", "video": str(clip)})
        assert isinstance(started.structured_content, dict)
        edit_id = started.structured_content["edit_id"]
        with anyio.fail_after(30):
            while not any("edit ended" in str(p.data) for p in heard["alice"]):
                await anyio.sleep(0.05)
    alice_text = [str(p.data) for p in heard["alice"]]
    assert any(f"edit started edit_id={edit_id}" in t for t in alice_text)
    assert any(f"edit ended edit_id={edit_id} status=succeeded" in t for t in alice_text)
    assert all(edit_id not in str(p.data) for p in heard["bob"])
    assert all(p.level in ("info", "notice", "warning", "error") for p in heard["alice"])
