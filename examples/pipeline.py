"""An agent pipeline in miniature: start aleph-mcp over stdio, submit an edit, wait for it, save the result.

    python examples/pipeline.py                                   # offline: the `local` provider, sample clip
    python examples/pipeline.py --provider runway --video https://example.com/clip.mp4 --prompt "make it snow"

Hosted providers need their key in the environment (e.g. ALEPH_MCP_RUNWAY_API_KEY). The server is the
real one, started exactly as Claude Desktop would start it: `python -m aleph_mcp`.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
from mcp import Client, StdioServerParameters

HERE = Path(__file__).resolve().parent
TERMINAL = ("succeeded", "failed", "cancelled")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--provider", default="local")
    parser.add_argument("--prompt", default="black and white, mirrored")
    parser.add_argument("--video", default=str(HERE / "sample.mp4"), help="https URL or local file")
    parser.add_argument(
        "--data-dir", default=os.environ.get("ALEPH_MCP_DATA_DIR", str(Path.cwd() / ".aleph-demo"))
    )
    parser.add_argument("--timeout", type=float, default=1800, help="give up waiting after this many seconds")
    return parser.parse_args()


def server_params(args: argparse.Namespace) -> StdioServerParameters:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith("ALEPH_MCP_") or k.endswith(("_API_KEY", "_SECRET"))
    }
    env["ALEPH_MCP_DATA_DIR"] = args.data_dir
    if "://" not in args.video:
        env["ALEPH_MCP_ALLOWED_DIRS"] = str(Path(args.video).resolve().parent)
    if args.provider == "local":
        env.setdefault("ALEPH_MCP_POLL_INTERVAL", "0.5")
    return StdioServerParameters(command=sys.executable, args=["-m", "aleph_mcp"], env=env)


async def run(args: argparse.Namespace) -> int:
    video = args.video if "://" in args.video else str(Path(args.video).resolve())
    async with Client(server_params(args), mode="legacy") as client:
        started = await client.call_tool(
            "edit_video", {"prompt": args.prompt, "video": video, "provider": args.provider}
        )
        if started.is_error:
            print(f"refused: {text_of(started)}", file=sys.stderr)
            return 2
        record: dict[str, Any] = started.structured_content or {}
        print(f"started {record['edit_id']} with {record['provider']}: {record['status']}")
        with anyio.move_on_after(args.timeout):
            while record["status"] not in TERMINAL:
                result = await client.call_tool(
                    "get_edit_status", {"edit_id": record["edit_id"], "wait_seconds": 20}
                )
                record = result.structured_content or record
                progress = f" {record['progress']:.0%}" if record.get("progress") is not None else ""
                print(f"  {record['status']}{progress}")
        if record["status"] != "succeeded":
            error = record.get("error") or {}
            print(
                f"edit {record['edit_id']} is {record['status']}: {error.get('message', '')}", file=sys.stderr
            )
            return 1 if record["status"] in TERMINAL else 3
        if record.get("notes"):
            print(f"notes: {record['notes']}")
        print(f"video: {record['local_path']}")
        if record.get("thumbnail_uri"):
            thumbnail = await save_resource(
                client, record["thumbnail_uri"], Path(record["local_path"]), Path(args.data_dir)
            )
            print(f"thumbnail: {thumbnail}")
        return 0


async def save_resource(client: Client, uri: str, video: Path, out_dir: Path) -> Path:
    contents = (await client.read_resource(uri)).contents[0]
    assert isinstance(contents, types.BlobResourceContents)
    suffix = ".jpg" if contents.mime_type == "image/jpeg" else ".png"
    path = out_dir / f"{video.stem}.thumbnail{suffix}"
    path.write_bytes(base64.b64decode(contents.blob))
    return path


def text_of(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


if __name__ == "__main__":
    sys.exit(anyio.run(run, parse_args()))
