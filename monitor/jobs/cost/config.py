"""The `cost` config section: the spend-regression test and the daily budgets."""

from __future__ import annotations

from pydantic import Field

from monitor.core.config import Duration, Section
from monitor.jobs.config import ReferenceConfig, WindowedConfig


class BudgetConfig(Section):
    """A service's daily spend budget: burning it too fast raises LLMCostBudgetBurn."""

    daily_usd: float = Field(gt=0, allow_inf_nan=False)


class CostConfig(WindowedConfig):
    interval: Duration = 60.0
    window: Duration = 3600.0
    # spend follows the day: compare with the same hour yesterday
    reference: ReferenceConfig = ReferenceConfig(mode="trailing", offset=86400.0)
    min_samples: int = Field(default=30, ge=10)
    sample_cap: int = Field(default=5_000, ge=10)
    min_ratio: float = Field(default=1.2, ge=1)  # spend must grow at least this much
    budgets: dict[str, BudgetConfig] = Field(default_factory=dict)  # by service
