#!/usr/bin/env sh
# Add aleph-mcp to Claude Code (user scope). The key goes in the server's environment, never in a prompt.
claude mcp add aleph --scope user \
  -e ALEPH_MCP_RUNWAY_API_KEY="$ALEPH_MCP_RUNWAY_API_KEY" \
  -e ALEPH_MCP_ALLOWED_DIRS="$HOME/Movies" \
  -- uvx aleph-mcp
