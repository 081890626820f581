"""`python -m aleph_mcp`: serve MCP over stdio (and the CLI's other commands)."""

from aleph_mcp.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
