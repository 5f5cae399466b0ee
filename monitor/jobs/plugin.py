"""What a detector is to the rest of the daemon: one plugin per detector.

A plugin names its detector (the job and the results' `detector`), picks its section of the
config, builds its job from that section and the shared parts (`DetectorDeps`), and reads
its own results for everyone else: the numbers rules may check (`rule_fields`), the gauges
/metrics carries (declared once in `gauges`, which also give the PromQL of the fields the
rules export can translate), the explanation alerts carry, and its report page. The daemon
keeps the explicit table of plugins (`monitor.daemon.DETECTORS`); metrics, alerts, rules
export and report pages iterate it, so a new detector is its own package and a table entry.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from detectors.redact import redact
from monitor.core.records import Details, DetectorResult

if TYPE_CHECKING:  # the CLI reaches this module (through the report pages): stay light
    from detectors.embedder import Embedder
    from detectors.toxicity import Scorer
    from monitor.config import Config
    from monitor.core.components import Store
    from monitor.jobs.canary.comparer import Comparer
    from monitor.jobs.references import References
    from monitor.jobs.scheduler import JobSpec
    from monitor.jobs.texts import TextSampler
    from monitor.store.history import SqliteHistory

FieldValue = float | bool | None
_EXAMPLE_CHARS = 160


class DetectorSection(Protocol):
    """What the daemon reads of every detector's config section."""

    @property
    def enabled(self) -> bool: ...
    @property
    def interval(self) -> float: ...
    @property
    def window(self) -> float: ...
    @property
    def min_samples(self) -> int: ...


class JsonDetails(Details, Protocol):
    """A details type that reads itself back from its `to_json`."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Any: ...


S = TypeVar("S", bound=DetectorSection)
D = TypeVar("D", bound=JsonDetails)


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectorDeps:
    """The shared parts a detector's job is built from."""

    store: Store
    history: SqliteHistory
    references: References
    texts: TextSampler | None  # None unless an enabled detector reads texts
    retention_s: float  # how long the store keeps calls
    #: the configured redaction (the `redaction:` section) of every text a result carries
    redact: Callable[[str], str] = redact
    #: compares two sides of a service; given only to plugins that say `compares`
    comparer: Comparer | None = None


class DetectorJob(Protocol):
    def run(self, now_ns: int | None = None) -> Sequence[DetectorResult]:
        """Compute, store and return one result per segment (and direction)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Built:
    """A detector's job, the further jobs it schedules (drift's self-check) and the models
    to load before anything listens."""

    job: DetectorJob
    more_jobs: tuple[JobSpec, ...] = ()
    models: tuple[Embedder | Scorer, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Gauge:
    """One gauge family a detector exports per result, carrying one of its rule fields.

    Its labels are the segment's (`service`, `model`, `split`, and `direction` for detectors
    that have one) followed by `labels`, fixed ones such as quantile_level="0.95".
    """

    family: str  # the metric name after "driftwatch_"
    doc: str
    field: str  # the rule field whose value it carries
    labels: tuple[tuple[str, str], ...] = ()
    aliases: tuple[str, ...] = ()  # further rule fields the same series carries


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    """One value of a gauge family for one result."""

    family: str
    doc: str
    labels: tuple[tuple[str, str], ...]  # (name, value), in the family's order
    value: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PromQLField:
    """How a Prometheus rule reads a rule field: the metric, its fixed matchers, and the
    fixed labels to aggregate away so checks on several metrics of a segment match."""

    metric: str
    matchers: tuple[str, ...] = ()  # e.g. 'quantile_level="0.95"'
    drop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportSection:
    anchor: str
    heading: str
    html: str  # markup built with every outside text escaped (monitor.ops.html)


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """A detector's report page on one result; the page adds the segment, windows and
    sample sizes to `facts`, and its header, state and footer."""

    title: str
    reference: str  # the reference window, described
    facts: tuple[tuple[str, str], ...]
    sections: tuple[ReportSection, ...]


class DetectorPlugin(ABC, Generic[S, D]):
    """One detector: its name, config section, job, details type and what it exports."""

    name: ClassVar[str]
    details_type: type[D]
    #: results per direction (prompt, completion); their gauges carry a `direction` label
    directed: ClassVar[bool] = True
    reads_texts: ClassVar[bool] = False  # its job needs the shared embedder and text sampler
    gauges: ClassVar[tuple[Gauge, ...]] = ()
    #: earlier results of the same series its report page draws (0: none)
    report_series: ClassVar[int] = 0
    #: its job compares two sides of a service (`deps.comparer`) and reads no reference
    compares: ClassVar[bool] = False

    @abstractmethod
    def section(self, config: Config) -> S:
        """Its section of the root config."""

    @abstractmethod
    def build(self, section: S, deps: DetectorDeps) -> Built:
        """Its job (and models) from its section and the shared parts.

        :raises ConfigError: a model or file the section names cannot be used.
        """

    def details(self, result: DetectorResult) -> D:
        """The result's details as this detector's type (read from their JSON when they
        were loaded without the table of detectors)."""
        found = result.details
        if isinstance(found, self.details_type):
            return found
        decoded: D = self.details_type.from_json(found.to_json())
        return decoded

    def details_from_json(self, data: Mapping[str, Any]) -> D:
        decoded: D = self.details_type.from_json(data)
        return decoded

    def rule_fields(self, result: DetectorResult) -> dict[str, FieldValue]:
        """Every number a rule may check on the result, by dotted name (`toxic_rate`,
        `burn_rates.availability.1h`): the result's statistic and p-value and the
        detector's own fields."""
        return {"statistic": result.statistic, "p_value": result.p_value,
                **self.detail_fields(self.details(result))}

    @abstractmethod
    def detail_fields(self, details: D) -> dict[str, FieldValue]:
        """The detector's own numbers, by dotted name."""

    def promql_field(self, name: str) -> PromQLField | None:
        """How a Prometheus rule reads rule field `name`; None where no gauge carries it."""
        for gauge in self.gauges:
            if name == gauge.field or name in gauge.aliases:
                return PromQLField(metric=f"driftwatch_{gauge.family}",
                                   matchers=tuple(f'{k}="{v}"' for k, v in gauge.labels),
                                   drop=tuple(k for k, _ in gauge.labels))
        return None

    def metrics(self, result: DetectorResult) -> list[Sample]:
        """The result's samples of this detector's gauges (none for an unknown value)."""
        fields = self.rule_fields(result)
        segment = [("service", result.service), ("model", result.model or ""),
                   ("split", result.split or "")]
        if self.directed:
            segment.append(("direction", result.direction.value if result.direction else ""))
        samples = []
        for gauge in self.gauges:
            value = fields.get(gauge.field)
            if value is not None:
                samples.append(Sample(family=gauge.family, doc=gauge.doc,
                                      labels=(*segment, *gauge.labels), value=float(value)))
        return samples

    def explanation(self, result: DetectorResult,
                    redact: Callable[[str], str] = redact) -> dict[str, str]:
        """Annotations that say what changed, for the people an alert reaches (texts
        redacted again with `redact`, the configured redaction, and cut short); none by
        default."""
        return {}

    @abstractmethod
    def report(self, result: DetectorResult, series: Sequence[DetectorResult]) -> Report:
        """The result's report page; `series` holds up to `report_series` results of the
        same segment and direction up to this one, newest first."""


def details_readers(detectors: Mapping[str, DetectorPlugin[Any, Any]],
                    ) -> dict[str, Callable[[Mapping[str, Any]], Details]]:
    """How the history reads each detector's stored details back as its type."""
    return {name: plugin.details_from_json for name, plugin in detectors.items()}


def alert_example(text: str, redact: Callable[[str], str] = redact) -> str:
    """A text quoted in an alert: on one line, redacted, and cut short."""
    text = redact(" ".join(str(text).split()))
    return text if len(text) <= _EXAMPLE_CHARS else text[:_EXAMPLE_CHARS - 1] + "…"
