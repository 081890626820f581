"""What the adapter test modules share: sample inputs, Runway's pixel ratios, and submit/poll helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import httpx2
import pytest

from aleph_mcp.errors import ProviderError
from aleph_mcp.models import ASPECT_RATIOS, AspectRatio, EditRequest, RemoteStatus
from aleph_mcp.providers.base import Provider
from tests.fakes.base import FakeAPI

VIDEO = "https://cdn.example.com/in/clip.mp4"
STYLE = "https://cdn.example.com/in/style.png"
# Our ratios as the pixel sizes Runway's gen4_aleph takes (Runway itself, Krea and AI/ML API send these).
RUNWAY_PIXELS: dict[AspectRatio, str] = dict(
    zip(ASPECT_RATIOS, ("1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"), strict=True)
)

P = TypeVar("P", bound=Provider)
Build = Callable[[httpx2.AsyncClient, str], P]  # (client, API key) -> the adapter under test


@asynccontextmanager
async def connected(fake: FakeAPI, build: Build[P], api_key: str | None = None) -> AsyncIterator[P]:
    """The adapter `build` makes, on a client whose every request goes to `fake`."""
    async with httpx2.AsyncClient(transport=fake.transport()) as client:
        yield build(client, api_key or fake.api_key)


async def submit_error(
    fake: FakeAPI, build: Build[P], request: EditRequest, api_key: str | None = None
) -> ProviderError:
    """One submit that must fail; returns the error it raised."""
    async with connected(fake, build, api_key) as provider:
        with pytest.raises(ProviderError) as caught:
            await provider.submit(request)
    return caught.value


async def submit_and_poll(fake: FakeAPI, build: Build[P], request: EditRequest) -> RemoteStatus:
    """Submit `request` and read its status once."""
    async with connected(fake, build) as provider:
        return await provider.poll(await provider.submit(request))
