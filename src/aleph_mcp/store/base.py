"""The EditStore seam: the contract every store keeps, and the helpers they share.

One process at a time works on an edit: `lease()` is an atomic compare-and-set on (lease_owner, lease_until),
so processes sharing a store never poll, download or submit the same edit at once. `sqlite.SQLiteEditStore`
is the embedded default; `postgres.PostgresEditStore` serves replicas on several hosts (ALEPH_MCP_STORE_URL,
opened through `factory.open_store`); `memory.InMemoryEditStore` keeps the same contract in memory (tests,
throwaway runs). A store that announces its writes to other processes (PostgreSQL) is also `Announcing`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol, TypeGuard, runtime_checkable

from aleph_mcp.errors import InvalidInput, NotConfigured
from aleph_mcp.models import TERMINAL_STATUSES, Edit, SpendGroup

COLUMNS = [f.name for f in fields(Edit)]
TERMINAL = tuple(sorted(TERMINAL_STATUSES))
NOT_TERMINAL_SQL = f"status NOT IN ({', '.join('?' for _ in TERMINAL)})"
FINDS_REPEATS_SQL = "status NOT IN ('failed', 'cancelled')"  # a request that went nowhere may be asked again
# An edit whose job exists at its provider or may exist: what a provider's concurrent-job limit counts.
SENDING_SQL = "(provider_task_id IS NOT NULL OR create_sent_at IS NOT NULL)"
Claim = Literal["claimed", "full", "gone"]
CREATED_SINCE_SQL = "SELECT * FROM edits WHERE created_at >= ? ORDER BY created_at, edit_id"


class StoreTooNew(NotConfigured):
    """The store was written by a newer release; using it could lose what that release keeps."""


@dataclass(frozen=True)
class Announcement:
    """What a store that announces its changes (PostgreSQL) tells every replica listening:
    - "changed": `edit_id` was written with `updated_at` (read it to see what changed);
    - "poke": a webhook asked for `edit_id` to be checked again; `holder` has its lease (Poller.poke);
    - "resync": listening (re)started; changes made while it was not may have been missed."""

    kind: Literal["changed", "poke", "resync"]
    edit_id: str = ""
    updated_at: float = 0.0
    holder: str | None = None


@runtime_checkable
class Announcing(Protocol):
    """A store whose writes reach other processes as announcements, with no polling of the store."""

    def announcements(self) -> AsyncGenerator[Announcement, None]: ...


class Gate(Protocol):
    """A check run inside the store's insert: `check` sees every edit created at or after `since` and
    raises to refuse the new one (see `add_unless_duplicate`). The budget is one (budget.py)."""

    @property
    def since(self) -> float: ...

    def check(self, recent: list[Edit]) -> None: ...


class SummedGate(Gate, Protocol):
    """A gate that can pass an edit from its window's sums alone (`EditStore.spend_since(since)`, and the
    same for `sums_owner` when that is not None, else []): `admits` True means `check` would not raise, so
    the store need not read the edits; False: the store calls `check`, which decides (and words a refusal)."""

    @property
    def sums_owner(self) -> str | None: ...

    def admits(self, everyone: list[SpendGroup], own: list[SpendGroup]) -> bool: ...


def summed(gate: Gate) -> TypeGuard[SummedGate]:
    return callable(getattr(gate, "admits", None))  # cheaper than a runtime-checkable isinstance


class EditStore(Protocol):
    """Persistence for edits.

    - `add` inserts a new edit (IdempotencyConflict if its idempotency key is taken); `save` writes all
      fields back.
    - `list_edits` pages newest first; `cursor` is the opaque `next_cursor` of the previous page; with
      `owner`, only that owner's edits; with `parent`, only the edits made from that edit's output
      (`parent_edit_id`, indexed). `get` is not scoped: the service checks the owner.
    - `list_edits` raises InvalidInput for a limit below 1 or a cursor it did not give out.
    - `due_for_poll` returns unfinished edits whose `next_poll_at` has passed and whose lease is free,
      earliest first.
    - `lease_due` is `due_for_poll` and `lease` in one atomic step, across processes too: up to `limit`
      due edits with a free lease, earliest due first, each leased to `owner` until `until`, returned as
      leased. No edit is returned to two callers whose leases overlap.
    - `save_many` is `save` of each edit in one write; with `release`, that holder's lease on each ends in
      the same write (a lease another holder has taken since stays). Edits never added are skipped.
    - `lease` claims an edit for `owner` until `until` (atomic; True when claimed or already ours);
      `release` gives it back. A lease that has expired is free again, so a crashed process blocks nobody.
    - `changed_since` returns edits updated after a time, oldest first (ties by edit_id), for cross-process
      notifications. With `after_id`, it pages: edits whose (updated_at, edit_id) comes after
      (since, after_id), so a reader can walk any number of changes of one instant ("" includes `since`).
    - `add_unless_duplicate` is one atomic step, across processes too: the newest edit with the same request
      fingerprint created at most `window` seconds before `edit` and not failed or cancelled, else None
      after adding `edit` with its fingerprint (InvalidInput as `add`). A window of 0 only adds.
      With a `gate`, a new edit is added only if `gate.check` (given the edits created since `gate.since`)
      does not raise; the check and the insert are one step too, so two processes cannot both pass it.
      A repeat found in the window is returned without the gate: it spends nothing. A `SummedGate` is
      first offered the window's sums (as `spend_since` gives them); `check` runs only if it does not admit.
    - `find_by_webhook` returns the edit whose webhook secret hashes to `token_hash`; `poll_soon` makes an
      unfinished edit due now (a provider said it changed), leaving an earlier due time as it is.
    - `created_since` returns the edits created at or after a time, oldest first.
    - `spend_since` sums the edits created at or after a time (with `owner`, only that owner's), grouped by
      provider, model, `models.billing_class` and `models.cost_kind` of `models.stored_cost`, without
      handing back each edit (`SpendGroup`s in no particular order, none of no edits; one key may come in
      several groups, which a reader adds up). SQLite keeps a ledger for it (store/ledger.py documents the
      exact semantics to mirror).
    - `claim_create` records that the edit's create is about to be sent (`create_sent_at = now`, clearing
      `submit_after`) and returns "claimed"; one atomic step, across processes too. With a `limit`, it first
      counts the provider's other unfinished edits whose job exists or may exist (a task id or a create sent)
      and returns "full", changing nothing, when they reach it. "gone": the edit has ended, has a task id
      or was claimed already, so it must not be sent. Nothing is sent without a "claimed" first: an edit
      without a task id but with `create_sent_at` may exist at the provider and is never sent again.
    - `save` writes `submit_after` and `pending_request` (an edit waiting for capacity, never sent) like
      every other field; `due_for_poll` finds it when `next_poll_at` (its next try) comes.
    - `record_decline` keeps that the person declined the request with this fingerprint (the latest time);
      `declined_since` returns that time when it is at or after `since`, else None.
    """

    async def add(self, edit: Edit) -> None: ...
    async def add_unless_duplicate(
        self, edit: Edit, fingerprint: str, window: float, gate: Gate | None = None
    ) -> Edit | None: ...
    async def created_since(self, since: float) -> list[Edit]: ...
    async def spend_since(self, since: float, owner: str | None = None) -> list[SpendGroup]: ...
    async def get(self, edit_id: str) -> Edit | None: ...
    async def get_by_idempotency_key(self, key: str) -> Edit | None: ...
    async def find_by_webhook(self, token_hash: str) -> Edit | None: ...
    async def poll_soon(self, edit_id: str, now: float) -> None: ...
    async def save(self, edit: Edit) -> None: ...
    async def list_edits(
        self,
        *,
        status: str | None = None,
        provider: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
        owner: str | None = None,
        parent: str | None = None,
    ) -> tuple[list[Edit], str | None]: ...
    async def due_for_poll(self, now: float, limit: int) -> list[Edit]: ...
    async def lease_due(self, now: float, owner: str, until: float, limit: int) -> list[Edit]: ...
    async def save_many(self, edits: Sequence[Edit], *, release: str | None = None) -> None: ...
    async def lease(self, edit_id: str, owner: str, until: float, now: float) -> bool: ...
    async def release(self, edit_id: str, owner: str) -> None: ...
    async def changed_since(
        self, since: float, limit: int = 200, *, after_id: str | None = None
    ) -> list[Edit]: ...
    async def claim_create(self, edit_id: str, provider: str, limit: int | None, now: float) -> Claim: ...
    async def unsubmitted(self) -> list[Edit]: ...
    async def record_decline(self, fingerprint: str, at: float) -> None: ...
    async def declined_since(self, fingerprint: str, since: float) -> float | None: ...
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


def page_where(
    mark: str,
    *,
    owner: str | None,
    parent: str | None,
    status: str | None,
    provider: str | None,
    cursor: str | None,
) -> tuple[list[str], list[Any]]:
    """A `list_edits` page's conditions and their values, `mark` being the driver's placeholder (`?`,
    `%s`). The cursor is a row comparison, which the (created_at, edit_id) index seeks to."""
    clauses: list[str] = []
    params: list[Any] = []
    filters = (("owner", owner), ("parent_edit_id", parent), ("status", status), ("provider", provider))
    for column, value in filters:
        if value is not None:
            clauses.append(f"{column} = {mark}")
            params.append(value)
    if cursor is not None:
        clauses.append(f"(created_at, edit_id) < ({mark}, {mark})")
        params += list(decode_cursor(cursor))
    return clauses, params


def check_limit(limit: int) -> None:
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1 (got {limit}).")
