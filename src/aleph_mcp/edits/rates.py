"""Per-provider request pacing: so thousands of edits in flight never hammer one host.

No provider publishes a numeric request-rate limit for its status endpoint (providers.md: kie's caps are
set per key in its dashboard, Runway says it has none per minute, the others say nothing), so the pace is
a setting: `ALEPH_MCP_POLL_REQUESTS_PER_SECOND` for every provider, `ALEPH_MCP_<P>_REQUESTS_PER_SECOND`
for one. Requests are spaced evenly (no bursts): each waits for the next free slot of its provider.
"""

from __future__ import annotations

from collections.abc import Mapping

import anyio


class Pace:
    """Evenly spaced slots at `rate` per second (None: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self.gap = 1.0 / rate if rate else 0.0
        self._next = 0.0  # anyio's clock: when the next slot opens

    def backlog(self) -> float:
        """Seconds until a request asked for now would go out."""
        return max(0.0, self._next - anyio.current_time())

    async def slot(self) -> None:
        if not self.gap:
            return
        now = anyio.current_time()
        at = max(now, self._next)
        self._next = at + self.gap  # taken before the wait: the callers queue in order
        if at > now:
            await anyio.sleep(at - now)


class Paces:
    """One `Pace` per provider, made on first use."""

    def __init__(self, rates: Mapping[str, float | None] | None = None, default: float | None = None) -> None:
        self.rates = dict(rates or {})
        self.default = default
        self._paces: dict[str, Pace] = {}

    def of(self, provider: str) -> Pace:
        pace = self._paces.get(provider)
        if pace is None:
            pace = self._paces[provider] = Pace(self.rates.get(provider, self.default))
        return pace
