"""What every tool, resource and prompt handler reaches: the app, its notifier, and the typed context."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from aleph_mcp.app import AppState
from aleph_mcp.errors import AlephError
from aleph_mcp.server.answers import FinishedAnswers
from aleph_mcp.server.auth import owner_of
from aleph_mcp.server.client_logs import ClientLogs, serving
from aleph_mcp.server.notifications import Notifier


@dataclass
class ServerState(AppState):
    """The app as the MCP server serves it: plus the notifier that tells subscribed clients of changes,
    and the finished edits' status answers made once (answers.py)."""

    notifier: Notifier
    logs: ClientLogs
    answers: FinishedAnswers = field(default_factory=FinishedAnswers)


Ctx = Context[ServerState, Any]


@dataclass
class SignIn:
    """Who may call over HTTP: the bearer-token verifier and the resource server's OAuth settings."""

    verifier: TokenVerifier
    settings: AuthSettings


@dataclass
class Health:
    """The running server, as `/healthz` sees it: set by the lifespan while it runs."""

    state: ServerState | None = None


def state_of(ctx: Ctx) -> ServerState:
    """The server state, remembering the caller's connection so it hears list_changed."""
    request = ctx.request_context  # once: each of Context's accessors reads it again
    state = request.lifespan_context
    serving.set(
        state.notifier.remember(request.session, request.protocol_version)
    )  # log lines: this client's
    return state


def caller(ctx: Ctx) -> str:
    """Who is asking: the signed-in HTTP principal, or `local` (stdio, in-process, unsigned loopback)."""
    return owner_of(get_access_token())


def over_http(ctx: Ctx) -> bool:
    """Whether the request came over HTTP: a remote caller whose local paths would name our files."""
    return ctx.request_context.request is not None


def progress_of(ctx: Ctx) -> Any:
    """The service's progress callback, reported to the client (when it sent a progress token)."""

    async def progress(fraction: float, message: str) -> None:
        await ctx.report_progress(fraction, 1.0, message)

    return progress


@contextmanager
def agent_errors() -> Iterator[None]:
    """Our errors carry messages written for the agent; surface them as tool errors."""
    try:
        yield
    except AlephError as exc:
        raise ToolError(exc.message) from None
