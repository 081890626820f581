"""The command line: `aleph-mcp` serves MCP over stdio; its subcommands are for people and scripts."""

from aleph_mcp.cli.entry import main

__all__ = ["main"]
