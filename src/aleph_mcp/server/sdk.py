"""Every use of a private `mcp` SDK attribute, in one place, with the reason for each (mcp 2.3).

`pyproject.toml` pins `mcp` to the minor versions these were checked against; a newer SDK that offers a
public way replaces the matching function here, and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import mcp.server.mcpserver.server as mcpserver_module
from mcp.server import NotificationOptions
from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel

Handler = Callable[[Any, Any], Awaitable[Any]]


def add_request_handler(
    server: MCPServer[Any], method: str, params: type[BaseModel], handler: Handler
) -> None:
    """A low-level handler for a method MCPServer has no public hook for.

    Used for `resources/list` (MCPServer lists only static resources; finished videos come from the store),
    `completion/complete` (MCPServer's `completion()` passes no request context, so edit ids could not be
    looked up) and the 2025-era `resources/subscribe` / `resources/unsubscribe` (no public hook at all).
    """
    server._lowlevel_server.add_request_handler(method, params, handler)


def connection_of(session: Any) -> Any:
    """The connection a session proxy belongs to: a stable key for one client.

    The SDK builds a new `ServerSession` per message, and in 2.3 neither it nor `ServerRequestContext` exposes
    its `Connection` publicly (only the unused `mcp.server.context.Context` does).
    """
    return getattr(session, "_connection", session)


@contextmanager
def logging_left_alone() -> Iterator[None]:
    """MCPServers made here leave the process's logging as it is.

    `MCPServer.__init__` calls `configure_logging`, which imports rich and makes a RichHandler for a root
    `logging.basicConfig` (~16 ms of start-up, before `initialize` can be answered). The command line has
    configured logging already (stderr, its own format), so that basicConfig changes nothing, and an
    application embedding the server keeps its own. There is no option to skip it; the module-level name
    the constructor looks up is replaced for the construction only.
    """
    name = "configure_logging"  # imported there from mcpserver.utilities.logging, not re-exported
    original = getattr(mcpserver_module, name)
    setattr(mcpserver_module, name, _leave_logging_alone)
    try:
        yield
    finally:
        setattr(mcpserver_module, name, original)


def _leave_logging_alone(*_args: Any, **_kwargs: Any) -> None:
    return None


def announce_resource_list_changes(server: MCPServer[Any]) -> None:
    """Tell 2025-era clients that resource lists change (capability `resources.listChanged`), on every
    transport: finished videos join `resources/list`.

    MCPServer offers no option for it: its transports build the initialize answer from the low-level
    server's `create_initialization_options()` with default NotificationOptions (all False), so the
    default is replaced here, on this one server instance.
    """
    low = server._lowlevel_server
    original = low.create_initialization_options

    def with_resource_changes(
        notification_options: NotificationOptions | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        return original(notification_options or NotificationOptions(resources_changed=True), *args, **kwargs)

    low.create_initialization_options = with_resource_changes  # type: ignore[method-assign]


async def serve_stdio(server: MCPServer[Any]) -> None:
    """Serve MCP over stdio (resource list changes announced by `announce_resource_list_changes`)."""
    await server.run_stdio_async()
