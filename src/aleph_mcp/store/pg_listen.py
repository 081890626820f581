"""LISTEN/NOTIFY for the PostgreSQL store: how one replica's writes reach every other at once.

Writers NOTIFY inside their own transaction (postgres.py), so a listener hears of a change only once it is
committed and readable. `announcements` holds one connection that LISTENs and yields what it hears; when the
connection drops it reconnects (backing off) and yields "resync", so the reader catches up on what it missed
with one `changed_since` read instead of polling.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import psycopg

from aleph_mcp.redact import scrub_url_secrets
from aleph_mcp.store.base import Announcement

logger = logging.getLogger(__name__)

CHANGES = "aleph_edits"  # payload: [edit_id, updated_at]
POKES = "aleph_poke"  # payload: [edit_id, lease holder]
FIRST_RETRY, LONGEST_RETRY = 0.2, 10.0
# Keepalives: a connection the network dropped silently is noticed within a minute, not never.
KEEPALIVE: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 20,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


# A change's payload as SQL, over a CTE `changed(edit_id, updated_at)` (postgres.py); float8 prints exactly.
CHANGE_PAYLOAD = "json_build_array(changed.edit_id, changed.updated_at)::text"


def parse(channel: str, payload: str) -> Announcement | None:
    try:
        edit_id, value = json.loads(payload)
        if channel == CHANGES:
            return Announcement("changed", str(edit_id), float(value))
        if channel == POKES:
            return Announcement("poke", str(edit_id), holder=None if value is None else str(value))
    except (ValueError, TypeError):
        logger.warning("ignoring a malformed notification on %s", channel)
    return None


async def announcements(url: str, where: str) -> AsyncGenerator[Announcement, None]:
    """Every change and poke any replica announces, for as long as the caller reads (close it with
    `contextlib.aclosing`); "resync" first, and again after each reconnection."""
    delay = FIRST_RETRY
    while True:
        try:
            async with await psycopg.AsyncConnection.connect(url, autocommit=True, **KEEPALIVE) as conn:
                await conn.execute(f"LISTEN {CHANGES}")
                await conn.execute(f"LISTEN {POKES}")
                delay = FIRST_RETRY
                yield Announcement("resync")
                async for note in conn.notifies():
                    announcement = parse(note.channel, note.payload)
                    if announcement is not None:
                        yield announcement
        except psycopg.Error as exc:
            reason = scrub_url_secrets(str(exc) or type(exc).__name__, url)
            logger.warning("listening to %s failed (%s); again in %.1f s", where, reason, delay)
        await anyio.sleep(delay)
        delay = min(delay * 2, LONGEST_RETRY)
