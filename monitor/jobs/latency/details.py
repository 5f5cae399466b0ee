"""What a latency result holds besides the common fields: traffic, errors, duration and
time-to-first-token quantiles, the regression against the reference, and SLO burn rates.

`to_json` writes the `details` object of `driftwatch status --json` (a public contract);
`from_json` reads it back from the history, rows of earlier versions included. Imports
nothing heavy, so the CLI can read it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.core.records import Details
from monitor.jobs.stored import integer, items, mapping, number, optional_integer, text

DETECTOR = "latency"  # the job's and its results' name

QUANTILES = ("50", "90", "95", "99")  # of call duration: p50_s ... p99_s
TTFT_QUANTILES = ("50", "95")  # of time to first token: ttft_p50_s, ttft_p95_s


@dataclass(frozen=True, slots=True, kw_only=True)
class LatencyDetails:
    """Counts are exact; quantiles and tokens come from a uniform sample of the window.
    `burn_rates` is {slo: {window: burn}}, None where the window is longer than the store
    keeps calls."""

    count: int | None = None  # None only in rows that lack it: unknown, not "no calls"
    rate_per_s: float | None = None
    errors: int | None = None
    error_rate: float | None = None
    errors_by_type: Mapping[str, int] = field(default_factory=dict)
    p50_s: float | None = None
    p90_s: float | None = None
    p95_s: float | None = None
    p99_s: float | None = None
    ttft_p50_s: float | None = None
    ttft_p95_s: float | None = None
    output_tokens_per_s: float | None = None
    tokens_per_call: float | None = None
    reference: str = ""  # the reference window, described
    reference_p95_s: float | None = None
    p95_ratio: float | None = None
    p95_ratio_ci: tuple[float | None, float | None] | None = None  # bootstrap 95%
    burn_rates: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)

    def quantile(self, q: str) -> float | None:
        """p`q` of call duration, q one of QUANTILES."""
        return {"50": self.p50_s, "90": self.p90_s, "95": self.p95_s, "99": self.p99_s}[q]

    def ttft_quantile(self, q: str) -> float | None:
        return {"50": self.ttft_p50_s, "95": self.ttft_p95_s}[q]

    def to_json(self) -> dict[str, Any]:
        return {
            "count": self.count, "rate_per_s": self.rate_per_s, "errors": self.errors,
            "error_rate": self.error_rate, "errors_by_type": dict(self.errors_by_type),
            "p50_s": self.p50_s, "p90_s": self.p90_s, "p95_s": self.p95_s, "p99_s": self.p99_s,
            "ttft_p50_s": self.ttft_p50_s, "ttft_p95_s": self.ttft_p95_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "tokens_per_call": self.tokens_per_call, "reference": self.reference,
            "reference_p95_s": self.reference_p95_s, "p95_ratio": self.p95_ratio,
            "p95_ratio_ci": None if self.p95_ratio_ci is None else list(self.p95_ratio_ci),
            "burn_rates": {slo: dict(windows) for slo, windows in self.burn_rates.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LatencyDetails:
        ci = items(data.get("p95_ratio_ci"))
        return cls(
            count=optional_integer(data.get("count")),
            rate_per_s=number(data.get("rate_per_s")),
            errors=optional_integer(data.get("errors")),
            error_rate=number(data.get("error_rate")),
            errors_by_type={str(k): integer(v)
                            for k, v in mapping(data.get("errors_by_type")).items()},
            p50_s=number(data.get("p50_s")), p90_s=number(data.get("p90_s")),
            p95_s=number(data.get("p95_s")), p99_s=number(data.get("p99_s")),
            ttft_p50_s=number(data.get("ttft_p50_s")), ttft_p95_s=number(data.get("ttft_p95_s")),
            output_tokens_per_s=number(data.get("output_tokens_per_s")),
            tokens_per_call=number(data.get("tokens_per_call")),
            reference=text(data.get("reference")),
            reference_p95_s=number(data.get("reference_p95_s")),
            p95_ratio=number(data.get("p95_ratio")),
            p95_ratio_ci=(number(ci[0]), number(ci[1])) if len(ci) == 2 else None,
            burn_rates={str(slo): {str(w): number(b) for w, b in mapping(windows).items()}
                        for slo, windows in mapping(data.get("burn_rates")).items()})

    @classmethod
    def of(cls, details: Details) -> LatencyDetails:
        """`details` as latency details (results read without the daemon's table of
        detectors carry them as stored)."""
        return details if isinstance(details, cls) else cls.from_json(details.to_json())
