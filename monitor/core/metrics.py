"""The daemon's own metrics, in one registry the daemon owns (no global default registry).

Per-span and per-request outcomes are counted here, never logged. The detectors' results are
exported beside them by `monitor.ops.metrics`. Labels stay low-cardinality:
transports, signals, reasons and kinds, never ids, texts or measured values.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

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
        self.evaluations_received = Counter(
            f"{PREFIX}_evaluations_received_total", "Evaluations received, by source: log, "
            "span_event or feedback", ["source"], registry=r)
        self.evaluations_refused = Counter(
            f"{PREFIX}_evaluations_refused_total", "Evaluations refused, by reason: invalid "
            "(no name, no score or label, or no call named), unauthorized, or pending_full "
            "(their call not stored and ingest.max_pending_evaluations already waiting)",
            ["reason"],
            registry=r)
        self.evaluations_joined = Counter(
            f"{PREFIX}_evaluations_joined_total", "Evaluations stored with their call",
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
        self.registry.register(_ReadAtScrape(f"{PREFIX}_{name}", doc, read, self.read_failed))

    def watch_total(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """Export a counter read at scrape time (`name` without `_total`): `read` must
        never decrease."""
        self.registry.register(_ReadAtScrape(f"{PREFIX}_{name}", doc, read, self.read_failed,
                                             counter=True))

    def read_failed(self, metric: str) -> None:
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
        self.registry.register(_Alerts(read, rules, self.read_failed))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


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
