"""create_server(): wires settings, store, providers, poller and notifications into an MCPServer.

Nothing is built at import time; the lifespan builds what was not injected and tears it down again.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2
from mcp.server import NotificationOptions
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.server.subscriptions import InMemorySubscriptionBus

from aleph_mcp import __version__
from aleph_mcp.config import Settings
from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.edits.poller import Poller
from aleph_mcp.edits.service import EditService
from aleph_mcp.media import Archive
from aleph_mcp.models import Edit
from aleph_mcp.providers import build_providers
from aleph_mcp.providers.base import Provider
from aleph_mcp.server.catalog_tool import register_catalog_tools
from aleph_mcp.server.notifications import Notifier
from aleph_mcp.server.prompts import register_prompts
from aleph_mcp.server.resources import register_resources
from aleph_mcp.server.tools import register_tools
from aleph_mcp.store.sqlite import EditStore, SQLiteEditStore

logger = logging.getLogger(__name__)

INSTRUCTIONS = """\
aleph-mcp edits videos with Runway's Aleph model through a hosted API (or the offline, free `local` provider).
Edits are asynchronous and each one is billed by its provider:
1. When unsure which provider, model or cost: list_providers shows limits and prices, and
   edit_video(..., dry_run=true) returns the estimated cost and the exact request without sending anything.
2. edit_video(prompt, video) returns an edit id and its estimated cost at once. It may be refused before
   anything is sent by a spending budget, or need the person's confirmation above a set cost (the message
   says what to do; pass confirm=true only after the person agreed).
3. Check back with get_edit_status(edit_id) at the suggested interval (check_again_in_seconds), or pass
   wait_seconds (up to 50) to wait for a change, or subscribe to aleph://edits/{edit_id}.
4. When it has succeeded, the video is archived locally: read aleph://edits/{edit_id}/video or use local_path.
Do not start the same edit twice to "retry" a slow one: it would be billed twice. Use idempotency_key.
"""


@dataclass
class AppState:
    """What tools and resources reach through the request context."""

    settings: Settings
    store: EditStore
    service: EditService
    poller: Poller
    notifier: Notifier
    archive: Archive

    @property
    def poll_interval(self) -> float:
        return self.settings.poll_interval


def _owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def create_server(
    settings: Settings | None = None,
    *,
    providers: Mapping[str, Provider] | None = None,
    store: EditStore | None = None,
    http: httpx2.AsyncClient | None = None,
) -> MCPServer[AppState]:
    settings = settings or Settings()
    bus = InMemorySubscriptionBus()
    notifier = Notifier(bus)

    @asynccontextmanager
    async def lifespan(server: MCPServer[AppState]) -> AsyncIterator[AppState]:
        async with AsyncExitStack() as stack:
            client = http
            if client is None:
                client = await stack.enter_async_context(
                    httpx2.AsyncClient(
                        timeout=settings.request_timeout, headers={"user-agent": f"aleph-mcp/{__version__}"}
                    )
                )
            the_store = store
            if the_store is None:
                the_store = SQLiteEditStore(settings.store_path)
                stack.push_async_callback(the_store.close)
            state = build_state(settings, notifier, the_store, client, providers)
            async with anyio.create_task_group() as tg:
                tick = min(1.0, settings.poll_interval)
                tg.start_soon(state.poller.run, tick)
                tg.start_soon(lambda: notifier.watch(the_store, tick, start=time.time()))
                try:
                    yield state
                finally:
                    tg.cancel_scope.cancel()

    server = MCPServer(
        "aleph-mcp",
        title="Aleph video editing",
        version=__version__,
        instructions=INSTRUCTIONS,
        website_url="https://github.com/aleph-mcp/aleph-mcp",
        lifespan=lifespan,
        subscriptions=bus,
    )
    register_tools(server)
    register_catalog_tools(server)
    register_resources(server)
    register_prompts(server)
    notifier.install(server)
    return server


def build_state(
    settings: Settings,
    notifier: Notifier,
    store: EditStore,
    client: httpx2.AsyncClient,
    providers: Mapping[str, Provider] | None,
) -> AppState:
    owner = _owner_id()
    archive = Archive(settings.archive_dir)
    the_providers = providers if providers is not None else build_providers(settings, client)
    policy = PollPolicy(
        interval=settings.poll_interval,
        max_interval=max(settings.poll_max_interval, settings.poll_interval),
        edit_timeout=settings.edit_timeout,
        concurrency=settings.poll_concurrency,
        lease_seconds=settings.request_timeout * 4,
    )
    poller = Poller(
        store, the_providers, archive, client, owner=owner, policy=policy, on_change=notifier.edit_changed
    )

    async def submitted(edit: Edit) -> None:
        poller.wake()
        await notifier.edit_changed(edit)

    service = EditService(
        store,
        the_providers,
        settings,
        owner=owner,
        lease_seconds=policy.lease_seconds,
        poll_interval=settings.poll_interval,
        on_submitted=submitted,
        http=client if settings.probe_urls else None,
    )
    return AppState(
        settings=settings, store=store, service=service, poller=poller, notifier=notifier, archive=archive
    )


async def serve_stdio(server: MCPServer[Any]) -> None:
    """Like MCPServer.run_stdio_async, but 2025-era clients are told resource lists change."""
    low = server._lowlevel_server
    options = low.create_initialization_options(NotificationOptions(resources_changed=True))
    async with stdio_server() as (read_stream, write_stream):
        await low.run(read_stream, write_stream, options)
