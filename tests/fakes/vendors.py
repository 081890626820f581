"""Every fake vendor API by provider name, and the real adapter that talks to each."""

from __future__ import annotations

import httpx2

from aleph_mcp.providers.base import Provider
from aleph_mcp.providers.crun import CrunProvider
from aleph_mcp.providers.kie import KieProvider
from aleph_mcp.providers.krea import KreaProvider
from aleph_mcp.providers.runway import RunwayProvider

from .aimlapi import FakeAimlapi
from .base import FakeAPI
from .crun import FakeCrun
from .kie import FakeKie
from .krea import FakeKrea
from .runway import FakeRunway

FAKES: dict[str, type[FakeAPI]] = {
    "kie": FakeKie,
    "aimlapi": FakeAimlapi,
    "crun": FakeCrun,
    "krea": FakeKrea,
    "runway": FakeRunway,
}


def adapter_for(fake: FakeAPI, client: httpx2.AsyncClient, *, api_key: str, base_url: str) -> Provider:
    """The adapter for `fake`'s vendor, every base URL (kie's upload host too) set to `base_url`."""
    if isinstance(fake, FakeRunway):
        return RunwayProvider(client, api_key=api_key, base_url=base_url)
    if isinstance(fake, FakeKrea):
        return KreaProvider(client, api_key=api_key, base_url=base_url)
    if isinstance(fake, FakeKie):
        return KieProvider(client, api_key=api_key, base_url=base_url, upload_base_url=base_url)
    if isinstance(fake, FakeCrun):
        return CrunProvider(client, api_key=api_key, base_url=base_url)
    raise AssertionError(f"no adapter for {fake!r}")
