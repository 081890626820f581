"""The PostgreSQL store's schema: columns derived from the Edit dataclass, and its versioned migrations.

A column's SQL type, nullability and default come from its Edit field (`column_sql`), so a new Edit field
needs one line at the end of MIGRATIONS: `add_columns("parent_edit_id")`. Migration 1 names its columns
explicitly: it must keep creating the same table however Edit grows. `tests/test_store_postgres.py` checks
that every Edit field has its column after migrating.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, Field, fields

from aleph_mcp.models import TERMINAL_STATUSES, Edit

_FIELDS: dict[str, Field[object]] = {f.name: f for f in fields(Edit)}
# `from __future__ import annotations` makes each field's type its source text.
_TYPES = {
    "str": "TEXT",
    "EditStatus": "TEXT",
    "float": "DOUBLE PRECISION",
    "int": "BIGINT",
    "bool": "BOOLEAN",
    "dict[str, Any]": "JSONB",
    "list[str]": "JSONB",
}
JSON_COLUMNS = frozenset(name for name, f in _FIELDS.items() if str(f.type).startswith(("dict", "list")))
# Terminal statuses as literals, not parameters: partial indexes match a query only on the same literal text.
TERMINAL_LITERALS = ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATUSES))
NOT_TERMINAL = f"status NOT IN ({TERMINAL_LITERALS})"


def column_sql(name: str) -> str:
    """`name TYPE [NOT NULL] [DEFAULT …]` for an Edit field."""
    spec = _FIELDS[name]
    text = str(spec.type)
    optional = text.endswith(" | None")
    base = _TYPES[text.removesuffix(" | None")]
    collate = ' COLLATE "C"' if base == "TEXT" else ""  # ids order bytewise, as SQLite and Python do
    parts = [f"{name} {base}{collate}", "" if optional else "NOT NULL"]
    default = _default(spec)
    if default is not None:
        parts.append(f"DEFAULT {default}")
    return " ".join(p for p in parts if p)


def _default(spec: Field[object]) -> str | None:
    if spec.default_factory is not MISSING:
        value = spec.default_factory()
        if not isinstance(value, dict | list):
            return None  # time.time: every insert gives its own
        return f"'{json.dumps(value)}'::jsonb"
    value = spec.default
    if value is MISSING or value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def add_columns(*names: str) -> str:
    """A migration adding Edit fields, each typed as its field says."""
    return "\n".join(f"ALTER TABLE edits ADD COLUMN {column_sql(name)};" for name in names)


# The columns of migration 1: Edit's fields as they were when it was written. Never change this list.
FIRST_COLUMNS = [
    "edit_id",
    "provider",
    "model",
    "prompt",
    "video",
    "options",
    "status",
    "provider_task_id",
    "progress",
    "output_url",
    "thumbnail_url",
    "local_path",
    "thumbnail_path",
    "error_code",
    "error_message",
    "notes",
    "warnings",
    "idempotency_key",
    "created_at",
    "updated_at",
    "finished_at",
    "next_poll_at",
    "poll_failures",
    "polls",
    "estimated_cost_usd",
    "cost_basis",
    "provider_cost_credits",
    "provider_cost_usd",
    "provider_cost_final",
    "create_sent_at",
    "submit_after",
    "pending_request",
    "webhook_token_hash",
    "owner",
]


def _first() -> str:
    columns = ",\n    ".join(column_sql(name) for name in FIRST_COLUMNS)
    newest = "created_at DESC, edit_id DESC"
    return f"""
CREATE TABLE edits (
    {columns},
    fingerprint TEXT,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION,
    PRIMARY KEY (edit_id),
    UNIQUE (idempotency_key)
);
CREATE INDEX edits_newest ON edits ({newest});
CREATE INDEX edits_owner_newest ON edits (owner, {newest});
CREATE INDEX edits_owner_status_newest ON edits (owner, status, {newest});
CREATE INDEX edits_owner_provider_newest ON edits (owner, provider, {newest});
CREATE INDEX edits_status_newest ON edits (status, {newest});
CREATE INDEX edits_provider_newest ON edits (provider, {newest});
CREATE INDEX edits_due ON edits (next_poll_at, edit_id) WHERE next_poll_at IS NOT NULL AND {NOT_TERMINAL};
CREATE INDEX edits_updated ON edits (updated_at, edit_id);
CREATE INDEX edits_fingerprint ON edits (fingerprint, created_at) WHERE fingerprint IS NOT NULL;
CREATE INDEX edits_sending ON edits (provider)
    WHERE (provider_task_id IS NOT NULL OR create_sent_at IS NOT NULL) AND {NOT_TERMINAL};
CREATE INDEX edits_unsubmitted ON edits (created_at) WHERE provider_task_id IS NULL AND {NOT_TERMINAL};
CREATE UNIQUE INDEX edits_webhook ON edits (webhook_token_hash) WHERE webhook_token_hash IS NOT NULL;
CREATE TABLE declines (fingerprint TEXT PRIMARY KEY, declined_at DOUBLE PRECISION NOT NULL);
"""


# Append only; each entry runs once, in order, in the transaction that records its number.
MIGRATIONS: list[str] = [
    _first(),
    # 2: chains (the edit whose output is the input, `list_edits(parent=...)` by an index) and trims
    add_columns("parent_edit_id", "trim_start", "trim_end")
    + "\nCREATE INDEX edits_parent_newest ON edits (parent_edit_id, created_at DESC, edit_id DESC)"
    " WHERE parent_edit_id IS NOT NULL;",
    # 3: the windows of a whole-clip job (edits/long_clips.py)
    add_columns("part_of", "window_index", "window_start", "window_end")
    + "\nCREATE INDEX edits_part_of ON edits (part_of, window_index) WHERE part_of IS NOT NULL;",
]
