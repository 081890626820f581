"""Entry point of the aleph-mcp desktop extension (server/main.py inside the .mcpb bundle).

The app starts it as `uv run --directory <bundle> server/main.py [FOLDER ...]`, with the provider keys from
the extension's settings in the environment. It turns the folders picked in the settings (passed as
arguments: the app expands a multiple-choice setting only into arguments) into ALEPH_MCP_ALLOWED_DIRS, drops
settings left empty (an unset optional setting can reach the server as an empty string or as its literal
`${user_config.…}` placeholder), then serves MCP over stdio exactly as `python -m aleph_mcp` does.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import MutableMapping

PLACEHOLDER = "${user_config."


def _unset(value: str) -> bool:
    return not value.strip() or value.startswith(PLACEHOLDER)


def prepare(argv: list[str], environ: MutableMapping[str, str]) -> None:
    """Set ALEPH_MCP_ALLOWED_DIRS from the folder arguments; remove unset settings from the environment."""
    for name in [n for n in environ if n.startswith("ALEPH_MCP_")]:
        if _unset(environ[name]):
            del environ[name]
    folders = [a for a in argv if not _unset(a)]
    if folders:
        environ["ALEPH_MCP_ALLOWED_DIRS"] = os.pathsep.join(folders)


def main() -> None:
    prepare(sys.argv[1:], os.environ)
    sys.argv = ["aleph-mcp", "serve"]
    runpy.run_module("aleph_mcp", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
