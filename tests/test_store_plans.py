"""The SQLite store's `list_edits` pages stay index look-ups as the file grows: filtered pages and cursors."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from aleph_mcp.store import SQLiteEditStore
from aleph_mcp.store.sqlite import page_sql


def plan(path: Path, sql: str, params: list[object]) -> str:
    with closing(sqlite3.connect(path)) as db:  # a connection's own `with` only commits
        return " ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params))


@pytest.mark.parametrize(
    ("clauses", "params", "index"),
    [
        (["status = ?"], ["running"], "edits_status_newest (status=?)"),
        (["provider = ?"], ["kie"], "edits_provider_newest (provider=?)"),
        (["parent_edit_id = ?"], ["ed_1"], "edits_parent_newest (parent_edit_id=?)"),
        (
            ["owner = ?", "parent_edit_id = ?"],
            ["local", "ed_1"],
            "edits_parent_newest (parent_edit_id=?)",
        ),
        (
            ["status = ?", "(created_at, edit_id) < (?, ?)"],
            ["running", 5.0, "ed_1"],
            "edits_status_newest (status=? AND (created_at,edit_id)<(?,?))",
        ),
        (["(created_at, edit_id) < (?, ?)"], [5.0, "ed_1"], "edits_newest ((created_at,edit_id)<(?,?))"),
        # The tools scope every page to its caller: the status filter's index still serves it.
        (["owner = ?", "status = ?"], ["local", "running"], "edits_status_newest (status=?)"),
        (["owner = ?", "provider = ?"], ["local", "kie"], "edits_provider_newest (provider=?)"),
    ],
)
async def test_a_filtered_page_is_an_index_search_in_newest_first_order(
    tmp_path: Path, clauses: list[str], params: list[object], index: str
) -> None:
    """No table scan and no sort: the filter's index yields the page in order, from the cursor on."""
    path = tmp_path / "edits.sqlite3"
    store = SQLiteEditStore(path)
    await store.close()
    found = plan(path, page_sql(clauses), [*params, 21])
    assert found == f"SEARCH edits USING INDEX {index}"
