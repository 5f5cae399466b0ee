"""What a toxicity result holds besides the common fields: the window's rate with its
interval, the reference's, and the most toxic texts (redacted).

`to_json` writes the `details` object of `driftwatch status --json` (a public contract);
`from_json` reads it back from the history, rows of earlier versions included. Imports
nothing heavy, so the CLI can read it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.core.records import Details
from monitor.jobs.stored import items, number, optional_integer, text

DETECTOR = "toxicity"  # the job's and its results' name

@dataclass(frozen=True, slots=True, kw_only=True)
class ToxicExample:
    score: float = 0.0
    text: str = ""  # redacted

    def to_json(self) -> dict[str, Any]:
        return {"score": self.score, "text": self.text}


@dataclass(frozen=True, slots=True, kw_only=True)
class ToxicityDetails:
    """Rates are shares of texts scored at or above `threshold`; the reference's are None
    until the segment has a reference."""

    scorer: str = ""
    threshold: float | None = None
    mean_score: float | None = None
    toxic_rate: float | None = None  # None: no texts in the window
    toxic_count: int | None = None
    ci_low: float | None = None  # Wilson 95% interval of the rate
    ci_high: float | None = None
    reference_rate: float | None = None
    reference_mean_score: float | None = None
    increase: float | None = None  # over the reference's rate
    reference: str = ""  # the reference window, described
    top_examples: tuple[ToxicExample, ...] = ()
    sampling_rate: float | None = None  # share of the window's calls sampled; None: unknown

    def to_json(self) -> dict[str, Any]:
        out = {
            "scorer": self.scorer, "threshold": self.threshold, "mean_score": self.mean_score,
            "toxic_rate": self.toxic_rate, "toxic_count": self.toxic_count,
            "ci_low": self.ci_low, "ci_high": self.ci_high,
            "reference_rate": self.reference_rate,
            "reference_mean_score": self.reference_mean_score, "increase": self.increase,
            "reference": self.reference,
            "top_examples": [e.to_json() for e in self.top_examples]}
        if self.sampling_rate is not None:  # absent from results stored before it was kept
            out["sampling_rate"] = self.sampling_rate
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToxicityDetails:
        return cls(
            scorer=text(data.get("scorer")), threshold=number(data.get("threshold")),
            mean_score=number(data.get("mean_score")),
            toxic_rate=number(data.get("toxic_rate")),
            toxic_count=optional_integer(data.get("toxic_count")),
            ci_low=number(data.get("ci_low")), ci_high=number(data.get("ci_high")),
            reference_rate=number(data.get("reference_rate")),
            reference_mean_score=number(data.get("reference_mean_score")),
            increase=number(data.get("increase")), reference=text(data.get("reference")),
            sampling_rate=number(data.get("sampling_rate")),
            top_examples=tuple(
                ToxicExample(score=number(e.get("score")) or 0.0, text=text(e.get("text")))
                for e in items(data.get("top_examples")) if isinstance(e, dict)))

    @classmethod
    def of(cls, details: Details) -> ToxicityDetails:
        """`details` as toxicity details (results read without the daemon's table of
        detectors carry them as stored)."""
        return details if isinstance(details, cls) else cls.from_json(details.to_json())
