"""SQLiteEditStore: the embedded default (WAL), safe for several server processes on one data dir.

Every process sees every edit, because all state is in the file; the lease column keeps two processes from
working on one edit at once (see `base.EditStore`).
"""

from __future__ import annotations

import functools
import json
import operator
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from aleph_mcp.errors import IdempotencyConflict, InvalidInput
from aleph_mcp.models import Edit, SpendGroup
from aleph_mcp.store import ledger
from aleph_mcp.store.base import (
    COLUMNS,
    CREATED_SINCE_SQL,
    FINDS_REPEATS_SQL,
    NOT_TERMINAL_SQL,
    SENDING_SQL,
    TERMINAL,
    Claim,
    Gate,
    StoreTooNew,
    check_limit,
    encode_cursor,
    page_where,
    summed,
)

T = TypeVar("T")


MIGRATIONS: list[str] = [
    """
    CREATE TABLE edits (
        edit_id TEXT PRIMARY KEY,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt TEXT NOT NULL,
        video TEXT NOT NULL,
        options TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL,
        provider_task_id TEXT,
        progress REAL,
        output_url TEXT,
        thumbnail_url TEXT,
        local_path TEXT,
        thumbnail_path TEXT,
        error_code TEXT,
        error_message TEXT,
        notes TEXT,
        idempotency_key TEXT UNIQUE,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        finished_at REAL,
        next_poll_at REAL,
        poll_failures INTEGER NOT NULL DEFAULT 0,
        polls INTEGER NOT NULL DEFAULT 0,
        lease_owner TEXT,
        lease_until REAL
    );
    CREATE INDEX edits_newest ON edits (created_at DESC, edit_id DESC);
    CREATE INDEX edits_due ON edits (next_poll_at) WHERE next_poll_at IS NOT NULL;
    CREATE INDEX edits_updated ON edits (updated_at);
    """,
    # 2: pre-flight warnings (a clip longer than the provider processes, an input that could not be checked)
    """
    ALTER TABLE edits ADD COLUMN warnings TEXT NOT NULL DEFAULT '[]';
    """,
    # 3: request fingerprints, so an identical request within minutes finds the edit it repeats
    """
    ALTER TABLE edits ADD COLUMN fingerprint TEXT;
    CREATE INDEX edits_fingerprint ON edits (fingerprint, created_at) WHERE fingerprint IS NOT NULL;
    """,
    # 4: what each edit was quoted at, so a budget can sum the spend of the last 24 hours from the file
    """
    ALTER TABLE edits ADD COLUMN estimated_cost_usd REAL;
    ALTER TABLE edits ADD COLUMN cost_basis TEXT;
    """,
    # 5: the provider's own cost figure; and sending recorded before it happens, so a crash mid-create is
    # told apart from an edit that waits for capacity and was never sent (see edits/capacity.py)
    """
    ALTER TABLE edits ADD COLUMN provider_cost_credits REAL;
    ALTER TABLE edits ADD COLUMN provider_cost_usd REAL;
    ALTER TABLE edits ADD COLUMN provider_cost_final INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE edits ADD COLUMN create_sent_at REAL;
    ALTER TABLE edits ADD COLUMN submit_after REAL;
    ALTER TABLE edits ADD COLUMN pending_request TEXT;
    CREATE INDEX edits_sending ON edits (provider)
        WHERE provider_task_id IS NOT NULL OR create_sent_at IS NOT NULL;
    """,
    # 6: who made each edit (a signed-in HTTP caller, or `local`), so every read is scoped to its owner
    """
    ALTER TABLE edits ADD COLUMN owner TEXT NOT NULL DEFAULT 'local';
    CREATE INDEX edits_owner_newest ON edits (owner, created_at DESC, edit_id DESC);
    """,
    # 7: a person's "no" to a request, which holds for every repeat of it within the duplicate window; and
    # edits of older releases waiting for a task id may have been sent: they keep "outcome unknown"
    """
    CREATE TABLE declines (fingerprint TEXT PRIMARY KEY, declined_at REAL NOT NULL);
    UPDATE edits SET create_sent_at = created_at
        WHERE provider_task_id IS NULL AND create_sent_at IS NULL AND submit_after IS NULL
        AND status NOT IN ('succeeded', 'failed', 'cancelled');
    """,
    # 8: the hash of each edit's webhook secret, so a provider's callback finds its edit (and nothing else)
    """
    ALTER TABLE edits ADD COLUMN webhook_token_hash TEXT;
    CREATE UNIQUE INDEX edits_webhook ON edits (webhook_token_hash) WHERE webhook_token_hash IS NOT NULL;
    """,
    # 9: status and provider filters of `list_edits` served newest first by an index
    """
    CREATE INDEX edits_status_newest ON edits (status, created_at DESC, edit_id DESC);
    CREATE INDEX edits_provider_newest ON edits (provider, created_at DESC, edit_id DESC);
    """,
    # 10: chains (the edit whose output is the input, `list_edits(parent=...)` by an index) and trims
    """
    ALTER TABLE edits ADD COLUMN parent_edit_id TEXT;
    ALTER TABLE edits ADD COLUMN trim_start REAL;
    ALTER TABLE edits ADD COLUMN trim_end REAL;
    CREATE INDEX edits_parent_newest ON edits (parent_edit_id, created_at DESC, edit_id DESC)
        WHERE parent_edit_id IS NOT NULL;
    """,
    # 11: the windows of a whole-clip job (edits/long_clips.py): each window's edit names its job and span
    """
    ALTER TABLE edits ADD COLUMN part_of TEXT;
    ALTER TABLE edits ADD COLUMN window_index INTEGER;
    ALTER TABLE edits ADD COLUMN window_start REAL;
    ALTER TABLE edits ADD COLUMN window_end REAL;
    CREATE INDEX edits_part_of ON edits (part_of, window_index) WHERE part_of IS NOT NULL;
    """,
    # 12: the budget's spend ledger, kept by triggers, so a budget check sums a few rows (store/ledger.py)
    ledger.MIGRATION,
]


def statements(script: str) -> list[str]:
    """A script's statements, a trigger's body kept whole (executescript would end our transaction)."""
    found, buffer = [], ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                found.append(buffer)
            buffer = ""
    return found


_OPTIONS, _WARNINGS, _PENDING, _FINAL = (
    COLUMNS.index(name) for name in ("options", "warnings", "pending_request", "provider_cost_final")
)


@functools.lru_cache(maxsize=16)
def _edit_reader(names: tuple[str, ...]) -> Callable[[tuple[Any, ...]], Edit]:
    """Rows of a query whose columns are `names` (`SELECT *`: the table's order) as Edits. Positional,
    in the order of Edit's fields: a page of 20 edits is read several times faster than by column name."""
    pick = operator.itemgetter(*(names.index(name) for name in COLUMNS))

    def read(row: tuple[Any, ...]) -> Edit:
        values = list(pick(row))
        options, warnings, pending = values[_OPTIONS], values[_WARNINGS], values[_PENDING]
        values[_OPTIONS] = json.loads(options) if options and options != "{}" else {}
        values[_WARNINGS] = json.loads(warnings) if warnings and warnings != "[]" else []
        values[_PENDING] = json.loads(pending) if pending else None
        values[_FINAL] = bool(values[_FINAL])
        return Edit(*values)

    return read


def edits_of(cursor: sqlite3.Cursor) -> list[Edit]:
    read = _edit_reader(tuple(column[0] for column in cursor.description))
    return [read(row) for row in cursor.fetchall()]


def _edit_to_params(edit: Edit) -> dict[str, Any]:
    params = {name: getattr(edit, name) for name in COLUMNS}
    params["options"] = json.dumps(edit.options, sort_keys=True)
    params["warnings"] = json.dumps(edit.warnings)
    params["pending_request"] = json.dumps(edit.pending_request) if edit.pending_request else None
    return params


def page_sql(clauses: list[str]) -> str:
    """A `list_edits` page: newest first, served by the index of its filter (migrations 1, 6, 9 and 10)."""
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"SELECT * FROM edits {where} ORDER BY created_at DESC, edit_id DESC LIMIT ?"


class SQLiteEditStore:
    """The embedded default. Calls run in a worker thread so a busy file never stalls the event loop."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        try:
            self._migrate()
        except BaseException:  # refused (a newer store) or broken: nothing may keep the file open
            self._db.close()
            raise
        # For the reads served on the event loop (`_read_now`): a WAL reader never waits for a writer, and
        # with no busy timeout anything else that would make it wait sends the read to a thread instead.
        self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._reader.execute("PRAGMA busy_timeout=0")
        self._reader.execute("PRAGMA query_only=1")

    def _migrate(self) -> None:
        def upgrade() -> None:
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreTooNew(
                    f"The store {self.path} has schema version {version}, newer than this release "
                    f"of aleph-mcp knows ({len(MIGRATIONS)}): a newer aleph-mcp wrote it. Upgrade "
                    "aleph-mcp, or point ALEPH_MCP_DATA_DIR at another folder. The file was not changed."
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in statements(script):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={number}")

        with self._lock:
            self._immediately(upgrade)

    async def _run(self, fn: Callable[[], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn()

        return await anyio.to_thread.run_sync(locked)

    def _write(self, sql: str, params: Any = (), *, many: bool = False) -> int:
        """One statement's changed row count. Its cursor is closed here, under the lock: a cursor left to
        be collected on the event loop resets its cached statement there, while another thread may be
        running that same statement (SQLite answers "bad parameter or other API misuse")."""
        cursor = self._db.executemany(sql, params) if many else self._db.execute(sql, params)
        try:
            return cursor.rowcount
        finally:
            cursor.close()

    def _query(self, sql: str, params: Any = ()) -> list[Edit]:
        return edits_of(self._db.execute(sql, params))

    def _insert(self, edit: Edit, fingerprint: str | None = None) -> None:
        params = _edit_to_params(edit) | {"fingerprint": fingerprint}
        columns = [*COLUMNS, "fingerprint"]
        sql = f"INSERT INTO edits ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
        try:
            self._db.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            if "edit_id" in str(exc):
                raise InvalidInput(f"An edit with id {edit.edit_id!r} exists.") from None
            raise IdempotencyConflict(
                f"An edit with idempotency key {edit.idempotency_key!r} exists."
            ) from None

    async def add(self, edit: Edit) -> None:
        await self._run(lambda: self._insert(edit))

    async def add_unless_duplicate(
        self, edit: Edit, fingerprint: str, window: float, gate: Gate | None = None
    ) -> Edit | None:
        sql = (
            f"SELECT * FROM edits WHERE fingerprint = ? AND created_at >= ? AND {FINDS_REPEATS_SQL} "
            "ORDER BY created_at DESC LIMIT 1"
        )

        def find_or_insert() -> Edit | None:
            found = self._query(sql, (fingerprint, edit.created_at - window)) if window > 0 else []
            if not found:
                if gate is not None:
                    self._pass(gate)
                self._insert(edit, fingerprint)
            return found[0] if found else None

        # A second process's look-up waits for this insert.
        return await self._run(lambda: self._immediately(find_or_insert))

    def _immediately(self, fn: Callable[[], T]) -> T:
        """`fn` in one transaction that takes the write lock first (BEGIN IMMEDIATE)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            result = fn()
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return result

    def _pass(self, gate: Gate) -> None:
        """The gate's check (inside the insert's transaction): from the ledger's sums when they decide it,
        else from every edit of its window."""
        if summed(gate):
            ledger.move_window(self._db, gate.since)
            own = ledger.totals(self._db, gate.sums_owner) if gate.sums_owner is not None else []
            if gate.admits(ledger.totals(self._db), own):
                return
        gate.check(self._query(CREATED_SINCE_SQL, (gate.since,)))

    async def spend_since(self, since: float, owner: str | None = None) -> list[SpendGroup]:
        def read() -> list[SpendGroup]:
            self._db.execute("BEGIN")  # one snapshot of the ledger and the edits it is adjusted by
            try:
                return ledger.read_sums(self._db, since, owner)
            finally:
                self._db.execute("COMMIT")

        return await self._run(read)

    async def created_since(self, since: float) -> list[Edit]:
        return await self._run(lambda: self._query(CREATED_SINCE_SQL, (since,)))

    async def _read_now(self, sql: str, params: Any) -> list[Edit]:
        """An indexed read served on the event loop: a primary-key look-up (~20 µs) or a page of edits
        (~5 µs an edit) costs less than the hop to a worker thread and back (~50 µs idle, a few hundred on
        a busy machine). A WAL reader never waits for a writer; anything else that would make it wait
        (a recovery, a checkpoint's lock) sends the read to a thread instead."""
        try:
            return edits_of(self._reader.execute(sql, params))
        except sqlite3.OperationalError:  # busy: wait in a thread
            return await self._run(lambda: self._query(sql, params))

    async def get(self, edit_id: str) -> Edit | None:
        rows = await self._read_now("SELECT * FROM edits WHERE edit_id = ?", (edit_id,))
        return rows[0] if rows else None

    async def find_by_webhook(self, token_hash: str) -> Edit | None:
        sql = "SELECT * FROM edits WHERE webhook_token_hash = ?"
        rows = await self._run(lambda: self._query(sql, (token_hash,)))
        return rows[0] if rows else None

    async def poll_soon(self, edit_id: str, now: float) -> None:
        sql = (
            f"UPDATE edits SET next_poll_at = ? WHERE edit_id = ? AND next_poll_at > ? AND {NOT_TERMINAL_SQL}"
        )
        await self._run(lambda: self._write(sql, (now, edit_id, now, *TERMINAL)))

    async def get_by_idempotency_key(self, key: str) -> Edit | None:
        rows = await self._run(lambda: self._query("SELECT * FROM edits WHERE idempotency_key = ?", (key,)))
        return rows[0] if rows else None

    async def save(self, edit: Edit) -> None:
        params = _edit_to_params(edit)
        assignments = ", ".join(f"{c} = :{c}" for c in COLUMNS if c != "edit_id")
        await self._run(
            lambda: self._write(f"UPDATE edits SET {assignments} WHERE edit_id = :edit_id", params)
        )

    async def list_edits(
        self,
        *,
        status: str | None = None,
        provider: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
        owner: str | None = None,
        parent: str | None = None,
    ) -> tuple[list[Edit], str | None]:
        check_limit(limit)
        clauses, params = page_where(
            "?", owner=owner, parent=parent, status=status, provider=provider, cursor=cursor
        )
        rows = await self._read_now(page_sql(clauses), [*params, limit + 1])  # every filter has its index
        page = rows[:limit]
        return page, (encode_cursor(page[-1]) if len(rows) > limit else None)

    async def due_for_poll(self, now: float, limit: int) -> list[Edit]:
        sql = (
            "SELECT * FROM edits WHERE next_poll_at IS NOT NULL AND next_poll_at <= ? "
            f"AND {NOT_TERMINAL_SQL} "
            "AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_poll_at, edit_id LIMIT ?"
        )
        return await self._run(lambda: self._query(sql, (now, *TERMINAL, now, limit)))

    async def lease_due(self, now: float, owner: str, until: float, limit: int) -> list[Edit]:
        # One statement picks and leases, so two processes never draw the same edit; the pick walks the
        # partial index on next_poll_at (migration 1), earliest due first.
        sql = (
            "UPDATE edits SET lease_owner = ?, lease_until = ? WHERE edit_id IN ("
            "SELECT edit_id FROM edits WHERE next_poll_at IS NOT NULL AND next_poll_at <= ? "
            f"AND {NOT_TERMINAL_SQL} AND (lease_until IS NULL OR lease_until < ?) "
            "ORDER BY next_poll_at, edit_id LIMIT ?) RETURNING *"
        )

        def draw() -> list[Edit]:
            edits = edits_of(self._db.execute(sql, (owner, until, now, *TERMINAL, now, limit)))
            return sorted(edits, key=lambda e: (e.next_poll_at or 0.0, e.edit_id))

        return await self._run(lambda: self._immediately(draw))

    async def save_many(self, edits: Sequence[Edit], *, release: str | None = None) -> None:
        params = [_edit_to_params(edit) | {"holder": release} for edit in edits]
        assignments = ", ".join(f"{c} = :{c}" for c in COLUMNS if c != "edit_id")
        if release is not None:  # the holder's lease ends in the same write (another holder's stays)
            assignments += (
                ", lease_until = CASE WHEN lease_owner = :holder THEN NULL ELSE lease_until END"
                ", lease_owner = CASE WHEN lease_owner = :holder THEN NULL ELSE lease_owner END"
            )
        sql = f"UPDATE edits SET {assignments} WHERE edit_id = :edit_id"
        if params:
            await self._run(lambda: self._immediately(lambda: self._write(sql, params, many=True)))

    async def lease(self, edit_id: str, owner: str, until: float, now: float) -> bool:
        sql = (
            "UPDATE edits SET lease_owner = ?, lease_until = ? WHERE edit_id = ? "
            "AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)"
        )
        return await self._run(lambda: self._write(sql, (owner, until, edit_id, owner, now))) == 1

    async def release(self, edit_id: str, owner: str) -> None:
        sql = "UPDATE edits SET lease_owner = NULL, lease_until = NULL WHERE edit_id = ? AND lease_owner = ?"
        await self._run(lambda: self._write(sql, (edit_id, owner)))

    async def changed_since(
        self, since: float, limit: int = 200, *, after_id: str | None = None
    ) -> list[Edit]:
        where = "updated_at > ?" if after_id is None else "(updated_at, edit_id) > (?, ?)"
        params = (since, limit) if after_id is None else (since, after_id, limit)
        sql = f"SELECT * FROM edits WHERE {where} ORDER BY updated_at, edit_id LIMIT ?"
        return await self._run(lambda: self._query(sql, params))

    async def claim_create(self, edit_id: str, provider: str, limit: int | None, now: float) -> Claim:
        # One write transaction: two processes cannot both take a provider's last slot.
        return await self._run(lambda: self._immediately(lambda: self._claim(edit_id, provider, limit, now)))

    def _claim(self, edit_id: str, provider: str, limit: int | None, now: float) -> Claim:
        if limit is not None:
            sql = (
                "SELECT COUNT(*) FROM edits WHERE provider = ? AND edit_id != ? "
                f"AND {NOT_TERMINAL_SQL} AND {SENDING_SQL}"
            )
            if self._db.execute(sql, (provider, edit_id, *TERMINAL)).fetchone()[0] >= limit:
                return "full"
        sql = (
            "UPDATE edits SET create_sent_at = ?, submit_after = NULL WHERE edit_id = ? "
            f"AND provider_task_id IS NULL AND create_sent_at IS NULL AND {NOT_TERMINAL_SQL}"
        )
        return "claimed" if self._db.execute(sql, (now, edit_id, *TERMINAL)).rowcount == 1 else "gone"

    async def unsubmitted(self) -> list[Edit]:
        sql = f"SELECT * FROM edits WHERE provider_task_id IS NULL AND {NOT_TERMINAL_SQL}"
        return await self._run(lambda: self._query(sql, TERMINAL))

    async def record_decline(self, fingerprint: str, at: float) -> None:
        sql = "INSERT OR REPLACE INTO declines (fingerprint, declined_at) VALUES (?, ?)"
        await self._run(lambda: self._write(sql, (fingerprint, at)))

    async def declined_since(self, fingerprint: str, since: float) -> float | None:
        sql = "SELECT declined_at FROM declines WHERE fingerprint = ? AND declined_at >= ?"
        rows = await self._run(lambda: self._db.execute(sql, (fingerprint, since)).fetchall())
        return float(rows[0][0]) if rows else None

    async def close(self) -> None:
        # Shielded: a shutdown by cancellation (the usual way a server or CLI task group ends) still closes.
        with anyio.CancelScope(shield=True):
            self._reader.close()
            await self._run(self._db.close)
