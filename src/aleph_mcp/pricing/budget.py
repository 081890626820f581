"""The spending budget: ALEPH_MCP_BUDGET_USD and ALEPH_MCP_BUDGET_EDITS over a rolling 24 hours.

Spend is summed from the store, which every process on the data dir shares, so the budget holds across
restarts and processes. The check runs inside the store's insert of the new edit (a `Gate`, one SQLite
transaction), so two processes cannot both squeeze under the cap.

What counts: every edit created in the window (queued ones waiting for capacity too) at its quoted cost, or
at the provider's own figure once it reports one (pricing/reported.py), except edits that can cost nothing:
free ones (`local`), ones that ended before their job existed (failed or cancelled without a task id), and
failed or cancelled ones at providers that state they do not bill those (prices.json `bills_failed` /
`bills_cancelled`: false). Where that is not stated, they count. An edit stored without an estimate is
re-quoted at today's prices (for the longest input its model processes); if that is unknown too it counts
as an edit but adds no dollars.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aleph_mcp.config import PriceOverride, Settings
from aleph_mcp.errors import BudgetExceeded, InvalidInput
from aleph_mcp.models import NANO, BillingClass, Edit, SpendGroup, billing_class, stored_cost
from aleph_mcp.pricing.catalog import Quote, price_of, quote
from aleph_mcp.records import cost_text, iso

WINDOW = 24 * 3600.0
EPSILON = 1e-9


def sure_margin(edits: int, usd: float) -> float:
    """How far a store's summed spend may be from the edit-by-edit sum of `check`: each summed cost is
    rounded to a nanodollar (0.5e-9 each), and a float sum of n terms errs by at most n ulps of its total.
    Only a spend this far under a cap is passed from the sums; closer, the edits are recounted."""
    return 1e-6 + edits * (1e-9 + 1e-15 * abs(usd))


@dataclass(frozen=True)
class Spend:
    """The counted edits of the window, oldest first, with what each is taken to cost (None: unknown)."""

    counted: list[tuple[Edit, float | None]]

    @property
    def usd(self) -> float:
        return sum(cost for _, cost in self.counted if cost is not None)

    @property
    def unknown(self) -> int:
        return sum(1 for _, cost in self.counted if cost is None)

    def describe(self) -> str:
        text = f"${self.usd:.2f} on {len(self.counted)} edit{'s' * (len(self.counted) != 1)}"
        if self.unknown:
            text += f" ({self.unknown} of unknown price, counted as $0)"
        return text


@dataclass(frozen=True)
class Budget:
    usd: float | None
    edits: int | None
    prices: Mapping[str, PriceOverride]
    usd_per_user: float | None = None  # each owner's own cap, beside the global ones
    # Whether a provider bills failed / cancelled jobs, per model: looked up in the catalog once.
    _billing_rules: dict[tuple[str, str, str], bool] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> Budget:
        return cls(settings.budget_usd, settings.budget_edits, settings.prices, settings.budget_usd_per_user)

    @property
    def active(self) -> bool:
        return self.usd is not None or self.edits is not None or self.usd_per_user is not None

    def gate(self, estimate: Quote, now: float, owner: str | None = None, count: int = 1) -> BudgetGate:
        return BudgetGate(self, estimate, now, now - WINDOW, owner, count)

    # -- what counts --------------------------------------------------------------------------------
    def counts(self, edit: Edit) -> bool:
        """Whether the provider may bill this edit (unknown: yes)."""
        return self._counts(edit.provider, edit.model, billing_class(edit))

    def _counts(self, provider: str, model: str, billing: BillingClass) -> bool:
        if billing in ("billed", "refused"):
            return billing == "billed"
        known = self._billing_rules.get((provider, model, billing))
        if known is None:
            known = self._billing_rules[provider, model, billing] = self._bills(provider, model, billing)
        return known

    def _bills(self, provider: str, model: str, billing: BillingClass) -> bool:
        try:
            price = price_of(provider, model, self.prices)
        except KeyError:  # a model no longer in the catalog
            return True
        stated = price.bills_failed if billing == "failed" else price.bills_cancelled
        return stated is not False

    def cost(self, edit: Edit) -> float | None:
        """The provider's own figure once it reported one (0 when it refunded the job), else the quote."""
        cost = stored_cost(edit)
        return cost if cost is not None else self._requote(edit.provider, edit.model)

    def _requote(self, provider: str, model: str) -> float | None:
        try:
            return quote(provider, model, None, overrides=self.prices).usd
        except InvalidInput:
            return None

    def spend(self, recent: Sequence[Edit]) -> Spend:
        counted = [(e, self.cost(e)) for e in sorted(recent, key=lambda e: e.created_at) if self.counts(e)]
        return Spend([(e, cost) for e, cost in counted if cost != 0])  # free edits spend nothing

    def tally(self, groups: Sequence[SpendGroup]) -> tuple[int, float] | None:
        """(counted edits, their dollars) from a store's sums: what `spend` finds edit by edit, within
        `sure_margin`. None when an outlier cost (negative, huge) is counted: only a recount can say."""
        edits, usd = 0, 0.0
        for group in groups:
            if not group.edits or not self._counts(group.provider, group.model, group.billing):
                continue
            if group.kind == "outlier":
                return None
            if group.kind == "summed":
                edits, usd = edits + group.edits - group.free, usd + group.nano / NANO
                continue
            cost = self._requote(group.provider, group.model)
            if cost != 0:  # free edits spend nothing; an unknown price counts the edit, not dollars
                edits, usd = edits + group.edits, usd + (cost or 0.0) * group.edits
        return edits, usd

    # -- the check ----------------------------------------------------------------------------------
    def admits(
        self,
        estimate: Quote,
        everyone: Sequence[SpendGroup],
        own: Sequence[SpendGroup] | None = None,
        count: int = 1,
    ) -> bool:
        """True when `check(estimate, ...)` would pass for sure, from the window's sums alone (`own`: the
        owner's, for the per-user cap; None: no owner; `count`: the billable edits the estimate covers).
        False: `check` with the edits decides."""
        if not self.active or estimate.usd == 0:
            return True
        if (self.usd is not None or self.usd_per_user is not None) and estimate.usd is None:
            return False
        per_user, usd = self.usd_per_user, estimate.usd
        if (
            per_user is not None
            and own is not None
            and usd is not None
            and not _under(self.tally(own), usd, per_user)
        ):
            return False
        total = self.tally(everyone)
        if total is None or (self.edits is not None and total[0] + count > self.edits):
            return False
        return self.usd is None or _under(total, estimate.usd or 0.0, self.usd)

    def check(
        self,
        estimate: Quote,
        recent: Sequence[Edit],
        now: float,
        owner: str | None = None,
        count: int = 1,
    ) -> None:
        """Raise BudgetExceeded when this edit would pass a cap; `recent`: the edits of the last 24 h.
        With `owner`, that owner's own edits are held to ALEPH_MCP_BUDGET_USD_PER_USER too. `count`: how
        many billable edits the estimate covers (a whole-clip job's windows)."""
        if not self.active or estimate.usd == 0:
            return  # a free edit spends nothing
        if (self.usd is not None or self.usd_per_user is not None) and estimate.usd is None:
            raise BudgetExceeded(_unknown_price(estimate), code="price_unknown")
        if self.usd_per_user is not None and owner is not None and estimate.usd is not None:
            own = self.spend([e for e in recent if e.owner == owner and e.created_at >= now - WINDOW])
            if own.usd + estimate.usd > self.usd_per_user + EPSILON:
                raise BudgetExceeded(self._too_much_for_one(estimate, own))
        spend = self.spend([e for e in recent if e.created_at >= now - WINDOW])
        if self.edits is not None and len(spend.counted) + count > self.edits:
            raise BudgetExceeded(self._too_many(spend, now, count))
        if (
            self.usd is not None
            and estimate.usd is not None
            and spend.usd + estimate.usd > self.usd + EPSILON
        ):
            raise BudgetExceeded(self._too_much(estimate, spend, now))

    def status(
        self,
        estimate: Quote,
        recent: Sequence[Edit],
        now: float,
        owner: str | None = None,
        count: int = 1,
    ) -> str | None:
        """For a dry run: whether a real call would pass the budget, and how much of it is used."""
        if not self.active:
            return None
        try:
            self.check(estimate, recent, now, owner, count)
        except BudgetExceeded as exc:
            return f"A real call would be refused. {exc.message}"
        spend = self.spend(recent)
        caps = []
        if self.usd is not None:
            caps.append(f"ALEPH_MCP_BUDGET_USD ${self.usd:.2f}")
        if self.edits is not None:
            caps.append(f"ALEPH_MCP_BUDGET_EDITS {self.edits}")
        return f"Within the budget ({', '.join(caps)}): {spend.describe()} in the last 24 hours."

    def _too_many(self, spend: Spend, now: float, count: int = 1) -> str:
        assert self.edits is not None
        used = len(spend.counted)
        text = (
            f"Refused before spending: {used} billable edit{'s' * (used != 1)} started in the last 24 hours "
            f"({spend.describe()}) and ALEPH_MCP_BUDGET_EDITS allows {self.edits}. "
        )
        if count > 1:
            text += f"This whole-clip edit is {count} billable edits (one per window). "
        if count > self.edits:
            return text + "Raise ALEPH_MCP_BUDGET_EDITS, or trim the clip to fewer windows. Nothing was sent."
        if self.edits == 0:
            return (
                text + "Nothing was sent. Raise ALEPH_MCP_BUDGET_EDITS to allow edits (local ones are free)."
            )
        leaving = spend.counted[used + count - 1 - self.edits][0]  # once it leaves the window, room enough
        return text + _frees(leaving, now) + " Nothing was sent."

    def _too_much_for_one(self, estimate: Quote, own: Spend) -> str:
        assert self.usd_per_user is not None and estimate.usd is not None
        cost = cost_text(estimate.usd, cost_basis(estimate))
        return (
            f"Refused before spending: this edit is estimated at {cost}; "
            f"your edits spent {own.describe()} in the last 24 hours, and each user may spend "
            f"${self.usd_per_user:.2f} (ALEPH_MCP_BUDGET_USD_PER_USER). Nothing was sent."
        )

    def _too_much(self, estimate: Quote, spend: Spend, now: float) -> str:
        assert self.usd is not None and estimate.usd is not None
        cost = cost_text(estimate.usd, cost_basis(estimate))
        text = (
            f"Refused before spending: this edit is estimated at {cost}; "
            f"{spend.describe()} in the last 24 hours, and ALEPH_MCP_BUDGET_USD is ${self.usd:.2f} "
            f"(${max(0.0, self.usd - spend.usd):.2f} left). "
        )
        if estimate.usd > self.usd + EPSILON:
            return text + (
                "This edit alone costs more than the whole budget: raise ALEPH_MCP_BUDGET_USD, or choose a "
                "cheaper model or a shorter clip (list_providers shows prices). Nothing was sent."
            )
        needed, freed = spend.usd + estimate.usd - self.usd, 0.0
        for edit, each in spend.counted:
            freed += each or 0.0
            if freed + EPSILON >= needed:
                return text + _frees(edit, now) + " Nothing was sent."
        return text + "Nothing was sent."  # unreachable with known costs; kept for safety


def _under(total: tuple[int, float] | None, more: float, cap: float) -> bool:
    """Whether `more` dollars on top of the summed `total` stay under `cap` for sure."""
    return total is not None and total[1] + more <= cap - sure_margin(total[0], total[1])


@dataclass(frozen=True)
class BudgetGate:
    """The budget check for one new edit, run by the store inside the insert (store.Gate)."""

    budget: Budget
    estimate: Quote
    now: float
    since: float
    owner: str | None = None
    count: int = 1

    def check(self, recent: list[Edit]) -> None:
        self.budget.check(self.estimate, recent, self.now, self.owner, self.count)

    @property
    def sums_owner(self) -> str | None:
        """Whose own sums `admits` needs besides everyone's: the owner's, under a per-user cap."""
        return self.owner if self.budget.usd_per_user is not None else None

    def admits(self, everyone: list[SpendGroup], own: list[SpendGroup]) -> bool:
        own_sums = own if self.sums_owner is not None else None
        return self.budget.admits(self.estimate, everyone, own_sums, self.count)


def estimate_cost(
    provider: str, model: str, seconds: float | None, prices: Mapping[str, PriceOverride]
) -> Quote:
    """catalog.quote, or an unknown quote for a provider or model the price catalog does not list."""
    try:
        return quote(provider, model, seconds, overrides=prices)
    except InvalidInput:
        basis = f"{provider}/{model} is not in the price catalog"
        return Quote(
            provider=provider,
            model=model,
            usd=None,
            known=False,
            basis=basis,
            origin="catalog",
            source=basis,
            as_of=None,
        )


def asks_first(estimate: Quote, threshold: float | None) -> bool:
    """ALEPH_MCP_CONFIRM_ABOVE_USD: ask the person before an edit quoted above it, or of unknown cost."""
    if threshold is None or estimate.usd == 0:
        return False
    return estimate.usd is None or estimate.usd > threshold + EPSILON


def cost_basis(estimate: Quote) -> str:
    """A short `cost_basis` for the record: the quote's arithmetic, or in a few words why there is none."""
    if estimate.usd == 0:
        return "free"
    if estimate.known:
        text = estimate.basis
        if text.endswith(")") and " (" in text:  # read as "5 s × $0.15/s; only the first 5 s …"
            text = text.replace(" (", "; ", 1)[:-1]
        return text + ("; your price" if estimate.origin == "user" else "")
    if estimate.basis.startswith("$"):  # a per-second price, and the input's length could not be read
        return estimate.basis.split(",")[0] + "; the input's length is unknown"
    return f"no known price for {estimate.provider}/{estimate.model}; set ALEPH_MCP_PRICES"


def _frees(edit: Edit, now: float) -> str:
    at = edit.created_at + WINDOW
    hours, minutes = divmod(math.ceil(max(0.0, at - now) / 60), 60)
    return (
        f"Budget frees up at {iso(at)} (in about {hours} h {minutes} min), when edit {edit.edit_id} "
        f"(started {iso(edit.created_at)}) leaves the 24-hour window."
    )


def _unknown_price(estimate: Quote) -> str:
    key = f"{estimate.provider}/{estimate.model}"
    example = json.dumps({key: 0.5})
    return (
        f"Refused before spending: the cost of this {key} edit is unknown ({cost_basis(estimate)}), so it "
        f"cannot be checked against ALEPH_MCP_BUDGET_USD. Set its price in the server's environment, e.g. "
        f"ALEPH_MCP_PRICES='{example}' (USD per edit) or "
        f'{{"usd": 0.15, "per": "second"}} per second of video, and restart the server; or choose a '
        "provider whose price is known (list_providers). Nothing was sent."
    )
