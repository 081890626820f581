"""The MCP surface: the only package that imports `mcp`. `create_server` builds the server."""

from aleph_mcp.server.sdk import serve_stdio
from aleph_mcp.server.wiring import INSTRUCTIONS, create_server

__all__ = ["INSTRUCTIONS", "create_server", "serve_stdio"]
