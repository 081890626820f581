"""The one way the server and every CLI command open the store: PostgreSQL when ALEPH_MCP_STORE_URL is set
(its module, and so psycopg, is imported only then), else SQLite in the data dir."""

from __future__ import annotations

from aleph_mcp.config import Settings
from aleph_mcp.errors import NotConfigured
from aleph_mcp.redact import url_without_password
from aleph_mcp.store.base import EditStore
from aleph_mcp.store.sqlite import SQLiteEditStore

SCHEMES = ("postgresql", "postgres")


async def open_store(settings: Settings) -> EditStore:
    if settings.store_url is None:
        return SQLiteEditStore(settings.store_path)
    url = settings.store_url.get_secret_value()
    if url.partition("://")[0].lower() not in SCHEMES:
        raise NotConfigured(
            f"ALEPH_MCP_STORE_URL must be a postgresql:// URL, not {url_without_password(url)!r} "
            "(unset, the edits stay in SQLite in the data dir)."
        )
    try:
        from aleph_mcp.store.postgres import PostgresEditStore
    except ImportError as exc:  # psycopg is an extra: a desktop install has none
        raise NotConfigured(
            f"ALEPH_MCP_STORE_URL needs the PostgreSQL driver ({exc.name} is missing): "
            "pip install 'aleph-mcp[postgres]'."
        ) from None
    return await PostgresEditStore.open(url, timeout=settings.request_timeout)


def store_location(settings: Settings) -> str:
    """Where the edits are, fit to show (a database URL without its password)."""
    if settings.store_url is None:
        return str(settings.store_path)
    return url_without_password(settings.store_url.get_secret_value())
