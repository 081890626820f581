"""`python -m aleph_mcp`: serve MCP over stdio (and the CLI's other commands)."""

import gc

gc.disable()  # no collections while the command line loads: `cli.entry.main` turns them back on

from aleph_mcp.cli import main  # noqa: E402  (after the line above, on purpose)

if __name__ == "__main__":
    raise SystemExit(main())
