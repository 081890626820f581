"""What a provider itself reports an edit costs (Runway: credits), beside our quote.

The provider's credits are its own figure; the USD beside them is that figure at the credit price the catalog
assumes (Runway's $0.01 per credit comes from third-party pricing pages, see prices.json), so it is an
estimate. Once known, the budget counts it instead of the quote (budget.Budget.cost).
"""

from __future__ import annotations

import math

from aleph_mcp.models import Edit, RemoteStatus

# USD per credit of a provider that reports costs in credits (third-party figure for Runway).
USD_PER_CREDIT: dict[str, float] = {"runway": 0.01}


def credits_to_usd(provider: str, credits: float) -> float | None:
    rate = USD_PER_CREDIT.get(provider)
    return round(credits * rate, 6) if rate is not None else None


def record_reported_cost(edit: Edit, remote: RemoteStatus) -> None:
    """Keep the provider's newest cost figure; a final one is never replaced by a later estimate."""
    credits = remote.cost_credits
    if credits is None or not math.isfinite(credits) or credits < 0:
        return
    if edit.provider_cost_final and not remote.cost_final:
        return
    edit.provider_cost_credits = credits
    edit.provider_cost_usd = credits_to_usd(edit.provider, credits)
    edit.provider_cost_final = remote.cost_final
