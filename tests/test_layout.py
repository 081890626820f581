"""The tree stays easy to live in: short functions, a small top level, no relative imports in src."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "aleph_mcp"
LONGEST_FUNCTION = 60
TOP_LEVEL_MODULES = 12


def test_no_function_in_src_is_longer_than_sixty_lines() -> None:
    """Every function and method of the package fits on a screen."""
    long = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LONGEST_FUNCTION:
                    long.append(f"{path.relative_to(SRC)}:{node.name} ({length} lines)")
    assert long == []


def test_the_package_top_level_holds_at_most_a_dozen_modules() -> None:
    """Everything else lives in a package along its seam."""
    modules = sorted(p.name for p in SRC.glob("*.py"))
    assert len(modules) <= TOP_LEVEL_MODULES, modules
