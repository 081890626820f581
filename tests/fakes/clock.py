"""A wall clock the test moves by hand, for the service, poller and budget's `clock=`."""

from __future__ import annotations

START = 1_800_000_000.0


class FakeClock:
    """Reads `now`; nothing moves it but the test."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
