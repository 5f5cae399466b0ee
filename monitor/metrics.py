"""The daemon's own metrics, in one registry the daemon owns (no global default registry).

Per-span and per-request outcomes are counted here, never logged. Labels stay low-cardinality:
transports, signals, reasons and kinds, never ids, texts or measured values.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitor import __version__

PREFIX = "driftwatch"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SelfMetrics:
    """Counters and histograms for ingest, store and jobs."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
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
        self.job_runs = Counter(
            f"{PREFIX}_job_runs_total", "Scheduled job runs", ["job", "outcome"], registry=r)
        self.job_duration = Histogram(
            f"{PREFIX}_job_duration_seconds", "Scheduled job run time", ["job"],
            buckets=(0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300), registry=r)
        self.job_last_success = Gauge(
            f"{PREFIX}_job_last_success_timestamp_seconds", "Unix time of each job's last "
            "successful run", ["job"], registry=r)
        self.retention_deleted = Counter(
            f"{PREFIX}_retention_deleted_total", "Rows deleted by the retention job", registry=r)

    def watch(self, name: str, doc: str, read: Callable[[], float]) -> None:
        """Export a value read at scrape time (queue depth, stored rows): never stale."""
        self.registry.register(_ReadAtScrape(f"{PREFIX}_{name}", doc, read))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _ReadAtScrape(Collector):
    def __init__(self, name: str, doc: str, read: Callable[[], float]) -> None:
        self._name, self._doc, self._read = name, doc, read

    def collect(self):  # type: ignore[no-untyped-def]
        yield GaugeMetricFamily(self._name, self._doc, value=self._read())

    def describe(self):  # type: ignore[no-untyped-def]
        yield GaugeMetricFamily(self._name, self._doc)
