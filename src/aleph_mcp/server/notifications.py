"""Tells subscribed clients when an edit changes, on both protocol eras and across processes.

- 2026-07-28 clients listen through `subscriptions/listen`; we publish to the SDK's bus.
- 2025-era clients (Claude Desktop, Inspector) send `resources/subscribe`; MCPServer has no public hook for
  it, so we register low-level handlers (`sdk.py`) and keep subscribers keyed by their connection (a new
  session proxy is built per message, so the connection object is the stable key).
- Another process sharing the data dir may advance an edit; `edits.changes.watch_store` reads the store's
  recent changes and hands the new ones to `edit_changed`, so this process's subscribers hear about them
  too. Each (edit, updated_at) is announced once (the change feed drops repeats).
"""

from __future__ import annotations

import logging
from typing import Any

import mcp.types as types
from mcp.server import ServerRequestContext
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    ResourcesListChanged,
    ResourceUpdated,
)

from aleph_mcp.models import Edit
from aleph_mcp.records import URI_PREFIX, edit_uri
from aleph_mcp.server.auth import owner_of
from aleph_mcp.server.sdk import add_request_handler, connection_of
from aleph_mcp.store import EditStore

logger = logging.getLogger(__name__)


class Notifier:
    """Every subscription is its caller's: a change is told only to subscribers who own the edit."""

    def __init__(self, bus: InMemorySubscriptionBus) -> None:
        self.bus = bus
        self._listen = ListenHandler(bus)
        self._subscribers: dict[str, dict[Any, tuple[Any, str]]] = {}  # uri -> {connection: (session, owner)}
        self._sessions: dict[Any, Any] = {}  # every 2025-era connection seen -> its latest session

    # -- 2025-era handlers --------------------------------------------------------------------------
    def install(self, server: MCPServer[Any]) -> None:
        add_request_handler(server, "resources/subscribe", types.SubscribeRequestParams, self._on_subscribe)
        listen = types.SubscriptionsListenRequestParams
        add_request_handler(server, "subscriptions/listen", listen, self._on_listen)
        add_request_handler(
            server, "resources/unsubscribe", types.UnsubscribeRequestParams, self._on_unsubscribe
        )

    def remember(self, session: Any, protocol_version: str | None) -> Any:
        """Track a 2025-era connection so it hears list_changed; returns its stable key."""
        connection = connection_of(session)
        if protocol_version == "2026-07-28":
            return connection
        if connection not in self._sessions:
            exit_stack = getattr(connection, "exit_stack", None)
            if exit_stack is not None:
                exit_stack.callback(self._forget, connection)
        self._sessions[connection] = session
        return connection

    def _forget(self, connection: Any) -> None:
        self._sessions.pop(connection, None)
        for subscribers in self._subscribers.values():
            subscribers.pop(connection, None)

    async def _on_subscribe(
        self, ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        # Any URI is accepted, as for an unknown edit; updates reach only the edit's owner.
        connection = self.remember(ctx.session, ctx.protocol_version)
        owner = owner_of(get_access_token())
        self._subscribers.setdefault(str(params.uri), {})[connection] = (ctx.session, owner)
        return types.EmptyResult()

    async def _on_listen(
        self, ctx: ServerRequestContext[Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        """The SDK's listen stream, honouring only the caller's own edits among the resource subscriptions:
        another's edit is treated like an unknown URI (not honoured, never told of)."""
        wanted = params.notifications.resource_subscriptions
        if wanted:
            owner, store = owner_of(get_access_token()), ctx.lifespan_context.store
            mine = [uri for uri in wanted if await _owned(store, str(uri), owner)]
            notifications = params.notifications.model_copy(update={"resource_subscriptions": mine})
            params = params.model_copy(update={"notifications": notifications})
        return await self._listen(ctx, params)

    async def _on_unsubscribe(
        self, ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        connection = connection_of(ctx.session)
        self._subscribers.get(str(params.uri), {}).pop(connection, None)
        return types.EmptyResult()

    # -- publishing -------------------------------------------------------------------------------
    async def edit_changed(self, edit: Edit) -> None:
        """Announce one change (the app's change feed has already dropped repeats)."""
        uri = edit_uri(edit.edit_id)
        await self.bus.publish(ResourceUpdated(uri=uri))
        for session, owner in list(self._subscribers.get(uri, {}).values()):
            if owner == edit.owner:
                await session.send_resource_updated(uri)
        if edit.status == "succeeded":
            await self.bus.publish(ResourcesListChanged())
            for session in list(self._sessions.values()):
                await session.send_resource_list_changed()


async def _owned(store: EditStore, uri: str, owner: str) -> bool:
    edit_id = uri.removeprefix(URI_PREFIX).split("/", 1)[0]
    edit = await store.get(edit_id) if uri.startswith(URI_PREFIX) else None
    return edit is not None and edit.owner == owner
