"""Keep server.json's .mcpb package in step with a built bundle (run by the release workflow).

    python scripts/server_json.py --mcpb dist/aleph-mcp-0.1.0.mcpb

sets that package's identifier to the bundle's release asset URL for the current version and its
`fileSha256` to the file's SHA-256; `--check` only reports whether server.json already agrees.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RELEASES = "https://github.com/aleph-mcp/aleph-mcp/releases/download"


def asset_url(version: str) -> str:
    return f"{RELEASES}/v{version}/aleph-mcp-{version}.mcpb"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def update(server: dict[str, Any], version: str, file_sha256: str) -> dict[str, Any]:
    (package,) = [p for p in server["packages"] if p["registryType"] == "mcpb"]
    package["identifier"] = asset_url(version)
    package["version"] = version
    package["fileSha256"] = file_sha256
    return server


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Set server.json's mcpb identifier and SHA-256")
    parser.add_argument("--mcpb", type=Path, required=True, help="the built .mcpb file")
    parser.add_argument("--server-json", type=Path, default=ROOT / "server.json")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if out of date")
    args = parser.parse_args(argv)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    text = args.server_json.read_text()
    updated = json.dumps(update(json.loads(text), version, sha256(args.mcpb)), indent=2) + "\n"
    if args.check:
        return 0 if json.loads(updated) == json.loads(text) else 1
    args.server_json.write_text(updated)
    print(f"{args.server_json}: mcpb {asset_url(version)} sha256 {sha256(args.mcpb)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
