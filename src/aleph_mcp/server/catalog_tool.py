"""The list_providers tool: the catalog as agents see it (configured-ness, limits, abilities, prices)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import mcp.types as types
from pydantic import Field

from aleph_mcp.config import ALL_PROVIDERS, PriceOverride, ProviderName
from aleph_mcp.models import ASPECT_RATIOS, AspectRatio, Lean
from aleph_mcp.pricing.catalog import ADAPTERS, Price, facts_of, price_of, price_table, quote
from aleph_mcp.server.registration import Registrations
from aleph_mcp.server.state import Ctx, state_of


class ModelInfo(Lean):
    name: str
    default: bool = Field(description="Used when none is named")
    price: Price
    edit_usd: float | None = Field(
        description="One edit's cost (per-second prices times the most it processes); null: unknown"
    )
    reference_image: bool
    duration: str = Field(description="How much of the input it edits")
    max_processed_seconds: float | None = Field(description="Seconds of input used; null: all")


class InputLimits(Lean):
    max_prompt_chars: int = Field(description="In UTF-16 code units")
    max_url_input_bytes: int | None = Field(description="By https URL; null: not documented")
    data_uri_max_bytes: int | None = Field(description="As a data: URI; null: not accepted")
    upload_max_bytes: int | None = Field(description="A local file; null: not accepted")


class ProviderAbilities(Lean):
    cancel: bool
    upload: bool = Field(description="Takes local files")
    reference_image: bool = Field(description="With at least one of its models")
    watermark: bool
    seed: bool
    data_uri: bool


class ProviderInfo(Lean):
    name: ProviderName
    configured: bool = Field(description="Has an API key here")
    default: bool = Field(description="Used when none is named")
    models: list[ModelInfo]
    aspect_ratios: list[AspectRatio] = Field(description="Accepted `aspect_ratio` values")
    limits: InputLimits
    can: ProviderAbilities
    typical_render: str


class ProviderCatalog(Lean):
    providers: list[ProviderInfo]
    default_provider: str
    currency: Literal["USD"] = "USD"
    prices_checked: str = Field(description="When prices were read (YYYY-MM)")
    prices_note: str


def _model_info(provider: ProviderName, model: str, overrides: Mapping[str, PriceOverride]) -> ModelInfo:
    facts = facts_of(provider, model)
    caps = ADAPTERS[provider]
    return ModelInfo(
        name=model,
        default=model == caps.default_model,
        price=price_of(provider, model, overrides),
        edit_usd=quote(provider, model, None, overrides=overrides).usd,
        reference_image=caps.reference_image if facts.reference_image is None else facts.reference_image,
        duration=facts.duration,
        max_processed_seconds=facts.max_processed_seconds,
    )


def provider_info(
    name: ProviderName, *, configured: bool, default: bool, overrides: Mapping[str, PriceOverride]
) -> ProviderInfo:
    caps = ADAPTERS[name]
    uploads = caps.can_upload or caps.reads_files_in_place
    return ProviderInfo(
        name=name,
        configured=configured,
        default=default,
        models=[_model_info(name, m, overrides) for m in caps.models],
        aspect_ratios=[r for r in ASPECT_RATIOS if r in caps.aspect_ratios],
        limits=InputLimits(
            max_prompt_chars=caps.max_prompt_chars,
            max_url_input_bytes=caps.url_max_bytes if caps.accepts_urls else None,
            data_uri_max_bytes=caps.data_uri_max_bytes,
            upload_max_bytes=caps.upload_max_bytes if uploads else None,
        ),
        can=ProviderAbilities(
            cancel=caps.can_cancel,
            upload=uploads,
            reference_image=caps.reference_image,
            watermark=caps.watermark,
            seed=caps.seed,
            data_uri=caps.data_uri_max_bytes is not None,
        ),
        typical_render=caps.typical_render,
    )


catalog_tools = Registrations()


@catalog_tools.tool(
    title="List providers, limits and prices",
    annotations=types.ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False),
)
async def list_providers(ctx: Ctx) -> ProviderCatalog:
    """Every provider: configured here or not, models, aspect ratios, input limits, abilities, render time
    and price per edit where known (unknown: null, never guessed). Use it to choose before edit_video."""
    state = state_of(ctx)
    settings = state.settings
    live = state.service.providers
    table = price_table()
    return ProviderCatalog(
        providers=[
            provider_info(
                name,
                configured=not ADAPTERS[name].needs_key or name in live,
                default=name == settings.resolved_default_provider,
                overrides=settings.prices,
            )
            for name in ALL_PROVIDERS
        ],
        default_provider=settings.resolved_default_provider,
        prices_checked=table.checked,
        prices_note=table.about,
    )


__all__ = ["ProviderCatalog", "catalog_tools"]
