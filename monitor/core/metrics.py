"""The daemon's own metrics, in one registry the daemon owns (no global default registry).

Per-span and per-request outcomes are counted here, never logged. Labels stay low-cardinality:
transports, signals, reasons and kinds, never ids, texts or measured values.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor import __version__

if TYPE_CHECKING:
    from monitor.core.records import DetectorResult, SelfCheckRecord

log = logging.getLogger(__name__)

PREFIX = "driftwatch"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SelfMetrics:
    """Counters and histograms for ingest, store and jobs."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, open fds
        Gauge(f"{PREFIX}_build_info", "driftwatch version", ["version"], registry=r).labels(
            __version__
        ).set(1)
        self.requests = Counter(
            f"{PREFIX}_receiver_requests_total", "OTLP export requests by outcome",
            ["transport", "signal", "code"], registry=r)
        self.request_duration = Histogram(
            f"{PREFIX}_receiver_request_duration_seconds",
            "Time from request received to response, commit included",
            ["transport", "signal"], buckets=_LATENCY_BUCKETS, registry=r)
        self.spans_received = Counter(
            f"{PREFIX}_spans_received_total", "Spans received", ["transport"], registry=r)
        self.spans_accepted = Counter(
            f"{PREFIX}_spans_accepted_total", "Spans accepted (committed or counted)",
            ["transport"], registry=r)
        self.spans_refused = Counter(
            f"{PREFIX}_spans_refused_total", "Spans refused, by reason", ["transport", "reason"],
            registry=r)
        self.spans_by_kind = Counter(
            f"{PREFIX}_spans_by_kind_total",
            "Accepted spans by kind: llm, embeddings, tool, agent, retrieval, other",
            ["kind"], registry=r)
        self.extractions = Counter(
            f"{PREFIX}_extractions_total",
            "Request bodies decoded and extracted, by where: worker (process) or thread",
            ["where"], registry=r)
        self.worker_restarts = Counter(
            f"{PREFIX}_extraction_worker_restarts_total",
            "Extraction workers replaced after one died", registry=r)
        self.log_records = Counter(
            f"{PREFIX}_log_records_received_total", "Log records received, by whether they "
            "carried GenAI content", ["genai"], registry=r)
        self.metric_points = Counter(
            f"{PREFIX}_metric_points_received_total", "Metric data points received (counted, "
            "not stored)", registry=r)
        self.calls_stored = Counter(
            f"{PREFIX}_llm_calls_stored_total", "LLM calls newly committed to the store",
            registry=r)
        self.calls_duplicate = Counter(
            f"{PREFIX}_llm_calls_duplicate_total", "Re-delivered spans already stored",
            registry=r)
        self.calls_wrapped = Counter(
            f"{PREFIX}_llm_calls_wrapped_total", "Framework spans that wrap a provider span of "
            "the same call (counted once)", registry=r)
        self.events_joined = Counter(
            f"{PREFIX}_content_events_joined_total", "Log-event texts joined to a stored call",
            registry=r)
        self.commit_duration = Histogram(
            f"{PREFIX}_store_commit_duration_seconds", "Group commit latency",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.commit_size = Histogram(
            f"{PREFIX}_store_commit_items", "Items (calls and events) per group commit",
            buckets=(1, 10, 100, 1000, 5000, 20000), registry=r)
        self.store_errors = Counter(
            f"{PREFIX}_store_errors_total", "Failed store writes", ["operation"], registry=r)
        self.store_errors.labels("write")  # exported at 0, so rate() works before a failure
        self.job_runs = Counter(
            f"{PREFIX}_job_runs_total", "Scheduled job runs", ["job_name", "outcome"], registry=r)
        self.job_duration = Histogram(
            f"{PREFIX}_job_duration_seconds", "Scheduled job run time", ["job_name"],
            buckets=(0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300), registry=r)
        self.job_last_success = Gauge(
            f"{PREFIX}_job_last_success_timestamp_seconds", "Unix time of each job's last "
            "successful run", ["job_name"], registry=r)
        self.retention_deleted = Counter(
            f"{PREFIX}_retention_deleted_total", "Rows deleted by the retention job", registry=r)
        self.job_interval = Gauge(
            f"{PREFIX}_job_interval_seconds", "How often each job is scheduled", ["job_name"],
            registry=r)
        self.alert_evaluations = Counter(
            f"{PREFIX}_alert_evaluations_total", "Evaluations of the alert rules", registry=r)
        self.notifications = Counter(
            f"{PREFIX}_notifications_total", "Alert notifications by notifier kind and "
            "outcome (after retries)", ["notifier", "outcome"], registry=r)
        self.read_errors = Counter(
            f"{PREFIX}_metric_read_errors_total", "Values /metrics could not read at scrape "
            "time (a failing store or history), by metric; the rest of the scrape goes on",
            ["metric"], registry=r)

    def watch(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """Export a value read at scrape time (queue depth, stored rows): never stale."""
        self.registry.register(_ReadAtScrape(f"{PREFIX}_{name}", doc, read, self._failed))

    def watch_total(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """Export a counter read at scrape time (`name` without `_total`): `read` must
        never decrease."""
        self.registry.register(_ReadAtScrape(f"{PREFIX}_{name}", doc, read, self._failed,
                                             counter=True))

    def _failed(self, metric: str) -> None:
        """A read at scrape time raised: log it and count it, and let the scrape go on
        without that value; one sick source must not take every metric down with it."""
        log.warning("/metrics could not read %s", metric, exc_info=True)
        self.read_errors.labels(metric).inc()

    def spans_refused_total(self) -> float:
        """Spans refused since start, over every transport and reason."""
        return sum(sample.value for family in self.spans_refused.collect()
                   for sample in family.samples if sample.name.endswith("_total"))

    def alerts(self, read: Callable[[], Sequence[tuple[str, str, str]]],
               rules: Sequence[tuple[str, str]]) -> None:
        """Export the number of alerts per (alertname, state, severity), read at scrape
        time; `read` gives one tuple per alert, `rules` the (alertname, severity) of every
        enabled rule, exported as 0 while it has no alerts."""
        self.registry.register(_Alerts(read, rules, self._failed))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def results(self, latest: Callable[[], Sequence[DetectorResult]],
                self_checks: Callable[[], Sequence[SelfCheckRecord]]) -> None:
        """Export the latest detector results, read from the history at scrape time."""
        self.registry.register(_Results(latest, self_checks, self._failed))


_SEGMENT = ["service", "model"]
_DIRECTED = ["service", "model", "direction"]


class _Results(Collector):
    """One family per measured quantity; labels are the segment (model "" = the whole
    service), the direction and fixed names, never values or texts."""

    def __init__(self, latest: Callable[[], Sequence[DetectorResult]],
                 self_checks: Callable[[], Sequence[SelfCheckRecord]],
                 failed: Callable[[str], None]) -> None:
        self._latest = latest
        self._self_checks = self_checks
        self._failed = failed

    def describe(self):  # type: ignore[no-untyped-def]
        return []

    def collect(self):  # type: ignore[no-untyped-def]
        try:
            latest, self_checks = self._latest(), self._self_checks()
        except Exception:
            self._failed(f"{PREFIX}_detector_results")
            return
        g: dict[str, GaugeMetricFamily] = {}

        def gauge(name: str, doc: str, labels: list[str], key: list[str],
                  value: float | None) -> None:
            if value is None:
                return
            family = g.get(name)
            if family is None:
                family = g[name] = GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=labels)
            family.add_metric(key, float(value))

        for r in latest:
            seg = [r.service, r.model or ""]
            d = r.details
            gauge("detector_result_timestamp_seconds", "When the latest result was computed",
                  ["detector", *_DIRECTED], [r.detector, *seg, _dir(r)], r.computed_ns / 1e9)
            gauge("detector_anomalous", "1 when the latest result is anomalous, 0 when not; "
                  "absent when there was too little data", ["detector", *_DIRECTED],
                  [r.detector, *seg, _dir(r)],
                  None if r.anomalous is None else float(r.anomalous))
            gauge("detector_insufficient_data", "1 when the latest result had too little data",
                  ["detector", *_DIRECTED], [r.detector, *seg, _dir(r)],
                  float(r.anomalous is None))
            for window, n in (("reference", r.n_reference), ("current", r.n_current)):
                gauge("detector_samples", "Calls or texts each side of the latest result",
                      ["detector", *_DIRECTED, "window"], [r.detector, *seg, _dir(r), window],
                      n)
            if r.detector == "drift":
                key = [*seg, _dir(r)]
                gauge("drift_mmd2", "MMD² between reference and current embeddings",
                      _DIRECTED, key, r.statistic)
                gauge("drift_p_value", "Smallest p-value of the drift tests", _DIRECTED, key,
                      r.p_value)
                gauge("drift_classifier_auc", "Domain classifier ROC AUC (0.5 = alike)",
                      _DIRECTED, key, d.get("classifier_auc"))
                novelty = (d.get("tests") or {}).get("novelty") or {}
                gauge("drift_novel_share", "Share of current texts far from the reference",
                      _DIRECTED, key, novelty.get("statistic"))
                gauge("drift_decision", "1 when this run found drift (before hysteresis)",
                      _DIRECTED, key, None if d.get("decision") is None
                      else float(bool(d.get("decision"))))
            elif r.detector == "toxicity":
                key = [*seg, _dir(r)]
                gauge("toxicity_rate", "Share of texts scored toxic at the threshold",
                      _DIRECTED, key, d.get("toxic_rate"))
                gauge("toxicity_rate_ci_high", "Upper Wilson 95% bound of the toxic rate",
                      _DIRECTED, key, d.get("ci_high"))
                gauge("toxicity_rate_ci_low", "Lower Wilson 95% bound of the toxic rate",
                      _DIRECTED, key, d.get("ci_low"))
                gauge("toxicity_mean_score", "Mean toxicity score", _DIRECTED, key,
                      d.get("mean_score"))
                gauge("toxicity_reference_rate", "Toxic rate of the reference", _DIRECTED,
                      key, d.get("reference_rate"))
            elif r.detector == "latency":
                for q in ("50", "90", "95", "99"):
                    gauge("latency_duration_seconds", "Call duration quantiles of the window",
                          [*_SEGMENT, "quantile"], [*seg, f"0.{q}"], d.get(f"p{q}_s"))
                for q in ("50", "95"):
                    gauge("latency_ttft_seconds", "Time-to-first-token quantiles",
                          [*_SEGMENT, "quantile"], [*seg, f"0.{q}"], d.get(f"ttft_p{q}_s"))
                gauge("latency_requests_per_second", "Calls per second in the window",
                      _SEGMENT, seg, d.get("rate_per_s"))
                gauge("latency_error_ratio", "Share of calls that failed", _SEGMENT, seg,
                      d.get("error_rate"))
                gauge("latency_p95_ratio", "p95 duration over the reference's", _SEGMENT, seg,
                      r.statistic)
                gauge("latency_output_tokens_per_second", "Output tokens per second of "
                      "generation", _SEGMENT, seg, d.get("output_tokens_per_s"))
                for slo, windows in (d.get("burn_rates") or {}).items():
                    for window, burn in windows.items():
                        gauge("slo_burn_rate", "Error-budget burn rate (1 = on budget)",
                              [*_SEGMENT, "slo", "window"], [*seg, slo, window], burn)
        for check in self_checks:
            gauge("drift_self_check_false_alarm_rate", "Share of reference-vs-reference "
                  "splits that would have alarmed", _DIRECTED,
                  [check.service, check.model or "", check.direction.value],
                  check.false_alarm_rate)
        yield from g.values()


def _dir(result: DetectorResult) -> str:
    return result.direction.value if result.direction else ""


class _Alerts(Collector):
    def __init__(self, read: Callable[[], Sequence[tuple[str, str, str]]],
                 rules: Sequence[tuple[str, str]], failed: Callable[[str], None]) -> None:
        self._read = read
        self._rules = rules
        self._failed = failed

    def describe(self):  # type: ignore[no-untyped-def]
        return []

    def collect(self):  # type: ignore[no-untyped-def]
        try:
            alerts = self._read()
        except Exception:
            self._failed(f"{PREFIX}_alerts")
            return
        counts: dict[tuple[str, str, str], int] = {}
        for alertname, severity in self._rules:
            for state in ("pending", "firing"):
                counts[(alertname, state, severity)] = 0
        for alertname, state, severity in alerts:
            if state != "resolved":
                key = (alertname, state, severity)
                counts[key] = counts.get(key, 0) + 1
        family = GaugeMetricFamily(f"{PREFIX}_alerts", "Alerts by rule, state (pending, "
                                   "firing) and severity", labels=["alertname", "state",
                                                                   "severity"])
        for key, n in sorted(counts.items()):
            family.add_metric(list(key), n)
        yield family


class _ReadAtScrape(Collector):
    def __init__(self, name: str, doc: str, read: Callable[[], float],
                 failed: Callable[[str], None], *, counter: bool = False) -> None:
        self._name, self._doc, self._read, self._failed = name, doc, read, failed
        self._family = CounterMetricFamily if counter else GaugeMetricFamily

    def collect(self):  # type: ignore[no-untyped-def]
        try:
            value = self._read()
        except Exception:
            self._failed(self._name)
            value = math.nan  # Prometheus's "no value": kept, not mistaken for a zero
        yield self._family(self._name, self._doc, value=value)

    def describe(self):  # type: ignore[no-untyped-def]
        yield self._family(self._name, self._doc)
