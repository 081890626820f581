"""The server's HTTP client, made when it is first used rather than at start-up.

Making an `httpx2.AsyncClient` loads the system's CA certificates (20-30 ms on a busy machine). At start-up
that is inside the lifespan, before `initialize` can be answered, and a stdio session with the offline
provider, or one that only reads edits, never sends a request at all. The first provider call, download or
URL probe makes the real client (by then nothing else is waiting for the CPU); closing one that was never
made does nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import httpx2


class FirstUseClient:
    """Stands in for the client: every attribute is the real client's, made by `make` on first access."""

    def __init__(self, make: Callable[[], httpx2.AsyncClient]) -> None:
        self._make = make
        self._client: httpx2.AsyncClient | None = None

    @property
    def made(self) -> bool:
        return self._client is not None

    def __getattr__(self, name: str) -> Any:  # only for what this class does not define itself
        if self._client is None:
            self._client = self._make()
        return getattr(self._client, name)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    def as_client(self) -> httpx2.AsyncClient:
        return cast(httpx2.AsyncClient, self)
