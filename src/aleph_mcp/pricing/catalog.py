"""Provider catalog: what each provider takes and can do, and what an edit costs (see catalog_tool.py).

Capabilities come from the provider registry (each adapter's CAPABILITIES), prices from `prices.json`
(each with its source and date) or the user's ALEPH_MCP_PRICES. An unknown price stays unknown (None):
a quote never guesses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import WithJsonSchema

from aleph_mcp.config import PriceOverride
from aleph_mcp.errors import InvalidInput
from aleph_mcp.models import Lean
from aleph_mcp.providers.base import Capabilities, ModelFacts
from aleph_mcp.providers.registry import ALL_PROVIDERS, PROVIDERS

ADAPTERS: dict[str, Capabilities] = {spec.name: spec.capabilities for spec in PROVIDERS}
Per = Literal["edit", "second"]


# Per-model facts live next to each adapter's Capabilities; keyed "provider/model" here like prices.json.
MODEL_FACTS: dict[str, ModelFacts] = {
    f"{spec.name}/{model}": facts for spec in PROVIDERS for model, facts in spec.model_facts.items()
}


class ThirdPartyPrice(Lean):
    model_config = ConfigDict(extra="forbid")

    usd: float | None
    per: Per
    source: str
    as_of: str | None


THIRD_PARTY_SCHEMA = {
    "type": "array",
    "description": "Resellers' prices {usd, per, source, as_of}; never quoted",
}


class Price(Lean):
    """A model's price, as quoted."""

    model_config = ConfigDict(extra="forbid")

    usd: float | None = Field(description="USD per `per`; null: unknown")
    per: Per
    origin: Literal["catalog", "user"] = Field(default="catalog", description="user: from ALEPH_MCP_PRICES")
    source: str
    as_of: str | None = Field(default=None, description="YYYY-MM of the source")
    inferred: str | None = Field(default=None, description="What is inferred, not stated")
    note: str | None = None
    # Published as a plain list: shown for reference, never used in quotes.
    third_party: Annotated[list[ThirdPartyPrice], WithJsonSchema(THIRD_PARTY_SCHEMA)] = Field(
        default_factory=list
    )
    bills_failed: bool | None = Field(default=None, description="null: not stated")
    bills_cancelled: bool | None = None


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    about: str
    currency: Literal["USD"]
    checked: str
    checked_note: str
    prices: dict[str, Price]


class Quote(Lean):
    """What one edit is expected to cost. `usd` is None (and `known` False) when it cannot be told."""

    provider: str
    model: str
    usd: float | None
    known: bool
    basis: str = Field(description="How the figure was reached, or why there is none")
    origin: Literal["catalog", "user"]
    source: str
    as_of: str | None
    inferred: str | None = Field(default=None, description="What in the price is inferred, not stated")
    billed_seconds: float | None = None


@cache
def price_table() -> PriceTable:
    """prices.json, read from the installed package on first use."""
    text = resources.files(__package__ or "aleph_mcp").joinpath("prices.json").read_text(encoding="utf-8")
    return PriceTable.model_validate_json(text)


def model_names(provider: str) -> tuple[str, ...]:
    caps = ADAPTERS.get(provider)
    return caps.models if caps is not None else ()


def _resolve_model(provider: str, model: str | None) -> str:
    if provider not in ADAPTERS:
        raise InvalidInput(f"Unknown provider {provider!r}; choose one of {', '.join(ALL_PROVIDERS)}.")
    names = model_names(provider)
    if model is None:
        return names[0]
    if model not in names:
        raise InvalidInput(f"{provider} has no model {model!r}; choose one of {', '.join(names)}.")
    return model


def price_of(provider: str, model: str, overrides: Mapping[str, PriceOverride] | None = None) -> Price:
    """The user's override for provider/model (or the provider), else the catalog's entry."""
    listed = price_table().prices[f"{provider}/{model}"]
    for key in (f"{provider}/{model}", provider):
        override = (overrides or {}).get(key)
        if override is not None:
            return listed.model_copy(
                update={"usd": override.usd, "per": override.per, "origin": "user", "inferred": None}
                | {"source": f"ALEPH_MCP_PRICES[{key!r}]", "as_of": None}
            )
    return listed


def facts_of(provider: str, model: str) -> ModelFacts:
    return MODEL_FACTS[f"{provider}/{model}"]


def quote(
    provider: str,
    model: str | None,
    video_seconds: float | None,
    *,
    overrides: Mapping[str, PriceOverride] | None = None,
) -> Quote:
    """The expected cost of one edit of a `video_seconds`-long input (None: length unknown)."""
    if video_seconds is not None and not (math.isfinite(video_seconds) and video_seconds >= 0):
        raise InvalidInput(f"video_seconds must be a non-negative number, not {video_seconds!r}.")
    model = _resolve_model(provider, model)
    price = price_of(provider, model, overrides)

    def answer(usd: float | None, basis: str, seconds: float | None = None) -> Quote:
        common: dict[str, Any] = {"origin": price.origin, "source": price.source, "as_of": price.as_of}
        common |= {"inferred": price.inferred, "billed_seconds": seconds}
        return Quote(provider=provider, model=model, usd=usd, known=usd is not None, basis=basis, **common)

    if price.usd is None:
        return answer(None, _unknown_basis(provider, model, price))
    if price.per == "edit":
        return answer(price.usd, f"{_usd(price.usd)} per edit")
    seconds, why = _billed_seconds(provider, model, video_seconds)
    if seconds is None:
        return answer(None, f"{_usd(price.usd)} per second, but {why}")
    return answer(round(seconds * price.usd, 4), f"{seconds:g} s × {_usd(price.usd)}/s{why}", seconds)


def _billed_seconds(provider: str, model: str, video_seconds: float | None) -> tuple[float | None, str]:
    facts = facts_of(provider, model)
    cap = facts.max_processed_seconds
    if video_seconds is None:
        if cap is None or not facts.quote_unknown_length:
            return None, f"the input's length is unknown and {provider}/{model} bills all of it"
        return cap, f" (input length unknown: quoted for the {cap:g} s {model} processes at most)"
    if cap is not None and video_seconds > cap:
        return cap, f" (only the first {cap:g} s of the {video_seconds:g} s input are processed)"
    return video_seconds, ""


def _usd(value: float) -> str:
    return f"${value:.2f}" if round(value, 2) == value else f"${value:g}"


def _unknown_basis(provider: str, model: str, price: Price) -> str:
    text = f"No known price for {provider}/{model}: {price.source}"
    figures = [f"{_usd(t.usd)}/{t.per} ({t.source})" for t in price.third_party if t.usd is not None]
    if figures:
        text += f". Third-party resellers quote {'; '.join(figures)}; not used for this quote"
    return text + ". Set ALEPH_MCP_PRICES to quote it."


# -- the list_providers tool ---------------------------------------------------------------------------
