"""Tools, resources and prompts are plain module-level functions; a `Registrations` list puts them on a
server when `create_server` makes one (nothing is registered at import time)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer

F = TypeVar("F", bound=Callable[..., Any])
Kind = Literal["tool", "resource", "prompt"]


class Registrations:
    """Remembers decorated functions with their options, for `register(server)`."""

    def __init__(self) -> None:
        self._entries: list[tuple[Kind, Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []

    def tool(self, **options: Any) -> Callable[[F], F]:
        return self._mark("tool", (), options)

    def resource(self, uri: str, **options: Any) -> Callable[[F], F]:
        return self._mark("resource", (uri,), options)

    def prompt(self, **options: Any) -> Callable[[F], F]:
        return self._mark("prompt", (), options)

    def _mark(self, kind: Kind, args: tuple[Any, ...], options: dict[str, Any]) -> Callable[[F], F]:
        def mark(fn: F) -> F:
            self._entries.append((kind, fn, args, options))
            return fn

        return mark

    def register(self, server: MCPServer[Any]) -> None:
        for kind, fn, args, options in self._entries:
            getattr(server, kind)(*args, **options)(fn)
