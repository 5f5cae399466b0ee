"""What a cost result holds besides the common fields: spend and cost per call in the window
and the reference, the two tests' ratios and p-values, and the budget burn rates.

`to_json` writes the `details` object of `driftwatch status --json`; `from_json` reads it
back from the history. Imports nothing heavy, so the CLI can read it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.jobs.stored import mapping, number, optional_integer, text

DETECTOR = "cost"


@dataclass(frozen=True, slots=True, kw_only=True)
class CostDetails:
    """Counts and sums are exact; the rank test reads a uniform sample of the priced calls.
    `budget_burn` is {window: burn}, empty when the service has no budget (or the result is
    a model's: budgets are per service)."""

    count: int | None = None  # calls in the window, priced or not
    priced: int | None = None
    spend_usd: float | None = None
    spend_per_hour_usd: float | None = None
    cost_per_call_usd: float | None = None
    reference: str = ""
    reference_spend_per_hour_usd: float | None = None
    reference_cost_per_call_usd: float | None = None
    spend_ratio: float | None = None
    cost_per_call_ratio: float | None = None
    call_rate_ratio: float | None = None
    cost_per_call_p: float | None = None
    call_rate_p: float | None = None
    daily_budget_usd: float | None = None
    budget_burn: Mapping[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count, "priced": self.priced, "spend_usd": self.spend_usd,
            "spend_per_hour_usd": self.spend_per_hour_usd,
            "cost_per_call_usd": self.cost_per_call_usd, "reference": self.reference,
            "reference_spend_per_hour_usd": self.reference_spend_per_hour_usd,
            "reference_cost_per_call_usd": self.reference_cost_per_call_usd,
            "spend_ratio": self.spend_ratio, "cost_per_call_ratio": self.cost_per_call_ratio,
            "call_rate_ratio": self.call_rate_ratio, "cost_per_call_p": self.cost_per_call_p,
            "call_rate_p": self.call_rate_p, "daily_budget_usd": self.daily_budget_usd,
            "budget_burn": dict(self.budget_burn)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CostDetails:
        return cls(
            count=optional_integer(data.get("count")),
            priced=optional_integer(data.get("priced")),
            spend_usd=number(data.get("spend_usd")),
            spend_per_hour_usd=number(data.get("spend_per_hour_usd")),
            cost_per_call_usd=number(data.get("cost_per_call_usd")),
            reference=text(data.get("reference")),
            reference_spend_per_hour_usd=number(data.get("reference_spend_per_hour_usd")),
            reference_cost_per_call_usd=number(data.get("reference_cost_per_call_usd")),
            spend_ratio=number(data.get("spend_ratio")),
            cost_per_call_ratio=number(data.get("cost_per_call_ratio")),
            call_rate_ratio=number(data.get("call_rate_ratio")),
            cost_per_call_p=number(data.get("cost_per_call_p")),
            call_rate_p=number(data.get("call_rate_p")),
            daily_budget_usd=number(data.get("daily_budget_usd")),
            budget_burn={str(w): number(b) for w, b in mapping(data.get("budget_burn")).items()})
