"""The spend ledger of the SQLite store: what a budget check sums, without reading every edit of its window.

Semantics (mirror these exactly in another store, e.g. PostgreSQL with plpgsql triggers):

- `spend_window` holds one row, `start`: the ledger sums the edits with `created_at >= start`. It begins
  at FAR_FUTURE (nothing summed), so a store that never had a budget does no ledger work.
- `spend_totals` holds one row per (owner, provider, model, billing, kind) of those edits: `edits` (how many),
  `nano` (their stored costs in whole nanodollars, "summed" kind only; else 0) and `free` (how many of the
  "summed" ones cost exactly 0). `billing` is `billing_sql` (= `models.billing_class`); the stored cost is
  `COALESCE(provider_cost_usd, estimated_cost_usd)` (= `models.stored_cost`); `kind` is "requote" when
  it is NULL, "summed" when it is within 0..MAX_SUMMED_USD, else "outlier" (= `models.cost_kind`); nano is
  `CAST(cost * 1e9 + 0.5 AS INTEGER)` (= `models.nanodollars`; in plpgsql `floor(cost * 1e9 + 0.5)::bigint`).
  Integer sums have no drift however long the ledger runs.
- Triggers keep it inside the transaction of every write to `edits` (any process, any code path): an
  insert adds the new row's share, an update takes the old row's share away and adds the new one's (only
  when one of its inputs changed), a delete takes the share away; a share counts only if its row's
  `created_at >= start`. Adding is an upsert on the key (`INSERT ... ON CONFLICT DO UPDATE SET edits =
  edits + excluded.edits, ...`); rows that reach 0 edits stay and are skipped on reading.
- A budget check for the window `since` (inside the write transaction of the insert it guards: one atomic
  step) first moves `start` to `since` (`move_window`): it subtracts the edits with `start <= created_at <
  since` (or adds back those with `since <= created_at < start` when `since` is earlier), read through the
  `created_at` index. A steady stream of submits reads about one edit per submit, at any day size.
- A read-only look (`read_sums`) changes nothing: it sums the ledger with the same gap added or subtracted.

The budget (pricing/budget.py `Budget.admits`) decides from these sums only when the answer is sure;
otherwise the store hands it every edit of the window as before, so every answer is the full count's.
"""

from __future__ import annotations

import sqlite3

from aleph_mcp.models import MAX_SUMMED_USD, NOT_A_RENDER_FAILURE, BillingClass, CostKind, SpendGroup

KEY = ("owner", "provider", "model", "billing", "kind")
FAR_FUTURE = 9e15
_OURS = ", ".join(f"'{code}'" for code in sorted(NOT_A_RENDER_FAILURE))


def billing_sql(row: str) -> str:
    """`models.billing_class` of a row (`row`: NEW, OLD or the table)."""
    return (
        f"CASE WHEN {row}.status IN ('succeeded', 'failed', 'cancelled') AND {row}.provider_task_id IS NULL "
        f"AND COALESCE({row}.error_code, '') != 'submit_outcome_unknown' THEN 'refused' "
        f"WHEN {row}.status = 'failed' AND {row}.error_code IN ({_OURS}) THEN 'billed' "
        f"WHEN {row}.status = 'failed' THEN 'failed' "
        f"WHEN {row}.status = 'cancelled' THEN 'cancelled' ELSE 'billed' END"
    )


def _cost(row: str) -> str:
    return f"COALESCE({row}.provider_cost_usd, {row}.estimated_cost_usd)"


def kind_sql(row: str) -> str:
    cost = _cost(row)
    return (
        f"CASE WHEN {cost} IS NULL THEN 'requote' "
        f"WHEN {cost} >= 0 AND {cost} <= {MAX_SUMMED_USD!r} THEN 'summed' ELSE 'outlier' END"
    )


def _nano(row: str) -> str:
    return f"CASE WHEN {kind_sql(row)} = 'summed' THEN CAST({_cost(row)} * 1e9 + 0.5 AS INTEGER) ELSE 0 END"


def _free(row: str) -> str:
    return f"CASE WHEN {kind_sql(row)} = 'summed' AND {_cost(row)} = 0 THEN 1 ELSE 0 END"


def _share(row: str) -> str:
    """A row's ledger key, as columns c0..c4 (owner, provider, model, billing, kind)."""
    key = [f"{row}.owner", f"{row}.provider", f"{row}.model", billing_sql(row), kind_sql(row)]
    return ", ".join(f"{sql} AS c{i}" for i, sql in enumerate(key))


_COLUMNS = f"{', '.join(KEY)}, edits, nano, free"
_MERGE = (
    f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET edits = edits + excluded.edits, "
    "nano = nano + excluded.nano, free = free + excluded.free"
)


def _add(row: str, sign: int) -> str:
    """Add (sign 1) or take away (-1) one row's share, if it is inside the summed window."""
    return (
        f"INSERT INTO spend_totals ({_COLUMNS}) "
        f"SELECT {_share(row)}, {sign}, {sign} * ({_nano(row)}), {sign} * ({_free(row)}) "
        f"WHERE {row}.created_at >= (SELECT start FROM spend_window) {_MERGE};"
    )


# The columns a share is made of. Updates that set none of them (leases) do not fire the update trigger;
# saves that leave their values alone (progress, polls) fire it but do nothing.
_INPUTS = (
    "owner, provider, model, created_at, status, provider_task_id, error_code, provider_cost_usd, "
    "estimated_cost_usd"
)
_CHANGED = " OR ".join(
    [f"OLD.{c} IS NOT NEW.{c}" for c in ("owner", "provider", "model", "created_at")]
    + [f"({_cost('OLD')}) IS NOT ({_cost('NEW')})", f"({billing_sql('OLD')}) IS NOT ({billing_sql('NEW')})"]
)
MIGRATION = f"""
    CREATE TABLE spend_window (id INTEGER PRIMARY KEY CHECK (id = 0), start REAL NOT NULL);
    INSERT INTO spend_window (id, start) VALUES (0, {FAR_FUTURE!r});
    CREATE TABLE spend_totals (
        owner TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, billing TEXT NOT NULL,
        kind TEXT NOT NULL, edits INTEGER NOT NULL, nano INTEGER NOT NULL, free INTEGER NOT NULL,
        PRIMARY KEY ({", ".join(KEY)})
    ) WITHOUT ROWID;
    CREATE TRIGGER spend_insert AFTER INSERT ON edits BEGIN {_add("NEW", 1)} END;
    CREATE TRIGGER spend_update AFTER UPDATE OF {_INPUTS} ON edits WHEN {_CHANGED}
    BEGIN {_add("OLD", -1)} {_add("NEW", 1)} END;
    CREATE TRIGGER spend_delete AFTER DELETE ON edits BEGIN {_add("OLD", -1)} END;
"""


def _gap_sql(one_owner: bool) -> str:
    """The edits created in [:low, :high) (of :owner only, if `one_owner`), summed as the ledger sums them."""
    mine = " AND owner = :owner" if one_owner else ""
    return (
        f"SELECT {_share('edits')}, COUNT(*) AS n, SUM({_nano('edits')}) AS nano, "
        f"SUM({_free('edits')}) AS free FROM edits WHERE created_at >= :low AND created_at < :high{mine} "
        "GROUP BY 1, 2, 3, 4, 5"
    )


_MOVE = (
    f"INSERT INTO spend_totals ({_COLUMNS}) SELECT {', '.join(f'c{i}' for i in range(5))}, "
    f":sign * n, :sign * nano, :sign * free FROM ({_gap_sql(False)}) WHERE true {_MERGE}"
)


_ANY_BETWEEN = "SELECT EXISTS (SELECT 1 FROM edits WHERE created_at >= ? AND created_at < ?)"


def _gap(db: sqlite3.Connection, since: float) -> tuple[dict[str, float], bool]:
    """The edits created in [low, high) are to be added (sign 1) or taken away (-1) to turn the ledger's
    sums into the sums since `since`; and whether there are any."""
    (start,) = db.execute("SELECT start FROM spend_window").fetchone()
    sign, low, high = (-1, start, since) if since > start else (1, since, start)
    any_edit = low != high and db.execute(_ANY_BETWEEN, (low, high)).fetchone()[0]
    return {"sign": sign, "low": low, "high": high}, bool(any_edit)


def move_window(db: sqlite3.Connection, since: float) -> None:
    """Sum from `since` on (inside a write transaction): take out, or add back, the edits in between.
    With none in between, the sums from `start` are the sums from `since`: `start` stays (a later move's
    gap covers this one's too, and an edit inserted into it meanwhile was added by the trigger)."""
    gap, any_edit = _gap(db, since)
    if any_edit:
        db.execute(_MOVE, gap)
        db.execute("UPDATE spend_window SET start = ?", (since,))


def _sums_sql(one_owner: bool) -> str:
    mine = " WHERE owner = :owner" if one_owner else ""
    return (
        "SELECT provider, model, billing, kind, SUM(n), SUM(nano), SUM(free) FROM ("
        f"SELECT provider, model, billing, kind, edits AS n, nano, free FROM spend_totals{mine} UNION ALL "
        "SELECT c1, c2, c3, c4, :sign * n, :sign * nano, :sign * free "
        f"FROM ({_gap_sql(one_owner)})) GROUP BY 1, 2, 3, 4 HAVING SUM(n) != 0"
    )


_SUMS = {one_owner: _sums_sql(one_owner) for one_owner in (False, True)}
# Right after a move, the ledger's rows are the sums: read as they are (one per owner; merging is the
# reader's, `Budget.tally` sums groups of one key alike), which is cheaper than grouping them in SQL.
_TOTALS = {
    one_owner: "SELECT provider, model, billing, kind, edits, nano, free FROM spend_totals WHERE edits != 0"
    + (" AND owner = :owner" if one_owner else "")
    for one_owner in (False, True)
}


def read_sums(db: sqlite3.Connection, since: float, owner: str | None = None) -> list[SpendGroup]:
    """The sums of the edits created at or after `since` (one owner's, or everyone's); groups of no edits
    left out, and groups of one key may come more than once. Changes nothing: run it in one transaction."""
    gap, any_edit = _gap(db, since)
    if not any_edit:
        return totals(db, owner)
    return _groups(db.execute(_SUMS[owner is not None], gap | {"owner": owner}).fetchall())


def totals(db: sqlite3.Connection, owner: str | None = None) -> list[SpendGroup]:
    """`read_sums` right after `move_window` (nothing in between: the ledger's rows are the sums)."""
    return _groups(db.execute(_TOTALS[owner is not None], {"owner": owner}).fetchall())


def _groups(rows: list[tuple[str, str, BillingClass, CostKind, int, int, int]]) -> list[SpendGroup]:
    return [SpendGroup(p, m, b, k, int(e), int(n), int(f)) for p, m, b, k, e, n, f in rows]
