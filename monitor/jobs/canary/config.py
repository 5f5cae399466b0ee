"""The `compare:` and `canary:` config sections."""

from __future__ import annotations

from pydantic import Field, model_validator

from monitor.core.config import Duration, Section


class CompareConfig(Section):
    """How `driftwatch compare` and the canary compare two sides."""

    alpha: float = Field(default=0.01, gt=0, lt=1)  # false-discovery rate across the measures
    min_samples: int = Field(default=30, ge=10)  # per side and measure
    #: calls per side whose numbers (latency, errors, tokens) are compared, a uniform sample
    sample_cap: int = Field(default=5_000, ge=10, le=200_000)
    #: completions per side scored for toxicity and embedded for drift, a uniform sample
    text_cap: int = Field(default=300, ge=10, le=5_000)
    permutations: int = Field(default=500, ge=99, le=10_000)  # of the drift tests
    #: evaluation names compared (pass rate and mean score each), the most common of those
    #: both sides carry; each side reads at most `sample_cap` evaluations per name
    max_evaluations: int = Field(default=5, ge=0, le=20)

    @model_validator(mode="after")
    def _caps(self) -> CompareConfig:
        for name in ("sample_cap", "text_cap"):
            if getattr(self, name) < self.min_samples:
                raise ValueError(f"{name}: must be at least min_samples ({self.min_samples}), "
                                 f"got: {getattr(self, name)}")
        return self


class CanaryConfig(Section):
    """The `canary` job: each service's newest `service.version` against the one before."""

    enabled: bool = True
    interval: Duration = 300.0
    #: a version is compared while it is newer than this (since its first call); the
    #: previous version's calls are read from this long before the new one appeared
    window: Duration = 6 * 3600.0
    min_samples: int = Field(default=30, ge=10)  # calls of each version before a verdict
    alpha: float = Field(default=0.01, gt=0, lt=1)
