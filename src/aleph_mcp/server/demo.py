"""`aleph-mcp demo`: an offline edit end to end through the real server, for someone who just installed it.

It makes the sample clip, starts `python -m aleph_mcp` over stdio exactly as an MCP client would, edits the
clip with the free `local` provider, waits with get_edit_status and saves the thumbnail resource. Nothing is
sent anywhere and no key is needed.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import mcp.types as types
from mcp import Client, StdioServerParameters

from aleph_mcp.media.sample import make_sample

DEMO_PROMPT = "black and white, mirrored"
TERMINAL = ("succeeded", "failed", "cancelled")
WAIT_SECONDS = 20


def server_params(data_dir: Path, clip: Path) -> StdioServerParameters:
    env = dict(os.environ)  # the spawned server inherits keys and settings like any MCP client's child
    env.update(
        ALEPH_MCP_DATA_DIR=str(data_dir),
        ALEPH_MCP_ALLOWED_DIRS=str(clip.parent),
        ALEPH_MCP_POLL_INTERVAL="0.5",
    )
    return StdioServerParameters(command=sys.executable, args=["-m", "aleph_mcp"], env=env)


async def run_demo(data_dir: Path, out: TextIO, *, tries: int = 30) -> int:
    """Edit the sample clip; print the archived video's and thumbnail's paths. Exit code like the CLI's."""
    clip = make_sample(data_dir / "input" / "sample.mp4")
    print(f"sample clip: {clip}", file=out)
    async with Client(server_params(data_dir, clip), mode="legacy") as client:
        started = await client.call_tool(
            "edit_video", {"prompt": DEMO_PROMPT, "video": str(clip), "provider": "local"}
        )
        record: dict[str, Any] = started.structured_content or {}
        if started.is_error or "edit_id" not in record:
            print(f"refused: {_text(started)}", file=sys.stderr)
            return 2
        print(f"edit {record['edit_id']}: {record['status']} ({DEMO_PROMPT!r})", file=out)
        for _ in range(tries):
            if record["status"] in TERMINAL:
                break
            arguments = {"edit_id": record["edit_id"], "wait_seconds": WAIT_SECONDS}
            record = (await client.call_tool("get_edit_status", arguments)).structured_content or record
        if record["status"] != "succeeded":
            print(
                f"edit ended {record['status']}: {(record.get('error') or {}).get('message', '')}", file=out
            )
            return 1 if record["status"] in TERMINAL else 3
        print(f"video: {record['local_path']}", file=out)
        if record.get("thumbnail_uri"):
            print(f"thumbnail: {await _save(client, record['thumbnail_uri'], data_dir)}", file=out)
        if record.get("notes"):
            print(f"notes: {record['notes']}", file=out)
    return 0


async def _save(client: Client, uri: str, folder: Path) -> Path:
    contents = (await client.read_resource(uri)).contents[0]
    if not isinstance(contents, types.BlobResourceContents):
        raise ValueError(f"{uri} is not an image")
    path = folder / "thumbnail.jpg"
    path.write_bytes(base64.b64decode(contents.blob))
    return path


def _text(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))
