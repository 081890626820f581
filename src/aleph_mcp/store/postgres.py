"""PostgresEditStore: the EditStore contract on PostgreSQL, for replicas on several hosts (psycopg 3, async).

Atomicity across replicas (see `base.EditStore`):
- leases, `release` and `claim_create`'s marker are conditional UPDATEs: a row lock makes a second writer
  wait and re-check the condition, so exactly one wins;
- `add_unless_duplicate` takes a transaction-scoped advisory lock on the fingerprint (and, with a gate, the
  global budget lock first, always in that order), so the look-up, the gate and the insert are one step;
- `claim_create` with a limit takes the provider's advisory lock, so two replicas cannot both take its
  last slot.

Lease times are the callers' clocks (`now`, `until`), as with SQLite: replicas need synchronised clocks,
which `aleph-mcp doctor` checks against the database's clock. Every insert and visible save NOTIFYs
`aleph_edits` in its own transaction; `poll_soon` NOTIFYs `aleph_poke` for the lease holder (pg_listen.py).
psycopg is imported only here: `store.factory` loads this module when a PostgreSQL URL is configured.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Self

import anyio
import psycopg
from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from aleph_mcp.errors import IdempotencyConflict, InvalidInput, NotConfigured
from aleph_mcp.models import Edit, SpendGroup
from aleph_mcp.redact import scrub_url_secrets, url_without_password
from aleph_mcp.store.base import (
    COLUMNS,
    FINDS_REPEATS_SQL,
    SENDING_SQL,
    Announcement,
    Claim,
    Gate,
    StoreTooNew,
    check_limit,
    encode_cursor,
    page_where,
    summed,
)
from aleph_mcp.store.pg_listen import CHANGE_PAYLOAD, CHANGES, POKES, announcements
from aleph_mcp.store.pg_schema import JSON_COLUMNS, MIGRATIONS, NOT_TERMINAL
from aleph_mcp.store.pg_spend import groups, spend_query

SELECT = f"SELECT {', '.join(COLUMNS)} FROM edits"
CREATED_SINCE = f"{SELECT} WHERE created_at >= %s ORDER BY created_at, edit_id"
# Advisory lock namespaces (the first of the two int4 keys): what each lock serialises.
MIGRATE_LOCK, FINGERPRINT_LOCK, BUDGET_LOCK, PROVIDER_LOCK = 7401, 7402, 7403, 7404
POOL_SIZE = 10
Row = tuple[Any, ...]


class StoreUnavailable(NotConfigured):
    """The database could not be reached or used; the message never holds the URL's password."""


def lock_key(text: str) -> int:
    """A stable int4 for an advisory lock on `text` (a fingerprint, a provider)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big", signed=True)


def _edit(row: Row) -> Edit:
    return Edit(**dict(zip(COLUMNS, row, strict=True)))


def _params(edit: Edit) -> dict[str, Any]:
    values = {name: getattr(edit, name) for name in COLUMNS}
    for name in JSON_COLUMNS:
        if values[name] is not None:
            values[name] = Jsonb(values[name])
    return values


def _notify_sql(returning: str, when: str = "TRUE") -> str:
    """Wrap an INSERT/UPDATE … RETURNING edit_id, updated_at so that its rows (those `when` holds for) are
    announced, in one statement: in the writer's transaction, so a listener hears it once it is committed."""
    notify = f"SELECT pg_notify('{CHANGES}', {CHANGE_PAYLOAD}) FROM changed WHERE {when}"
    return f"WITH changed AS ({returning}) {notify}"


# The row as it was (locked first, so no other writer moves it between), the update, and its announcement.
SAVE_SQL = _notify_sql(
    f"UPDATE edits SET {', '.join(f'{c} = %({c})s' for c in COLUMNS if c != 'edit_id')} "
    "FROM (SELECT updated_at AS before FROM edits WHERE edit_id = %(edit_id)s FOR UPDATE) AS old "
    "WHERE edit_id = %(edit_id)s RETURNING edit_id, updated_at, old.before",
    when="changed.updated_at IS DISTINCT FROM changed.before",
)


async def migrate(conn: AsyncConnection[Row], where: str) -> None:
    """Bring the schema to this release's version in one transaction, under the migration lock."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", [MIGRATE_LOCK])
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = await (await conn.execute("SELECT version FROM schema_version")).fetchone()
        version = int(row[0]) if row else 0
        if row is None:
            await conn.execute("INSERT INTO schema_version (version) VALUES (0)")
        if version > len(MIGRATIONS):
            raise StoreTooNew(
                f"The store {where} has schema version {version}, newer than this release of aleph-mcp "
                f"knows ({len(MIGRATIONS)}): a newer aleph-mcp wrote it. Upgrade aleph-mcp on every replica, "
                "or point ALEPH_MCP_STORE_URL at another database. Nothing was changed."
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            await conn.execute(script)  # no parameters: one multi-statement script
            await conn.execute("UPDATE schema_version SET version = %s", [number])


class PostgresEditStore:
    """One pool of connections per process; every replica's pool reaches the same tables."""

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[Row]], url: str) -> None:
        self._pool = pool
        self._url = url
        self.where = url_without_password(url)  # for messages: never the password

    @classmethod
    async def open(cls, url: str, *, timeout: float = 30.0, pool_size: int = POOL_SIZE) -> Self:
        """Connect, migrate (under an advisory lock: replicas starting together wait for each other) and
        return the store. StoreTooNew for a schema newer than this release knows; StoreUnavailable when the
        server cannot be reached (at once: one connection is tried before the pool, which would retry)."""
        where = url_without_password(url)
        try:
            async with await AsyncConnection.connect(
                url, autocommit=True, connect_timeout=max(1, round(timeout))
            ) as conn:
                await migrate(conn, where)
        except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:  # unreachable, or a bad URL
            reason = scrub_url_secrets(str(exc).strip() or type(exc).__name__, url)
            raise StoreUnavailable(f"The store {where} cannot be reached or used: {reason}") from None
        # check: a connection the server dropped (a restart, a failover) is replaced, not handed out to fail.
        pool: AsyncConnectionPool[AsyncConnection[Row]] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            open=False,
            kwargs={"autocommit": True},
            timeout=timeout,
            check=AsyncConnectionPool.check_connection,
        )
        await pool.open()
        return cls(pool, url)

    async def schema_version(self) -> int:
        rows = await self._rows("SELECT version FROM schema_version")
        return int(rows[0][0]) if rows else 0

    async def database_time(self) -> float:
        """The database server's clock (epoch seconds): what doctor compares this host's clock with."""
        rows = await self._rows("SELECT extract(epoch FROM clock_timestamp())::float8")
        return float(rows[0][0])

    # -- plumbing ------------------------------------------------------------------------------------
    async def _rows(self, query: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(query, params)
            return await cursor.fetchall() if cursor.description else []

    async def _edits(self, query: str, params: Sequence[Any] = ()) -> list[Edit]:
        return [_edit(row) for row in await self._rows(query, params)]

    async def _one(self, query: str, params: Sequence[Any]) -> Edit | None:
        found = await self._edits(query, params)
        return found[0] if found else None

    async def _count(self, query: str, params: Sequence[Any]) -> int:
        async with self._pool.connection() as conn:
            return (await conn.execute(query, params)).rowcount

    @staticmethod
    async def _insert(conn: AsyncConnection[Row], edit: Edit, fingerprint: str | None = None) -> None:
        columns = [*COLUMNS, "fingerprint"]
        values = ", ".join(f"%({c})s" for c in columns)
        insert = f"INSERT INTO edits ({', '.join(columns)}) VALUES ({values}) RETURNING edit_id, updated_at"
        try:
            async with conn.transaction():  # a savepoint inside a caller's transaction
                await conn.execute(_notify_sql(insert), _params(edit) | {"fingerprint": fingerprint})
        except UniqueViolation as exc:
            if exc.diag.constraint_name == "edits_pkey":
                raise InvalidInput(f"An edit with id {edit.edit_id!r} exists.") from None
            raise IdempotencyConflict(
                f"An edit with idempotency key {edit.idempotency_key!r} exists."
            ) from None

    # -- the contract --------------------------------------------------------------------------------
    async def add(self, edit: Edit) -> None:
        async with self._pool.connection() as conn:
            await self._insert(conn, edit)

    async def add_unless_duplicate(
        self, edit: Edit, fingerprint: str, window: float, gate: Gate | None = None
    ) -> Edit | None:
        repeats = (
            f"{SELECT} WHERE fingerprint = %s AND created_at >= %s AND {FINDS_REPEATS_SQL} "
            "ORDER BY created_at DESC LIMIT 1"
        )
        async with self._pool.connection() as conn, conn.transaction():
            if gate is not None:  # the budget lock first, then the fingerprint's: never the other way
                await conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", [BUDGET_LOCK])
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [FINGERPRINT_LOCK, lock_key(fingerprint)]
            )
            if window > 0:
                cursor = await conn.execute(repeats, [fingerprint, edit.created_at - window])
                found = await cursor.fetchone()
                if found is not None:
                    return _edit(found)
            if gate is not None and not await _admitted(conn, gate):
                recent = await (await conn.execute(CREATED_SINCE, [gate.since])).fetchall()
                gate.check([_edit(row) for row in recent])
            await self._insert(conn, edit, fingerprint)
        return None

    async def spend_since(self, since: float, owner: str | None = None) -> list[SpendGroup]:
        query, params = spend_query(since, owner)
        return groups(await self._rows(query, params))

    async def created_since(self, since: float) -> list[Edit]:
        return await self._edits(CREATED_SINCE, [since])

    async def get(self, edit_id: str) -> Edit | None:
        return await self._one(f"{SELECT} WHERE edit_id = %s", [edit_id])

    async def get_by_idempotency_key(self, key: str) -> Edit | None:
        return await self._one(f"{SELECT} WHERE idempotency_key = %s", [key])

    async def find_by_webhook(self, token_hash: str) -> Edit | None:
        return await self._one(f"{SELECT} WHERE webhook_token_hash = %s", [token_hash])

    async def poll_soon(self, edit_id: str, now: float) -> None:
        """Due now, and a poke for the replica holding its lease: a check it has in progress may predate
        the provider's news, so it checks once more right after (Poller.poke)."""
        update = (
            f"UPDATE edits SET next_poll_at = %s WHERE edit_id = %s AND next_poll_at > %s AND {NOT_TERMINAL}"
        )
        holder = (
            f"SELECT pg_notify('{POKES}', json_build_array(edit_id, lease_owner)::text) FROM edits "
            f"WHERE edit_id = %s AND lease_owner IS NOT NULL AND lease_until >= %s AND {NOT_TERMINAL}"
        )
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(update, [now, edit_id, now])
            await conn.execute(holder, [edit_id, now])

    async def save(self, edit: Edit) -> None:
        """Write every field; announced only when `updated_at` moved (a visible change, as `changed_since`
        sees it), not for the poller's rescheduling saves."""
        async with self._pool.connection() as conn:
            await conn.execute(SAVE_SQL, _params(edit))

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
            "%s", owner=owner, parent=parent, status=status, provider=provider, cursor=cursor
        )
        rows = await self._edits(page_sql(clauses), [*params, limit + 1])
        page = rows[:limit]
        return page, (encode_cursor(page[-1]) if len(rows) > limit else None)

    async def due_for_poll(self, now: float, limit: int) -> list[Edit]:
        return await self._edits(DUE_SQL, [now, now, limit])

    async def lease_due(self, now: float, owner: str, until: float, limit: int) -> list[Edit]:
        """The due edits with a free lease, leased in one statement; SKIP LOCKED: replicas drawing at the
        same moment take different edits instead of queueing on each other's rows."""
        rows = await self._edits(LEASE_DUE_SQL, [owner, until, now, now, limit])
        return sorted(rows, key=lambda e: (e.next_poll_at or 0.0, e.edit_id))

    async def save_many(self, edits: Sequence[Edit], *, release: str | None = None) -> None:
        """Every save in one transaction; with `release`, that holder's leases go in the same commit."""
        if not edits:
            return
        async with self._pool.connection() as conn, conn.transaction():
            async with conn.cursor() as cursor:
                await cursor.executemany(SAVE_SQL, [_params(e) for e in edits])
            if release is not None:
                await conn.execute(
                    "UPDATE edits SET lease_owner = NULL, lease_until = NULL "
                    "WHERE edit_id = ANY(%s) AND lease_owner = %s",
                    [[e.edit_id for e in edits], release],
                )

    async def lease(self, edit_id: str, owner: str, until: float, now: float) -> bool:
        sql = (
            "UPDATE edits SET lease_owner = %s, lease_until = %s WHERE edit_id = %s "
            "AND (lease_owner IS NULL OR lease_owner = %s OR lease_until < %s)"
        )
        return await self._count(sql, [owner, until, edit_id, owner, now]) == 1

    async def release(self, edit_id: str, owner: str) -> None:
        sql = (
            "UPDATE edits SET lease_owner = NULL, lease_until = NULL WHERE edit_id = %s AND lease_owner = %s"
        )
        await self._count(sql, [edit_id, owner])

    async def changed_since(
        self, since: float, limit: int = 200, *, after_id: str | None = None
    ) -> list[Edit]:
        where = "updated_at > %s" if after_id is None else "(updated_at, edit_id) > (%s, %s)"
        params = [since, limit] if after_id is None else [since, after_id, limit]
        return await self._edits(f"{SELECT} WHERE {where} ORDER BY updated_at, edit_id LIMIT %s", params)

    async def claim_create(self, edit_id: str, provider: str, limit: int | None, now: float) -> Claim:
        count = (
            f"SELECT COUNT(*) FROM edits WHERE provider = %s AND edit_id != %s AND {NOT_TERMINAL} "
            f"AND {SENDING_SQL}"
        )
        claim = (
            "UPDATE edits SET create_sent_at = %s, submit_after = NULL WHERE edit_id = %s "
            f"AND provider_task_id IS NULL AND create_sent_at IS NULL AND {NOT_TERMINAL}"
        )
        async with self._pool.connection() as conn, conn.transaction():
            if limit is not None:
                # The provider's lock: the count and the marker are one step for every replica.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", [PROVIDER_LOCK, lock_key(provider)]
                )
                row = await (await conn.execute(count, [provider, edit_id])).fetchone()
                if row is not None and int(row[0]) >= limit:
                    return "full"
            cursor = await conn.execute(claim, [now, edit_id])
            return "claimed" if cursor.rowcount == 1 else "gone"

    async def unsubmitted(self) -> list[Edit]:
        return await self._edits(f"{SELECT} WHERE provider_task_id IS NULL AND {NOT_TERMINAL}")

    async def record_decline(self, fingerprint: str, at: float) -> None:
        sql = (
            "INSERT INTO declines (fingerprint, declined_at) VALUES (%s, %s) "
            "ON CONFLICT (fingerprint) DO UPDATE SET declined_at = EXCLUDED.declined_at"
        )
        await self._count(sql, [fingerprint, at])

    async def declined_since(self, fingerprint: str, since: float) -> float | None:
        rows = await self._rows(
            "SELECT declined_at FROM declines WHERE fingerprint = %s AND declined_at >= %s",
            [fingerprint, since],
        )
        return float(rows[0][0]) if rows else None

    # -- cross-replica announcements (edits.changes.watch_store listens to these) ---------------------
    def announcements(self) -> AsyncGenerator[Announcement, None]:
        return announcements(self._url, self.where)

    async def close(self) -> None:
        with anyio.CancelScope(shield=True):
            await self._pool.close()


DUE_SQL = (
    f"{SELECT} WHERE next_poll_at IS NOT NULL AND next_poll_at <= %s AND {NOT_TERMINAL} "
    "AND (lease_until IS NULL OR lease_until < %s) ORDER BY next_poll_at, edit_id LIMIT %s"
)


LEASE_DUE_SQL = (
    "UPDATE edits SET lease_owner = %s, lease_until = %s WHERE edit_id IN ("
    f"SELECT edit_id FROM edits WHERE next_poll_at IS NOT NULL AND next_poll_at <= %s AND {NOT_TERMINAL} "
    "AND (lease_until IS NULL OR lease_until < %s) ORDER BY next_poll_at, edit_id LIMIT %s "
    f"FOR UPDATE SKIP LOCKED) RETURNING {', '.join(COLUMNS)}"
)


async def _admitted(conn: AsyncConnection[Row], gate: Gate) -> bool:
    """The gate passes from the window's sums alone (read in the gate's transaction, under its lock)."""
    if not summed(gate):
        return False

    async def spend(owner: str | None) -> list[SpendGroup]:
        query, params = spend_query(gate.since, owner)
        return groups(await (await conn.execute(query, params)).fetchall())

    own = await spend(gate.sums_owner) if gate.sums_owner is not None else []
    return gate.admits(await spend(None), own)


def page_sql(clauses: list[str]) -> str:
    """A `list_edits` page: newest first, served by the index of its filters (pg_schema migration 1)."""
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"{SELECT} {where} ORDER BY created_at DESC, edit_id DESC LIMIT %s"
