"""InMemoryEditStore: the EditStore contract (see store.py) in memory, for tests and throwaway runs."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aleph_mcp.errors import IdempotencyConflict, InvalidInput
from aleph_mcp.models import (
    BillingClass,
    CostKind,
    Edit,
    SpendGroup,
    billing_class,
    cost_kind,
    nanodollars,
    stored_cost,
)
from aleph_mcp.store.base import COLUMNS, Claim, Gate, check_limit, decode_cursor, encode_cursor, summed


class InMemoryEditStore:
    """Same contract as SQLiteEditStore, in one process's memory (tests, throwaway runs)."""

    def __init__(self) -> None:
        self._edits: dict[str, Edit] = {}
        self._leases: dict[str, tuple[str, float]] = {}
        self._fingerprints: dict[str, str] = {}
        self._declines: dict[str, float] = {}

    @staticmethod
    def _copy(edit: Edit) -> Edit:
        # Through JSON, as SQLite stores options: no shared nested objects, same types back.
        options = json.loads(json.dumps(edit.options, sort_keys=True))
        pending = json.loads(json.dumps(edit.pending_request)) if edit.pending_request else None
        return Edit(
            **{name: getattr(edit, name) for name in COLUMNS}
            | {"options": options, "warnings": list(edit.warnings), "pending_request": pending}
        )

    async def add(self, edit: Edit) -> None:
        if edit.edit_id in self._edits:
            raise InvalidInput(f"An edit with id {edit.edit_id!r} exists.")
        if edit.idempotency_key is not None and await self.get_by_idempotency_key(edit.idempotency_key):
            raise IdempotencyConflict(f"An edit with idempotency key {edit.idempotency_key!r} exists.")
        self._edits[edit.edit_id] = self._copy(edit)

    async def add_unless_duplicate(
        self, edit: Edit, fingerprint: str, window: float, gate: Gate | None = None
    ) -> Edit | None:
        # No await before the insert: the look-up, the gate and the insert are one step on the event loop.
        repeats = [
            e
            for e in self._edits.values()
            if self._fingerprints.get(e.edit_id) == fingerprint
            and e.created_at >= edit.created_at - window
            and e.status not in ("failed", "cancelled")
        ]
        if window > 0 and repeats:
            return self._copy(max(repeats, key=lambda e: e.created_at))
        if gate is not None and not self._admitted(gate):
            gate.check(self._created_since(gate.since))
        await self.add(edit)
        self._fingerprints[edit.edit_id] = fingerprint
        return None

    def _created_since(self, since: float) -> list[Edit]:
        recent = (e for e in self._edits.values() if e.created_at >= since)
        return [self._copy(e) for e in sorted(recent, key=lambda e: (e.created_at, e.edit_id))]

    async def created_since(self, since: float) -> list[Edit]:
        return self._created_since(since)

    def _admitted(self, gate: Gate) -> bool:
        if not summed(gate):
            return False
        own = self._spend(gate.since, gate.sums_owner) if gate.sums_owner is not None else []
        return gate.admits(self._spend(gate.since), own)

    def _spend(self, since: float, owner: str | None = None) -> list[SpendGroup]:
        """The sums the SQLite ledger keeps (store/ledger.py), counted from the edits themselves."""
        sums: dict[tuple[str, str, BillingClass, CostKind], tuple[int, int, int]] = {}
        for e in self._edits.values():
            if e.created_at < since or owner not in (None, e.owner):
                continue
            cost = stored_cost(e)
            kind = cost_kind(cost)
            key = (e.provider, e.model, billing_class(e), kind)
            edits, nano, free = sums.get(key, (0, 0, 0))
            summed_cost = cost if kind == "summed" and cost is not None else None
            sums[key] = (
                edits + 1,
                nano + (nanodollars(summed_cost) if summed_cost is not None else 0),
                free + (summed_cost == 0),
            )
        return [SpendGroup(*key, *values) for key, values in sums.items()]

    async def spend_since(self, since: float, owner: str | None = None) -> list[SpendGroup]:
        return self._spend(since, owner)

    async def get(self, edit_id: str) -> Edit | None:
        edit = self._edits.get(edit_id)
        return self._copy(edit) if edit else None

    async def find_by_webhook(self, token_hash: str) -> Edit | None:
        found = [e for e in self._edits.values() if e.webhook_token_hash == token_hash]
        return self._copy(found[0]) if found else None

    async def poll_soon(self, edit_id: str, now: float) -> None:
        edit = self._edits.get(edit_id)
        if edit is not None and not edit.is_terminal and (edit.next_poll_at or 0) > now:
            edit.next_poll_at = now

    async def get_by_idempotency_key(self, key: str) -> Edit | None:
        return next((self._copy(e) for e in self._edits.values() if e.idempotency_key == key), None)

    async def save(self, edit: Edit) -> None:
        if edit.edit_id in self._edits:
            self._edits[edit.edit_id] = self._copy(edit)

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
        edits = sorted(self._edits.values(), key=lambda e: (e.created_at, e.edit_id), reverse=True)
        edits = [
            e
            for e in edits
            if status in (None, e.status)
            and provider in (None, e.provider)
            and owner in (None, e.owner)
            and parent in (None, e.parent_edit_id)
        ]
        if cursor is not None:
            after = decode_cursor(cursor)
            edits = [e for e in edits if (e.created_at, e.edit_id) < after]
        page = [self._copy(e) for e in edits[:limit]]
        return page, (encode_cursor(page[-1]) if len(edits) > limit else None)

    def _lease_free(self, edit_id: str, now: float, owner: str | None = None) -> bool:
        holder = self._leases.get(edit_id)
        return holder is None or holder[0] == owner or holder[1] < now

    async def due_for_poll(self, now: float, limit: int) -> list[Edit]:
        due = [
            e
            for e in self._edits.values()
            if e.next_poll_at is not None
            and e.next_poll_at <= now
            and not e.is_terminal
            and self._lease_free(e.edit_id, now)
        ]
        due.sort(key=lambda e: (e.next_poll_at or 0.0, e.edit_id))
        return [self._copy(e) for e in due[:limit]]

    async def lease_due(self, now: float, owner: str, until: float, limit: int) -> list[Edit]:
        # No await: the pick and the leases are one step on the event loop.
        due = await self.due_for_poll(now, limit)
        for edit in due:
            self._leases[edit.edit_id] = (owner, until)
        return due

    async def save_many(self, edits: Sequence[Edit], *, release: str | None = None) -> None:
        for edit in edits:
            await self.save(edit)
            if release is not None:
                await self.release(edit.edit_id, release)

    async def lease(self, edit_id: str, owner: str, until: float, now: float) -> bool:
        if edit_id not in self._edits or not self._lease_free(edit_id, now, owner):
            return False
        self._leases[edit_id] = (owner, until)
        return True

    async def release(self, edit_id: str, owner: str) -> None:
        holder = self._leases.get(edit_id)
        if holder is not None and holder[0] == owner:
            del self._leases[edit_id]

    async def changed_since(
        self, since: float, limit: int = 200, *, after_id: str | None = None
    ) -> list[Edit]:
        def after(e: Edit) -> bool:
            tie = after_id is not None and e.updated_at == since and e.edit_id > after_id
            return e.updated_at > since or tie

        changed = sorted(filter(after, self._edits.values()), key=lambda e: (e.updated_at, e.edit_id))
        return [self._copy(e) for e in changed[:limit]]

    async def claim_create(self, edit_id: str, provider: str, limit: int | None, now: float) -> Claim:
        # No await: the count and the marker are one step on the event loop.
        if limit is not None:
            sending = [
                e
                for e in self._edits.values()
                if e.provider == provider
                and e.edit_id != edit_id
                and not e.is_terminal
                and (e.provider_task_id is not None or e.create_sent_at is not None)
            ]
            if len(sending) >= limit:
                return "full"
        edit = self._edits.get(edit_id)
        if edit is None or edit.is_terminal or edit.provider_task_id or edit.create_sent_at is not None:
            return "gone"
        edit.create_sent_at, edit.submit_after = now, None
        return "claimed"

    async def unsubmitted(self) -> list[Edit]:
        return [
            self._copy(e) for e in self._edits.values() if e.provider_task_id is None and not e.is_terminal
        ]

    async def record_decline(self, fingerprint: str, at: float) -> None:
        self._declines[fingerprint] = at

    async def declined_since(self, fingerprint: str, since: float) -> float | None:
        at = self._declines.get(fingerprint)
        return at if at is not None and at >= since else None

    async def close(self) -> None:
        return None
