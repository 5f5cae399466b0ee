"""What a canary result holds besides the common fields: the two versions, the comparison
it made (its id and report page), the measures on which the new version regressed, and
every measure's values and p-value.

`to_json` writes the `details` object of `driftwatch status --json`; `from_json` reads it
back from the history. Imports nothing heavy, so the CLI can read it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.jobs.stored import flag, items, mapping, number, optional_integer, text, texts

DETECTOR = "canary"  # the job's and its results' name


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryMeasure:
    """One measure of the comparison, as the result keeps it."""

    measure: str
    a: float | None
    b: float | None
    p_value: float | None
    significant: bool | None
    worse: bool | None
    verdict: str

    def to_json(self) -> dict[str, Any]:
        return {"measure": self.measure, "a": self.a, "b": self.b, "p_value": self.p_value,
                "significant": self.significant, "worse": self.worse, "verdict": self.verdict}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CanaryMeasure:
        return cls(measure=text(data.get("measure")), a=number(data.get("a")),
                   b=number(data.get("b")), p_value=number(data.get("p_value")),
                   significant=flag(data.get("significant")), worse=flag(data.get("worse")),
                   verdict=text(data.get("verdict")))


@dataclass(frozen=True, slots=True, kw_only=True)
class CanaryDetails:
    version: str = ""  # the new service.version (B)
    previous_version: str = ""  # the one before it (A)
    first_seen: str = ""  # the new version's first call, RFC 3339
    comparison: int | None = None  # the comparison's id; None when none was made
    report: str = ""  # its page, /reports/compare/{id}
    verdict: str = ""
    regressed: tuple[str, ...] = ()  # measures on which the new version is worse
    measures: tuple[CanaryMeasure, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "previous_version": self.previous_version,
                "first_seen": self.first_seen, "comparison": self.comparison,
                "report": self.report, "verdict": self.verdict,
                "regressed": list(self.regressed),
                "measures": [m.to_json() for m in self.measures]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CanaryDetails:
        return cls(
            version=text(data.get("version")),
            previous_version=text(data.get("previous_version")),
            first_seen=text(data.get("first_seen")),
            comparison=optional_integer(data.get("comparison")),
            report=text(data.get("report")), verdict=text(data.get("verdict")),
            regressed=texts(data.get("regressed")),
            measures=tuple(CanaryMeasure.from_json(mapping(m))
                           for m in items(data.get("measures"))))
