"""Edits that wait for a provider's capacity instead of failing.

A create answered 429 (a rate or concurrent-job limit: no job was made), or one that a configured
`ALEPH_MCP_<P>_MAX_CONCURRENT` holds back, leaves its edit `queued` with no task id: `submit_after` says when
to try again and `pending_request` holds the create, both in the store. Whichever process holds the edit's
lease when that time comes sends it (the poller's pass finds it through `next_poll_at`), after recording
`create_sent_at` (store.claim_create). So after a crash an edit either still waits (never sent: it is sent
later) or has `create_sent_at` (maybe sent: it fails `submit_outcome_unknown` and is never sent again).

An edit that gets no room by its deadline (`edit_timeout` after it was created) fails `capacity_timeout`;
nothing was sent, so nothing is billed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aleph_mcp.config import HOSTED_PROVIDERS, Settings
from aleph_mcp.edits.poll_policy import PollPolicy
from aleph_mcp.errors import ProviderError
from aleph_mcp.models import Edit, EditRequest

logger = logging.getLogger(__name__)

WAITING = "Waiting for {provider} capacity"


def capacity_limits(settings: Settings) -> dict[str, int]:
    """ALEPH_MCP_<P>_MAX_CONCURRENT of every hosted provider that sets one."""
    return {p: n for p in HOSTED_PROVIDERS if (n := settings.max_concurrent(p)) is not None}


def request_to_json(request: EditRequest) -> dict[str, Any]:
    return dataclasses.asdict(request)


def request_from_json(data: Mapping[str, Any]) -> EditRequest:
    names = {f.name for f in dataclasses.fields(EditRequest)}
    return EditRequest(**{k: v for k, v in data.items() if k in names})


def is_waiting_note(notes: str | None) -> bool:
    return notes is not None and notes.startswith("Waiting for ") and " capacity" in notes


class Capacity:
    """When a held-back edit is tried again, and when it has waited too long."""

    def __init__(self, limits: Mapping[str, int], policy: PollPolicy, clock: Callable[[], float]) -> None:
        self.limits = dict(limits)
        self.policy = policy
        self.clock = clock

    def limit(self, provider: str) -> int | None:
        return self.limits.get(provider)

    def deadline(self, edit: Edit) -> float:
        return edit.created_at + self.policy.edit_timeout

    def expired(self, edit: Edit) -> bool:
        return self.clock() >= self.deadline(edit)

    def hold(self, edit: Edit, request: EditRequest, refused: ProviderError | None) -> bool:
        """Leave the edit waiting (never sent) for its next try; False when that try would come after
        its deadline, in which case the edit is failed `capacity_timeout` instead."""
        now = self.clock()
        if refused is None:  # our own limit: a slot frees when one of the provider's jobs ends
            delay, why = self.policy.interval, self._full(edit.provider)
        else:
            edit.poll_failures += 1
            delay = self.policy.backoff(edit.poll_failures, refused.retry_after)
            why = f"{edit.provider} refused the create for now ({refused.message})"
            if refused.retry_after is not None and now + refused.retry_after > self.deadline(edit):
                self.give_up(edit, f"{edit.provider} asked to wait {refused.retry_after:.0f} s, past it")
                return False
        edit.create_sent_at = None  # proven not created: the refusal or our limit came before any job
        edit.submit_after = edit.next_poll_at = min(now + delay, self.deadline(edit))
        edit.pending_request = request_to_json(request)
        edit.notes = f"{WAITING.format(provider=edit.provider)}: {why}. Nothing was sent or billed yet."
        logger.info(
            "edit waits for capacity edit_id=%s provider=%s next_try_in=%.1f",
            edit.edit_id,
            edit.provider,
            edit.submit_after - now,
        )
        return True

    def give_up(self, edit: Edit, why: str = "") -> None:
        """Fail a never-sent edit whose deadline came: nothing was created, so nothing is billed."""
        minutes = self.policy.edit_timeout / 60
        message = (
            f"{edit.provider} had no capacity for this edit within its deadline of {minutes:.0f} minutes"
            f"{f' ({why})' if why else ''}. It was never sent, so nothing was billed. Submit it again "
            f"later, or choose another provider."
        )
        edit.fail("capacity_timeout", message, self.clock())
        logger.info("edit gave up waiting for capacity edit_id=%s provider=%s", edit.edit_id, edit.provider)

    def _full(self, provider: str) -> str:
        limit = self.limits.get(provider)
        return (
            f"{limit} of its jobs are unfinished and ALEPH_MCP_{provider.upper()}_MAX_CONCURRENT is {limit}"
        )
