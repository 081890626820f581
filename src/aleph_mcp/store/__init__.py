"""Where edits live: the EditStore contract (base), SQLite (the embedded default) and in-memory stores."""

from aleph_mcp.store.base import EditStore, Gate
from aleph_mcp.store.memory import InMemoryEditStore
from aleph_mcp.store.sqlite import MIGRATIONS, SQLiteEditStore

__all__ = ["MIGRATIONS", "EditStore", "Gate", "InMemoryEditStore", "SQLiteEditStore"]
