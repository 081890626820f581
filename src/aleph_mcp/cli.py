"""Command line: `aleph-mcp` (or `aleph-mcp serve`) serves MCP over stdio."""

from __future__ import annotations

import argparse
import logging
import sys

import anyio

from . import __version__


def _configure_logging(level: str) -> None:
    # stdout is the MCP channel: every log line goes to stderr.
    logging.basicConfig(
        stream=sys.stderr, level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="aleph-mcp", description="MCP server for Runway Aleph video edits")
    parser.add_argument("--version", action="version", version=f"aleph-mcp {__version__}")
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="default: ALEPH_MCP_LOG_LEVEL or INFO",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve MCP over stdio (the default)")
    args = parser.parse_args(argv)

    from .config import Settings
    from .server import create_server, serve_stdio

    settings = Settings()
    _configure_logging(args.log_level or settings.log_level)
    anyio.run(serve_stdio, create_server(settings))
