"""What a drift result holds besides the common fields: the run's decision and tests, the
clusters that moved, a 2-D picture of both windows and the latest self-check.

`to_json` writes the `details` object of `driftwatch status --json` (a public contract:
keys, nesting and values as they always were); `from_json` reads it back from the history,
rows of earlier versions included. Imports nothing heavy, so the CLI can read it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.core.records import Details
from monitor.jobs.stored import flag, integer, items, mapping, number, text, texts

DETECTOR = "drift"  # the job's and its results' name

Point = tuple[float, float]


@dataclass(frozen=True, slots=True, kw_only=True)
class TestOutcome:
    """One test of the run (mmd, novelty): its statistic, p-value and effect size."""

    statistic: float | None = None
    p_value: float | None = None
    effect: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"statistic": self.statistic, "p_value": self.p_value, "effect": self.effect}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestOutcome:
        return cls(statistic=number(data.get("statistic")), p_value=number(data.get("p_value")),
                   effect=number(data.get("effect")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Cluster:
    """A cluster of both windows whose share moved (see `detectors.explain.ClusterShift`)."""

    cluster: int = 0
    size: int = 0
    share_reference: float = 0.0
    share_current: float = 0.0
    p_value: float | None = None
    q_value: float | None = None
    examples: tuple[str, ...] = ()  # redacted
    keywords: tuple[str, ...] = ()
    example_rows: tuple[int, ...] = ()
    example_window: str = "current"  # where the examples come from: it grew, or shrank

    def to_json(self) -> dict[str, Any]:
        return {"cluster": self.cluster, "size": self.size,
                "share_reference": self.share_reference, "share_current": self.share_current,
                "p_value": self.p_value, "q_value": self.q_value,
                "examples": list(self.examples), "keywords": list(self.keywords),
                "example_rows": list(self.example_rows), "example_window": self.example_window}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cluster:
        return cls(
            cluster=integer(data.get("cluster")), size=integer(data.get("size")),
            share_reference=number(data.get("share_reference")) or 0.0,
            share_current=number(data.get("share_current")) or 0.0,
            p_value=number(data.get("p_value")), q_value=number(data.get("q_value")),
            examples=texts(data.get("examples")), keywords=texts(data.get("keywords")),
            example_rows=tuple(r for r in items(data.get("example_rows"))
                               if isinstance(r, int)),
            example_window=text(data.get("example_window")) or "current")


@dataclass(frozen=True, slots=True, kw_only=True)
class Projection:
    """Up to a few hundred texts of each window on the pooled first two principal
    components, for the report page."""

    reference: tuple[Point, ...] = ()
    current: tuple[Point, ...] = ()

    def to_json(self) -> dict[str, list[list[float]]]:
        return {"reference": [list(p) for p in self.reference],
                "current": [list(p) for p in self.current]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Projection:
        return cls(reference=_points(data.get("reference")), current=_points(data.get("current")))


@dataclass(frozen=True, slots=True, kw_only=True)
class SelfCheck:
    """The segment's latest reference-vs-reference false-alarm rate."""

    false_alarm_rate: float | None = None
    splits: int = 0
    computed_ns: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"false_alarm_rate": self.false_alarm_rate, "splits": self.splits,
                "computed_ns": self.computed_ns}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SelfCheck:
        return cls(false_alarm_rate=number(data.get("false_alarm_rate")),
                   splits=integer(data.get("splits")),
                   computed_ns=integer(data.get("computed_ns")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Hysteresis:
    """Anomalous after k drift decisions of the last m; `drift_in_window` so far."""

    k: int = 0
    m: int = 0
    drift_in_window: int = 0

    def to_json(self) -> dict[str, int]:
        return {"k": self.k, "m": self.m, "drift_in_window": self.drift_in_window}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Hysteresis:
        return cls(k=integer(data.get("k")), m=integer(data.get("m")),
                   drift_in_window=integer(data.get("drift_in_window")))


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftDetails:
    """A drift result's own fields. `decision` is this run's verdict before hysteresis
    (None: too little data); `clusters` are filled when a run finds drift and
    `drift.explain` is on; `projection` when both windows held enough texts."""

    decision: bool | None = None
    reference: str = ""  # the reference window, described
    reference_mode: str = ""
    hysteresis: Hysteresis = Hysteresis()
    alpha: float | None = None
    tests: Mapping[str, TestOutcome] = field(default_factory=dict)
    classifier_auc: float | None = None
    centroid_distance: float | None = None
    clusters: tuple[Cluster, ...] = ()
    projection: Projection | None = None
    self_check: SelfCheck | None = None
    sampling_rate: float | None = None  # share of the window's calls sampled; None: unknown

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "decision": self.decision, "reference": self.reference,
            "reference_mode": self.reference_mode, "hysteresis": self.hysteresis.to_json(),
            "alpha": self.alpha, "tests": {name: t.to_json() for name, t in self.tests.items()},
            "classifier_auc": self.classifier_auc, "centroid_distance": self.centroid_distance,
            "clusters": [c.to_json() for c in self.clusters]}
        if self.sampling_rate is not None:  # absent from results stored before it was kept
            out["sampling_rate"] = self.sampling_rate
        if self.projection is not None:
            out["projection"] = self.projection.to_json()
        if self.self_check is not None:
            out["self_check"] = self.self_check.to_json()
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriftDetails:
        projection, check = data.get("projection"), data.get("self_check")
        return cls(
            decision=flag(data.get("decision")), reference=text(data.get("reference")),
            reference_mode=text(data.get("reference_mode")),
            hysteresis=Hysteresis.from_json(mapping(data.get("hysteresis"))),
            alpha=number(data.get("alpha")),
            tests={str(name): TestOutcome.from_json(t)
                   for name, t in mapping(data.get("tests")).items() if isinstance(t, dict)},
            classifier_auc=number(data.get("classifier_auc")),
            centroid_distance=number(data.get("centroid_distance")),
            clusters=tuple(Cluster.from_json(c) for c in items(data.get("clusters"))
                           if isinstance(c, dict)),
            projection=Projection.from_json(projection) if isinstance(projection, dict) else None,
            self_check=SelfCheck.from_json(check) if isinstance(check, dict) else None,
            sampling_rate=number(data.get("sampling_rate")))

    @classmethod
    def of(cls, details: Details) -> DriftDetails:
        """`details` as drift details (results read without the daemon's table of
        detectors carry them as stored)."""
        return details if isinstance(details, cls) else cls.from_json(details.to_json())


def _points(raw: Any) -> tuple[Point, ...]:
    found = []
    for p in items(raw):
        if isinstance(p, list) and len(p) == 2:
            x, y = number(p[0]), number(p[1])
            if x is not None and y is not None:
                found.append((x, y))
    return tuple(found)
