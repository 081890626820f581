"""When to read an edit's status again: adaptive intervals with jitter, backoff after failures."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PollPolicy:
    interval: float = 5.0  # first wait between status reads
    max_interval: float = 60.0  # the longest wait
    edit_timeout: float = 7200.0  # unfinished after this long: failed
    concurrency: int = 4
    lease_seconds: float = 120.0  # a crashed process's claim on an edit expires after this
    jitter: float = 0.2

    def next_delay(self, polls: int, rng: Callable[[], float] = random.random) -> float:
        """Adaptive: renders take minutes, so read often at first and back off to max_interval.

        Jitter never takes the wait below `interval` (a provider's polling floor) or above `max_interval`.
        """
        base = min(self.max_interval, self.interval * math.pow(1.5, min(polls, 20)))
        return self._bounded(base * (1 + self.jitter * (2 * rng() - 1)))

    def backoff(
        self, failures: int, retry_after: float | None, rng: Callable[[], float] = random.random
    ) -> float:
        """After a transient failure: exponential with jitter, never sooner than Retry-After."""
        delay = min(self.max_interval, self.interval * math.pow(2, min(failures, 20))) * (0.5 + rng())
        return max(self._bounded(delay), retry_after or 0.0)

    def _bounded(self, delay: float) -> float:
        return min(self.max_interval, max(self.interval, delay))
