"""Typed reads of MCP tool results, whose content the SDK types as a union of block kinds."""

from __future__ import annotations

import mcp.types as types


def text_of(result: types.CallToolResult) -> str:
    """The text of a result's first content block, which must be a text block."""
    block = result.content[0]
    assert isinstance(block, types.TextContent), block
    return block.text
