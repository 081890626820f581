"""create_server(): the app (settings, store, providers, poller) behind an MCPServer, with notifications.

Nothing is built at import time; the lifespan builds what was not injected and tears it down again.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

import anyio
import httpx2
import mcp.types as types
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus

from aleph_mcp import __version__
from aleph_mcp.app import build_app, http_client
from aleph_mcp.config import Settings, load_settings
from aleph_mcp.edits.changes import watch_store
from aleph_mcp.media.fetch import Resolver
from aleph_mcp.models import Edit
from aleph_mcp.providers.base import Provider
from aleph_mcp.server.catalog_tool import catalog_tools
from aleph_mcp.server.client_logs import ClientLogs
from aleph_mcp.server.completions import install_completions
from aleph_mcp.server.first_use import FirstUseClient
from aleph_mcp.server.notifications import Notifier
from aleph_mcp.server.prompts import prompts
from aleph_mcp.server.resources import install_listing, resources
from aleph_mcp.server.sdk import announce_resource_list_changes, logging_left_alone
from aleph_mcp.server.state import Health, ServerState, SignIn
from aleph_mcp.server.tasks import EditTasks
from aleph_mcp.server.tasks_legacy import legacy_tasks
from aleph_mcp.server.tools import tools
from aleph_mcp.store import EditStore
from aleph_mcp.store.factory import open_store

INSTRUCTIONS = """\
aleph-mcp edits videos with Runway's Aleph model through a hosted API (or the offline, free `local` provider).
Edits are asynchronous and each one is billed by its provider:
1. When unsure which provider, model or cost: list_providers shows limits and prices, and
   edit_video(..., dry_run=true) returns the estimated cost and the exact request without sending anything.
2. edit_video(prompt, video) returns an edit id and its estimated cost at once. It may be refused before
   anything is sent by a spending budget, or need the person's confirmation above a set cost (the message
   says what to do; pass confirm=true only after the person agreed).
3. Check back with get_edit_status(edit_id) at the suggested interval (check_again_in_seconds), or pass
   wait_seconds (up to 50): the call answers as soon as the edit ends (or when the time is up, still
   running), reporting progress meanwhile. Or subscribe to aleph://edits/{edit_id}. An edit the provider
   has no room for yet stays queued ("waiting for ... capacity") and is sent when it has: do not resubmit it.
4. When it has succeeded, the video is archived locally: read aleph://edits/{edit_id}/video or use local_path.
5. To change that result further, edit_video(prompt, from_edit=edit_id) (the refine prompt writes the call);
   start_seconds and end_seconds edit only part of a clip.
Do not start the same edit twice to "retry" a slow one: it would be billed twice. Use idempotency_key.
"""


# A film frame with a play mark; inline, so a client shows it without fetching anything.
ICON = types.Icon(
    src="data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64"><rect width="64" height="64" rx="12" '
        b'fill="#1c1c28"/><rect x="8" y="16" width="48" height="32" rx="4" fill="#f4f1ea"/>'
        b'<path d="M28 24v16l13-8z" fill="#e2553a"/></svg>'
    ).decode(),
    mime_type="image/svg+xml",
    sizes=["any"],
)


@asynccontextmanager
async def running(
    settings: Settings,
    notifier: Notifier,
    logs: ClientLogs,
    *,
    providers: Mapping[str, Provider] | None,
    store: EditStore | None,
    http: httpx2.AsyncClient | None,
    health: Health | None,
    resolver: Resolver | None,
) -> AsyncIterator[ServerState]:
    """The server's lifespan: build what was not injected, poll and watch the store, tear it all down."""
    async with AsyncExitStack() as stack:
        client = http
        if client is None:  # made at its first request: loading the CA certificates is not start-up work
            lazy = FirstUseClient(lambda: http_client(settings))
            stack.push_async_callback(lazy.aclose)
            client = lazy.as_client()
        if store is None:
            store = await open_store(settings)
            stack.push_async_callback(store.close)
        the_store = store

        async def changed(edit: Edit) -> None:
            logs.edit_seen(edit)
            await notifier.edit_changed(edit)

        app = build_app(settings, the_store, client, providers, on_change=changed, resolver=resolver)
        state = ServerState(**vars(app), notifier=notifier, logs=logs)
        package_logger = logging.getLogger("aleph_mcp")
        package_logger.addHandler(logs)
        stack.callback(package_logger.removeHandler, logs)
        await app.service.recover()  # task ids a previous run could not store, before any poll
        if health is not None:
            health.state = state
        async with anyio.create_task_group() as tg:
            tick = min(1.0, settings.poll_interval)
            tg.start_soon(state.poller.run, tick)
            tg.start_soon(logs.deliver)
            # Other processes' changes: to subscribers, and to this process's waiting calls; and their
            # webhooks' pokes for edits this process holds the lease of (PostgreSQL's announcements).
            tg.start_soon(
                lambda: watch_store(
                    the_store, app.changes, tick, start=time.time(), on_new=changed, on_poke=app.poked
                )
            )
            try:
                yield state
            finally:
                if health is not None:
                    health.state = None
                tg.cancel_scope.cancel()


def create_server(
    settings: Settings | None = None,
    *,
    providers: Mapping[str, Provider] | None = None,
    store: EditStore | None = None,
    http: httpx2.AsyncClient | None = None,
    sign_in: SignIn | None = None,
    health: Health | None = None,
    resolver: Resolver | None = None,
) -> MCPServer[ServerState]:
    """The server; `sign_in` guards its HTTP transport, `health` learns the running state (`/healthz`),
    `resolver` replaces DNS look-ups of fetched hosts (tests)."""
    settings = settings or load_settings()
    bus = InMemorySubscriptionBus()
    notifier = Notifier(bus)
    logs = ClientLogs(settings.secrets())

    def lifespan(_server: MCPServer[ServerState]) -> AbstractAsyncContextManager[ServerState]:
        return running(
            settings,
            notifier,
            logs,
            providers=providers,
            store=store,
            http=http,
            health=health,
            resolver=resolver,
        )

    with logging_left_alone():  # the CLI configured it; the SDK's would import rich (sdk.py)
        server = MCPServer(
            "aleph-mcp",
            title="Aleph video editing",
            version=__version__,
            instructions=INSTRUCTIONS,
            website_url="https://github.com/aleph-mcp/aleph-mcp",
            icons=[ICON],
            lifespan=lifespan,
            subscriptions=bus,
            tools=[*tools.tools(), *catalog_tools.tools()],
            token_verifier=sign_in.verifier if sign_in else None,
            auth=sign_in.settings if sign_in else None,
            extensions=[EditTasks()],  # edit_video as a task, 2026-07-28 (and the 2025 tasks/* methods)
            middleware=[legacy_tasks],  # ... and 2025-11-25, where only middleware can answer with a task
        )
    for registrations in (resources, prompts):
        registrations.register(server)
    install_listing(server)
    announce_resource_list_changes(server)
    install_completions(server)
    notifier.install(server)
    logs.install(server)
    return server
