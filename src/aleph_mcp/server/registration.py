"""Tools, resources and prompts are plain module-level functions; a `Registrations` list puts them on a
server when `create_server` makes one (nothing is registered at import time).

It also keeps what agents read tidy: descriptions come from docstrings cleaned of their indentation, and
tool input schemas are trimmed like the output models (`models.lean_schema`): clients read and validate
them on every session, so their size is latency.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts import Prompt
from mcp.server.mcpserver.prompts.base import PromptArgument
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.context_injection import find_context_parameter
from pydantic import ConfigDict, validate_call
from pydantic.fields import FieldInfo

from aleph_mcp.models import lean_schema

F = TypeVar("F", bound=Callable[..., Any])
Kind = Literal["tool", "resource", "prompt"]


class Registrations:
    """Remembers decorated functions with their options, for `tools()` and `register(server)`."""

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
            if "description" not in options and fn.__doc__:
                options["description"] = inspect.cleandoc(fn.__doc__)
            self._entries.append((kind, fn, args, options))
            return fn

        return mark

    def tools(self) -> list[Tool]:
        """The tools, built for `MCPServer(tools=...)`, with lean input schemas."""
        built = []
        for kind, fn, _, options in self._entries:
            if kind == "tool":
                tool = Tool.from_function(fn, **options)
                lean_schema(tool.parameters)
                built.append(tool)
        return built

    def register(self, server: MCPServer[Any]) -> None:
        """Put the resources and prompts on `server` (tools go in through `tools()`)."""
        for kind, fn, args, options in self._entries:
            if kind == "prompt":
                server.add_prompt(lazy_prompt(fn, **options))
            elif kind != "tool":
                getattr(server, kind)(*args, **options)(fn)


def lazy_prompt(
    fn: Callable[..., Any], *, title: str | None = None, description: str | None = None
) -> Prompt:
    """What `Prompt.from_function` builds, without its start-up cost (a JSON schema and a validator per
    prompt, ~5 ms each): the arguments are read from the signature, and the validator that checks a call
    (lengths, literals) is built at the prompt's first use. test_startup checks the two agree."""
    hints = typing.get_type_hints(fn, include_extras=True)
    context_kwarg = find_context_parameter(fn)  # the SDK passes the request's Context there
    arguments = []
    for name, parameter in inspect.signature(fn).parameters.items():
        if name == context_kwarg:
            continue
        found = [
            m.description for m in getattr(hints.get(name), "__metadata__", ()) if isinstance(m, FieldInfo)
        ]
        arguments.append(
            PromptArgument(
                name=name,
                description=next((d for d in reversed(found) if d), None),
                required=parameter.default is inspect.Parameter.empty,
            )
        )
    validated: list[Callable[..., Any]] = []

    async def render(**values: Any) -> Any:
        if not validated:
            validated.append(validate_call(config=ConfigDict(arbitrary_types_allowed=True))(fn))
        return await validated[0](**values)

    return Prompt(
        name=fn.__name__,
        title=title,
        description=description,
        arguments=arguments,
        fn=render,
        context_kwarg=context_kwarg,
    )
