"""The `pricing` config section: USD per million tokens, per provider and model.

An entry names one model (`model`, compared case-insensitively) or a family of them
(`pattern`, a regular expression matched against the whole name), optionally for one
provider only. Your entries are searched before the shipped table (`monitor.pricing.defaults`),
which `defaults: false` leaves out; `enabled: false` prices nothing.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from monitor.core.config import Section

Usd = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class ModelPrice(Section):
    """One price: USD per million input, output and cached-input tokens."""

    provider: str | None = None  # gen_ai.provider.name as driftwatch spells it; unset: any
    model: str | None = None
    pattern: str | None = None
    input_usd_per_million: Usd
    output_usd_per_million: Usd
    # prompt-cache reads; unset: the input price (no discount)
    cached_input_usd_per_million: Usd | None = None

    @field_validator("provider", "model")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(f"must not be empty, got: {value!r}")
        return value.strip().lower() if value is not None else None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value:
            raise ValueError("must not be empty, got: ''")
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression ({exc}), got: {value!r}") from None
        return value

    @model_validator(mode="after")
    def _one_name(self) -> ModelPrice:
        if (self.model is None) == (self.pattern is None):
            raise ValueError("give either model or pattern (not both, not neither), got: "
                             f"model={self.model!r}, pattern={self.pattern!r}")
        return self

    @property
    def cached_input(self) -> float:
        cached = self.cached_input_usd_per_million
        return self.input_usd_per_million if cached is None else cached


class PricingConfig(Section):
    enabled: bool = True
    defaults: bool = True  # the shipped table beneath `models`
    models: tuple[ModelPrice, ...] = ()

    @model_validator(mode="after")
    def _each_name_once(self) -> PricingConfig:
        seen: dict[tuple[str | None, str | None, str | None], int] = {}
        for i, entry in enumerate(self.models):
            key = (entry.provider, entry.model, entry.pattern)
            if key in seen:
                name = entry.model or entry.pattern
                raise ValueError(f"models.{i}: {name!r} for provider {entry.provider!r} is "
                                 f"already priced by models.{seen[key]}, got: {name!r}")
            seen[key] = i
        return self
