"""The budget's window sums on PostgreSQL: one aggregate over the edits of the window (an
index range of `edits_newest`).

SQLite keeps a trigger-maintained ledger (store/ledger.py) because it sums in the writer's lock; here the
same `SpendGroup`s come from one GROUP BY over an index range, in the database, under the budget lock of
`add_unless_duplicate`. The expressions are the ledger's (`billing_sql`, `kind_sql`), so both stores
group, cost and round alike; nanodollars use `floor(x * 1e9 + 0.5)` because PostgreSQL's cast rounds.
"""

from __future__ import annotations

from typing import Any

from aleph_mcp.models import SpendGroup
from aleph_mcp.store.ledger import billing_sql, kind_sql

_COST = "COALESCE(edits.provider_cost_usd, edits.estimated_cost_usd)"
_KIND = kind_sql("edits")
SPEND_SQL = (
    f"SELECT provider, model, {billing_sql('edits')} AS billing, {_KIND} AS kind, COUNT(*), "
    f"COALESCE(SUM(CASE WHEN {_KIND} = 'summed' THEN floor({_COST} * 1e9 + 0.5)::bigint END), 0), "
    f"COUNT(*) FILTER (WHERE {_KIND} = 'summed' AND {_COST} = 0) "
    "FROM edits WHERE created_at >= %s {owner} GROUP BY 1, 2, 3, 4"
)


def spend_query(since: float, owner: str | None) -> tuple[str, list[Any]]:
    if owner is None:
        return SPEND_SQL.format(owner=""), [since]
    return SPEND_SQL.format(owner="AND owner = %s"), [since, owner]


def groups(rows: list[tuple[Any, ...]]) -> list[SpendGroup]:
    return [SpendGroup(p, m, b, k, int(n), int(nano), int(free)) for p, m, b, k, n, nano, free in rows]
