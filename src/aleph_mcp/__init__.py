"""aleph-mcp: an MCP server for editing videos with Runway Aleph through several hosted APIs."""

__version__ = "0.1.0"
