"""The application without any transport: settings, store, providers, service and poller, wired once.

The MCP server (`server/`) and the command line (`cli/`) both build exactly this; neither builds its parts
any other way. Nothing here imports `mcp`.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx2

from aleph_mcp import __version__
from aleph_mcp.config import Settings
from aleph_mcp.edits.capacity import capacity_limits
from aleph_mcp.edits.changes import ChangeFeed
from aleph_mcp.edits.journal import TaskJournal
from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.edits.poller import Poller
from aleph_mcp.edits.rates import Paces
from aleph_mcp.edits.service import EditService
from aleph_mcp.media.archive import Archive, LocalArchive
from aleph_mcp.media.fetch import FetchPolicy, Resolver, system_resolver
from aleph_mcp.models import Edit
from aleph_mcp.providers import build_providers, tls
from aleph_mcp.providers.api_reads import ApiReads, ReadingClient
from aleph_mcp.providers.base import Provider
from aleph_mcp.providers.registry import HOSTED_PROVIDERS
from aleph_mcp.store import EditStore

OnChange = Callable[[Edit], Awaitable[None]]


@dataclass
class AppState:
    """What the tools, resources and commands reach: one of each part, shared by every request."""

    settings: Settings
    store: EditStore
    service: EditService
    poller: Poller
    archive: Archive
    changes: ChangeFeed  # every change of an edit this process makes or sees: what waiting calls wake on

    @property
    def poll_interval(self) -> float:
        return self.settings.poll_interval

    def poked(self, edit_id: str, holder: str | None) -> None:
        """Another process took a webhook for `edit_id`: if this one holds its lease, the check it has in
        progress may predate the provider's news, so it checks again right after (Poller.poke)."""
        if holder == self.poller.owner:
            self.poller.poke(edit_id)


def owner_id() -> str:
    """This process's lease-holder name: unique per process start, readable in the store."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def http_client(settings: Settings) -> httpx2.AsyncClient:
    """The one HTTP client every provider call and download of this process shares; its provider status
    reads go over aiohttp (providers/api_reads.py)."""
    prepared = tls.context()  # loaded in a thread during start-up, where `serve` warmed it up
    headers = {"user-agent": f"aleph-mcp/{__version__}"}
    return ReadingClient(
        reads=ApiReads(headers=headers, ssl_context=prepared),
        timeout=settings.request_timeout,
        headers=headers,
        verify=prepared if prepared is not None else True,
    )


def fetch_policy(settings: Settings, resolver: Resolver | None = None) -> FetchPolicy:
    """What may be fetched on a user's behalf: https to public addresses, and the configured origins."""
    return FetchPolicy.trusting(
        settings.provider_origins(),
        resolver=resolver or system_resolver,
        allow_private=settings.allow_private_urls,
    )


def poll_policy(settings: Settings) -> PollPolicy:
    return PollPolicy(
        interval=settings.poll_interval,
        max_interval=max(settings.poll_max_interval, settings.poll_interval),
        edit_timeout=settings.edit_timeout,
        concurrency=settings.poll_concurrency,
        lease_seconds=settings.request_timeout * 4,  # a stalled request ends well before the lease does
    )


def paces(settings: Settings) -> Paces:
    """Each hosted provider's request pace; the offline provider sends nothing and is not paced."""
    return Paces({name: settings.requests_per_second(name) for name in HOSTED_PROVIDERS})


def open_archive(settings: Settings, environ: Mapping[str, str] | None = None) -> Archive:
    """The archive `ALEPH_MCP_ARCHIVE_URL` names: unset, the local folder `<data_dir>/archive`;
    `s3://bucket/prefix`, the object store (endpoint, region and credentials from the usual AWS variables
    in `environ`, the process's own by default)."""
    if not settings.archive_url:
        return LocalArchive(settings.archive_dir)
    from aleph_mcp.media.objectstore import S3Archive  # obstore is an optional extra: loaded when chosen

    return S3Archive.from_url(settings.archive_url, os.environ if environ is None else environ)


def build_app(
    settings: Settings,
    store: EditStore,
    client: httpx2.AsyncClient,
    providers: Mapping[str, Provider] | None = None,
    on_change: OnChange | None = None,
    resolver: Resolver | None = None,
) -> AppState:
    """Wire the parts. `on_change` hears every visible change of an edit made in this process (another
    process's reach the change feed through `edits.changes.watch_store`); `resolver` replaces the system's
    DNS look-ups of fetched hosts (tests)."""
    owner = owner_id()
    changes = ChangeFeed()
    fetch = fetch_policy(settings, resolver)
    archive = open_archive(settings)
    the_providers = providers if providers is not None else build_providers(settings, client)
    policy = poll_policy(settings)
    limits = capacity_limits(settings)

    async def changed(edit: Edit) -> None:
        if changes.publish(edit) and on_change is not None:
            await on_change(edit)

    poller = Poller(
        store,
        the_providers,
        archive,
        client,
        owner=owner,
        policy=policy,
        on_change=changed,
        limits=limits,
        fetch=fetch,
        journal=TaskJournal(settings.data_dir / "task-journal.jsonl"),
        callback_base=settings.public_url,
        paces=paces(settings),
    )

    async def submitted(edit: Edit) -> None:
        poller.wake()
        await changed(edit)

    service = EditService(
        store,
        the_providers,
        settings,
        owner=owner,
        lease_seconds=policy.lease_seconds,
        poll_interval=settings.poll_interval,
        on_submitted=submitted,
        on_change=changed,
        http=client if settings.probe_urls else None,
        changes=changes,
        policy=policy,
        fetch=fetch.strict(),
        archive=archive,
    )
    return AppState(
        settings=settings, store=store, service=service, poller=poller, archive=archive, changes=changes
    )
