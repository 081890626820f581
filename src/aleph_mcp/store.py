"""EditStore: where edits live. SQLite (WAL) by default, safe for several server processes on one data dir.

One process at a time works on an edit: `lease()` is an atomic compare-and-set on (lease_owner, lease_until),
so two processes sharing the file never poll, download or submit the same edit at once. Every process sees
every edit, because all state is in the file. `store_memory.InMemoryEditStore` keeps the same contract in
memory (tests, throwaway runs).
"""

from __future__ import annotations

import base64
import json
import math
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio.to_thread

from .errors import InvalidInput
from .models import TERMINAL_STATUSES, Edit

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
]

COLUMNS = [f.name for f in fields(Edit)]
_TERMINAL = tuple(sorted(TERMINAL_STATUSES))
_NOT_TERMINAL = f"status NOT IN ({', '.join('?' for _ in _TERMINAL)})"
_FINDS_REPEATS = "status NOT IN ('failed', 'cancelled')"  # a request that went nowhere may be asked again
_CREATED_SINCE = "SELECT * FROM edits WHERE created_at >= ? ORDER BY created_at, edit_id"


class Gate(Protocol):
    """A check run inside the store's insert: `check` sees every edit created at or after `since` and
    raises to refuse the new one (see `add_unless_duplicate`). The budget is one (budget.py)."""

    @property
    def since(self) -> float: ...

    def check(self, recent: list[Edit]) -> None: ...


class EditStore(Protocol):
    """Persistence for edits.

    - `add` inserts a new edit (InvalidInput if its idempotency key is taken); `save` writes all fields back.
    - `list_edits` pages newest first; `cursor` is the opaque `next_cursor` of the previous page.
    - `list_edits` raises InvalidInput for a limit below 1 or a cursor it did not give out.
    - `due_for_poll` returns unfinished edits whose `next_poll_at` has passed and whose lease is free,
      earliest first.
    - `lease` claims an edit for `owner` until `until` (atomic; True when claimed or already ours);
      `release` gives it back. A lease that has expired is free again, so a crashed process blocks nobody.
    - `changed_since` returns edits updated after a time (oldest first), for cross-process notifications.
    - `add_unless_duplicate` is one atomic step, across processes too: the newest edit with the same request
      fingerprint created at most `window` seconds before `edit` and not failed or cancelled, else None
      after adding `edit` with its fingerprint (InvalidInput as `add`). A window of 0 only adds.
      With a `gate`, a new edit is added only if `gate.check` (given the edits created since `gate.since`)
      does not raise; the check and the insert are one step too, so two processes cannot both pass it.
      A repeat found in the window is returned without the gate: it spends nothing.
    - `created_since` returns the edits created at or after a time, oldest first.
    """

    async def add(self, edit: Edit) -> None: ...
    async def add_unless_duplicate(
        self, edit: Edit, fingerprint: str, window: float, gate: Gate | None = None
    ) -> Edit | None: ...
    async def created_since(self, since: float) -> list[Edit]: ...
    async def get(self, edit_id: str) -> Edit | None: ...
    async def get_by_idempotency_key(self, key: str) -> Edit | None: ...
    async def save(self, edit: Edit) -> None: ...
    async def list_edits(
        self,
        *,
        status: str | None = None,
        provider: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> tuple[list[Edit], str | None]: ...
    async def due_for_poll(self, now: float, limit: int) -> list[Edit]: ...
    async def lease(self, edit_id: str, owner: str, until: float, now: float) -> bool: ...
    async def release(self, edit_id: str, owner: str) -> None: ...
    async def changed_since(self, since: float, limit: int = 200) -> list[Edit]: ...
    async def unsubmitted(self) -> list[Edit]: ...
    async def close(self) -> None: ...


def encode_cursor(edit: Edit) -> str:
    return base64.urlsafe_b64encode(f"{edit.created_at!r}|{edit.edit_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        created, sep, edit_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        value = float(created)
        if sep and edit_id and math.isfinite(value):
            return value, edit_id
    except (ValueError, UnicodeDecodeError):
        pass
    raise InvalidInput("The cursor is not one this server gave out; call list_edits without it.")


def check_limit(limit: int) -> None:
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1 (got {limit}).")


def _row_to_edit(row: sqlite3.Row) -> Edit:
    values = {name: row[name] for name in COLUMNS}
    values["options"] = json.loads(values["options"] or "{}")
    values["warnings"] = json.loads(values["warnings"] or "[]")
    return Edit(**values)


def _edit_to_params(edit: Edit) -> dict[str, Any]:
    params = {name: getattr(edit, name) for name in COLUMNS}
    params["options"] = json.dumps(edit.options, sort_keys=True)
    params["warnings"] = json.dumps(edit.warnings)
    return params


class SQLiteEditStore:
    """The embedded default. Calls run in a worker thread so a busy file never stalls the event loop."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    for statement in filter(str.strip, script.split(";")):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version={number}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    async def _run(self, fn: Callable[[], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn()

        return await anyio.to_thread.run_sync(locked)

    def _query(self, sql: str, params: Any = ()) -> list[Edit]:
        return [_row_to_edit(row) for row in self._db.execute(sql, params).fetchall()]

    def _insert(self, edit: Edit, fingerprint: str | None = None) -> None:
        params = _edit_to_params(edit) | {"fingerprint": fingerprint}
        columns = [*COLUMNS, "fingerprint"]
        sql = f"INSERT INTO edits ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
        try:
            self._db.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            if "edit_id" in str(exc):
                raise InvalidInput(f"An edit with id {edit.edit_id!r} exists.") from None
            raise InvalidInput(f"An edit with idempotency key {edit.idempotency_key!r} exists.") from None

    async def add(self, edit: Edit) -> None:
        await self._run(lambda: self._insert(edit))

    async def add_unless_duplicate(
        self, edit: Edit, fingerprint: str, window: float, gate: Gate | None = None
    ) -> Edit | None:
        sql = (
            f"SELECT * FROM edits WHERE fingerprint = ? AND created_at >= ? AND {_FINDS_REPEATS} "
            "ORDER BY created_at DESC LIMIT 1"
        )

        def find_or_insert() -> Edit | None:
            # IMMEDIATE takes the write lock first, so a second process's look-up waits for this insert.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                found = self._query(sql, (fingerprint, edit.created_at - window)) if window > 0 else []
                if not found:
                    if gate is not None:
                        gate.check(self._query(_CREATED_SINCE, (gate.since,)))
                    self._insert(edit, fingerprint)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return found[0] if found else None

        return await self._run(find_or_insert)

    async def created_since(self, since: float) -> list[Edit]:
        return await self._run(lambda: self._query(_CREATED_SINCE, (since,)))

    async def get(self, edit_id: str) -> Edit | None:
        rows = await self._run(lambda: self._query("SELECT * FROM edits WHERE edit_id = ?", (edit_id,)))
        return rows[0] if rows else None

    async def get_by_idempotency_key(self, key: str) -> Edit | None:
        rows = await self._run(lambda: self._query("SELECT * FROM edits WHERE idempotency_key = ?", (key,)))
        return rows[0] if rows else None

    async def save(self, edit: Edit) -> None:
        params = _edit_to_params(edit)
        assignments = ", ".join(f"{c} = :{c}" for c in COLUMNS if c != "edit_id")
        await self._run(
            lambda: self._db.execute(f"UPDATE edits SET {assignments} WHERE edit_id = :edit_id", params)
        )

    async def list_edits(
        self,
        *,
        status: str | None = None,
        provider: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> tuple[list[Edit], str | None]:
        check_limit(limit)
        clauses, params = [], []  # type: tuple[list[str], list[Any]]
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        if provider is not None:
            clauses.append("provider = ?")
            params.append(provider)
        if cursor is not None:
            created, edit_id = decode_cursor(cursor)
            clauses.append("(created_at < ? OR (created_at = ? AND edit_id < ?))")
            params += [created, created, edit_id]
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT * FROM edits {where} ORDER BY created_at DESC, edit_id DESC LIMIT ?"
        rows = await self._run(lambda: self._query(sql, [*params, limit + 1]))
        page = rows[:limit]
        return page, (encode_cursor(page[-1]) if len(rows) > limit else None)

    async def due_for_poll(self, now: float, limit: int) -> list[Edit]:
        sql = (
            "SELECT * FROM edits WHERE next_poll_at IS NOT NULL AND next_poll_at <= ? "
            f"AND {_NOT_TERMINAL} "
            "AND (lease_until IS NULL OR lease_until < ?) ORDER BY next_poll_at, edit_id LIMIT ?"
        )
        return await self._run(lambda: self._query(sql, (now, *_TERMINAL, now, limit)))

    async def lease(self, edit_id: str, owner: str, until: float, now: float) -> bool:
        sql = (
            "UPDATE edits SET lease_owner = ?, lease_until = ? WHERE edit_id = ? "
            "AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)"
        )
        cursor = await self._run(lambda: self._db.execute(sql, (owner, until, edit_id, owner, now)))
        return cursor.rowcount == 1

    async def release(self, edit_id: str, owner: str) -> None:
        sql = "UPDATE edits SET lease_owner = NULL, lease_until = NULL WHERE edit_id = ? AND lease_owner = ?"
        await self._run(lambda: self._db.execute(sql, (edit_id, owner)))

    async def changed_since(self, since: float, limit: int = 200) -> list[Edit]:
        sql = "SELECT * FROM edits WHERE updated_at > ? ORDER BY updated_at LIMIT ?"
        return await self._run(lambda: self._query(sql, (since, limit)))

    async def unsubmitted(self) -> list[Edit]:
        sql = f"SELECT * FROM edits WHERE provider_task_id IS NULL AND {_NOT_TERMINAL}"
        return await self._run(lambda: self._query(sql, _TERMINAL))

    async def close(self) -> None:
        # Shielded: a shutdown by cancellation (the usual way a server or CLI task group ends) still closes.
        with anyio.CancelScope(shield=True):
            await self._run(self._db.close)
