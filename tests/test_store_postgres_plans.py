"""The PostgreSQL store's hot queries are index look-ups, not table scans, on a table of 20,000 edits: the
`list_edits` pages (by owner, newest first, with filters and cursors), the due-for-poll query, the
budget window, the capacity count and the change feed's catch-up read."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from aleph_mcp.store.pg_spend import spend_query
from aleph_mcp.store.postgres import (
    CREATED_SINCE,
    DUE_SQL,
    LEASE_DUE_SQL,
    SELECT,
    PostgresEditStore,
    page_sql,
)

ROWS = 20_000
FILL = f"""
INSERT INTO edits (edit_id, provider, model, prompt, video, status, created_at, updated_at, owner,
                   next_poll_at, provider_task_id, fingerprint, webhook_token_hash)
SELECT 'ed_' || lpad(n::text, 6, '0'),
       CASE WHEN n % 50 = 0 THEN 'kie' ELSE 'runway' END, 'm', 'p', 'v',
       CASE WHEN n % 100 = 0 THEN 'running' WHEN n % 7 = 0 THEN 'failed' ELSE 'succeeded' END,
       1e9 + n * 400, 1e9 + n * 400, 'user' || (n % 20),
       CASE WHEN n % 100 = 0 THEN 1e9 + n * 400 END,
       't' || n, md5(n::text), CASE WHEN n % 3 = 0 THEN md5('w' || n) END
FROM generate_series(1, {ROWS}) AS n;
ANALYZE edits;
"""
NOW = 1e9 + ROWS * 400
CURSOR = [1e9 + ROWS * 200, "ed_010000"]


@pytest.fixture(scope="module")
def filled(postgres_databases: Any) -> str:
    """One database for the module: the plans only read it."""
    import anyio

    url: str = postgres_databases.fresh()

    async def migrate() -> None:
        await (await PostgresEditStore.open(url)).close()

    anyio.run(migrate)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FILL.encode())
    return url


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in nodes(child))]


def explain(url: str, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}".encode(), params).fetchone()
    assert row is not None
    plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
    return nodes(plan[0]["Plan"])


PAGES = [
    ([], [], "edits_newest"),
    (["owner = %s"], ["user3"], "edits_owner_newest"),
    (["owner = %s", "status = %s"], ["user3", "succeeded"], "edits_owner_status_newest"),
    (["owner = %s", "provider = %s"], ["user3", "runway"], "edits_owner_provider_newest|edits_owner_newest"),
    (["status = %s"], ["running"], "edits_status_newest"),
    (["provider = %s"], ["kie"], "edits_provider_newest"),
    (["owner = %s", "(created_at, edit_id) < (%s, %s)"], ["user3", *CURSOR], "edits_owner_newest"),
    (["status = %s", "(created_at, edit_id) < (%s, %s)"], ["running", *CURSOR], "edits_status_newest"),
    (["parent_edit_id = %s"], ["ed_000100"], "edits_parent_newest"),
]


@pytest.mark.parametrize(("clauses", "params", "index"), PAGES)
def test_a_list_page_reads_its_index_in_order(
    filled: str, clauses: list[str], params: list[Any], index: str
) -> None:
    """No sequential scan and no sort: the filter's index yields the page newest first, from the cursor on."""
    plan = explain(filled, page_sql(clauses), [*params, 21])
    kinds = [n["Node Type"] for n in plan]
    assert "Seq Scan" not in kinds and "Sort" not in kinds, kinds
    assert set(index.split("|")) & {n.get("Index Name") for n in plan}, plan


@pytest.mark.parametrize(
    ("sql", "params", "index"),
    [
        (DUE_SQL, [NOW, NOW, 32], "edits_due"),
        (CREATED_SINCE, [NOW - 24 * 3600], "edits_newest"),  # the budget's 24 hours
        (spend_query(NOW - 24 * 3600, None)[0], [NOW - 24 * 3600], "edits_newest"),  # its sums
        (spend_query(NOW - 24 * 3600, "user3")[0], [NOW - 24 * 3600, "user3"], "edits_owner_newest"),
        (LEASE_DUE_SQL, ["p", NOW + 60, NOW, NOW, 32], "edits_due"),  # the poller's batched draw
        (
            f"{SELECT} WHERE (updated_at, edit_id) > (%s, %s) ORDER BY updated_at, edit_id LIMIT 200",
            [NOW - 600, ""],
            "edits_updated",
        ),
        (
            "SELECT COUNT(*) FROM edits WHERE provider = %s AND edit_id != %s "
            "AND status NOT IN ('cancelled', 'failed', 'succeeded') "
            "AND (provider_task_id IS NOT NULL OR create_sent_at IS NOT NULL)",
            ["kie", "ed_1"],
            "edits_sending",
        ),
        (f"{SELECT} WHERE webhook_token_hash = %s", ["abc"], "edits_webhook"),
        (f"{SELECT} WHERE fingerprint = %s AND created_at >= %s", ["abc", NOW - 600], "edits_fingerprint"),
    ],
)
def test_the_poll_budget_capacity_and_change_queries_use_their_index(
    filled: str, sql: str, params: list[Any], index: str
) -> None:
    plan = explain(filled, sql, params)
    assert "Seq Scan" not in [n["Node Type"] for n in plan]
    assert index in {n.get("Index Name") for n in plan}
