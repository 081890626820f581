"""Where edits live: the EditStore contract (base), SQLite (the embedded default) and in-memory stores;
PostgreSQL (postgres.py, for replicas) is imported only by `factory.open_store`, so psycopg stays optional."""

from aleph_mcp.store.base import EditStore, Gate
from aleph_mcp.store.memory import InMemoryEditStore
from aleph_mcp.store.sqlite import MIGRATIONS, SQLiteEditStore

__all__ = ["MIGRATIONS", "EditStore", "Gate", "InMemoryEditStore", "SQLiteEditStore"]
