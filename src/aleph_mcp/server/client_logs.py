"""MCP logging (`logging/setLevel`, `notifications/message`) for 2025-era clients that ask for it.

A client hears only what concerns it: records logged while serving one of its own requests, and records
about its own edits (our log lines carry `edit_id=…`). Each is scrubbed like everything else. The 2026-07-28
era has no `logging/setLevel` (log delivery there is a per-request opt-in the SDK handles), so nothing is sent
to those connections from here.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import anyio
import mcp.types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server import ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning

from aleph_mcp.models import Edit
from aleph_mcp.redact import scrub
from aleph_mcp.server.auth import owner_of
from aleph_mcp.server.sdk import add_request_handler, connection_of

ORDER: tuple[types.LoggingLevel, ...] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)
FROM_PYTHON: dict[int, types.LoggingLevel] = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
}
EDIT_ID = re.compile(r"\bedit(?:_id)?=(ed_[0-9a-f]{20})\b")
OWNERS_KEPT = 4096
Queued = tuple["Listener", types.LoggingLevel, str, str]
serving: contextvars.ContextVar[Any] = contextvars.ContextVar("aleph_mcp_serving", default=None)


@dataclass
class Listener:
    session: Any
    owner: str
    level: types.LoggingLevel


class ClientLogs(logging.Handler):
    """Forwards this process's log records to the clients they concern (see the module docstring)."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__(logging.INFO)
        self.secrets = secrets
        self._listeners: dict[Any, Listener] = {}  # connection -> who listens at which level
        self._owners: OrderedDict[str, str] = OrderedDict()  # edit_id -> owner, from the edits seen
        self._send: MemoryObjectSendStream[Queued] | None = None  # open while `deliver` runs
        self._loop_thread: int | None = None  # the event loop's thread, where records may be queued

    def install(self, server: MCPServer[Any]) -> None:
        add_request_handler(server, "logging/setLevel", types.SetLevelRequestParams, self._set_level)

    async def _set_level(
        self, ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        connection = connection_of(ctx.session)
        self._listeners[connection] = Listener(ctx.session, owner_of(get_access_token()), params.level)
        # Our records must be made at that level to be forwarded; stderr keeps the operator's level, which
        # the command line sets on its handler (cli.entry), not on the logger.
        wanted = logging.DEBUG if params.level == "debug" else logging.INFO
        package = logging.getLogger("aleph_mcp")
        if package.getEffectiveLevel() > wanted:
            package.setLevel(wanted)
        exit_stack = getattr(connection, "exit_stack", None)
        if exit_stack is not None:
            exit_stack.callback(self._listeners.pop, connection, None)
        return types.EmptyResult()

    def edit_seen(self, edit: Edit) -> None:
        """Remember whose edit this is, so its log lines reach its owner only."""
        self._owners[edit.edit_id] = edit.owner
        self._owners.move_to_end(edit.edit_id)
        while len(self._owners) > OWNERS_KEPT:
            self._owners.popitem(last=False)

    def emit(self, record: logging.LogRecord) -> None:
        # Memory streams are not thread-safe: records of worker threads (renders, SQLite) stay on stderr.
        on_loop = threading.get_ident() == self._loop_thread
        if not on_loop or not self._listeners or not record.name.startswith("aleph_mcp"):
            return
        level = FROM_PYTHON.get(record.levelno, "error" if record.levelno > logging.ERROR else "debug")
        text = scrub(record.getMessage(), self.secrets)
        for listener in self._audience(text):
            if ORDER.index(level) >= ORDER.index(listener.level):
                # A client that does not keep up loses log lines, not requests.
                with contextlib.suppress(anyio.WouldBlock, anyio.ClosedResourceError, AttributeError):
                    self._send.send_nowait((listener, level, record.name, text))  # type: ignore[union-attr]

    def _audience(self, text: str) -> list[Listener]:
        here = serving.get()
        if here is not None:  # logged while serving one client's request: that client only
            listener = self._listeners.get(here)
            return [listener] if listener is not None else []
        match = EDIT_ID.search(text)
        owner = self._owners.get(match.group(1)) if match else None
        return [each for each in self._listeners.values() if owner is not None and each.owner == owner]

    async def deliver(self) -> None:
        """Send queued records until cancelled; one failing client never stops the others."""
        send, receive = anyio.create_memory_object_stream[Queued](1024)
        self._send, self._loop_thread = send, threading.get_ident()
        try:
            async with send, receive:
                await self._drain(receive)
        finally:
            self._send = None

    async def _drain(self, receive: MemoryObjectReceiveStream[Queued]) -> None:
        async for listener, level, name, text in receive:
            try:
                with warnings.catch_warnings():  # deprecated for 2026-07-28; what 2025-era clients use
                    warnings.simplefilter("ignore", MCPDeprecationWarning)
                    await listener.session.send_log_message(level, text, logger=name)
            except Exception:  # the client went away; its listener goes with its connection
                continue
