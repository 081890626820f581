"""Provider adapters: one module per hosted API, plus the offline `local` provider."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx2

    from aleph_mcp.config import Settings
    from aleph_mcp.providers.base import Provider


def build_providers(settings: Settings, client: httpx2.AsyncClient) -> dict[str, Provider]:
    """Every hosted provider that has a key, plus `local` (always available, needs no key)."""
    from aleph_mcp.providers.aimlapi import AimlapiProvider
    from aleph_mcp.providers.crun import CrunProvider
    from aleph_mcp.providers.kie import KieProvider
    from aleph_mcp.providers.krea import KreaProvider
    from aleph_mcp.providers.local import LocalProvider
    from aleph_mcp.providers.runway import RunwayProvider

    providers: dict[str, Provider] = {}
    timeout = settings.request_timeout
    if key := settings.api_key("kie"):
        providers["kie"] = KieProvider(
            client,
            api_key=key,
            base_url=settings.base_url("kie"),
            timeout=timeout,
            upload_base_url=settings.kie_upload_base_url.rstrip("/"),
        )
    if key := settings.api_key("aimlapi"):
        providers["aimlapi"] = AimlapiProvider(
            client, api_key=key, base_url=settings.base_url("aimlapi"), timeout=timeout
        )
    if key := settings.api_key("crun"):
        providers["crun"] = CrunProvider(
            client, api_key=key, base_url=settings.base_url("crun"), timeout=timeout
        )
    if key := settings.api_key("krea"):
        providers["krea"] = KreaProvider(
            client, api_key=key, base_url=settings.base_url("krea"), timeout=timeout
        )
    if key := settings.api_key("runway"):
        providers["runway"] = RunwayProvider(
            client, api_key=key, base_url=settings.base_url("runway"), timeout=timeout
        )
    providers["local"] = LocalProvider(settings.data_dir / "local-jobs")
    return providers
