"""The composition root: the one place that builds every component from the config and
wires them together. Start order is downstream first (store, writer, then receivers);
stop order is upstream first, so receivers stop taking data, the queue drains to the store,
and only then is the store closed.

`DETECTORS` is the table of detectors: each one's plugin builds its job and reads its
results for the metrics, alert rules, rules export and report pages, so a new detector is
its own package under monitor/jobs/ and one entry here.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TextIO

from collectors.bounds import CallBounds
from collectors.ingest import Ingestor
from collectors.otlp_grpc import OtlpGrpcReceiver
from collectors.otlp_http import OtlpHttpReceiver
from collectors.workers import ExtractionPool, auto_workers
from detectors.embedder import Embedder
from detectors.redaction.redactor import Redactor
from detectors.toxicity import Scorer
from monitor import __version__
from monitor.alerting.engine import AlertEngine, JobStatus, Sources, rules_from_config
from monitor.alerting.notifiers import Dispatcher, build_notifiers
from monitor.config import Config
from monitor.core.components import CallSink, Component, Store
from monitor.core.metrics import SelfMetrics
from monitor.jobs.canary.comparer import Comparer, PassRule, Toxicity
from monitor.jobs.canary.plugin import CanaryPlugin
from monitor.jobs.cost.plugin import CostPlugin
from monitor.jobs.drift.plugin import DriftPlugin
from monitor.jobs.embeddings import build_embedder, limit_threads
from monitor.jobs.evaluation.plugin import EvaluationPlugin
from monitor.jobs.latency.plugin import LatencyPlugin
from monitor.jobs.plugin import DetectorDeps, DetectorPlugin, details_readers
from monitor.jobs.prefetch import Prefetcher
from monitor.jobs.references import References
from monitor.jobs.sampling import SampleRates, SamplingRateCollector
from monitor.jobs.scheduler import JobScheduler, JobSpec
from monitor.jobs.segments import SegmentWatch
from monitor.jobs.splits import VersionSplit
from monitor.jobs.texts import TextSampler
from monitor.jobs.toxicity.job import ToxicityJob
from monitor.jobs.toxicity.plugin import ToxicityPlugin
from monitor.ops.cardinality import CardinalityLimits
from monitor.ops.collector_pauses import CollectorPauses, settle
from monitor.ops.cost_metrics import CostMetrics
from monitor.ops.genai_metrics import GenAiMetrics, MeteredSink
from monitor.ops.metric_push import OtlpMetricPush
from monitor.ops.metrics import export_results
from monitor.ops.server import OpsDeps, OpsServer
from monitor.pricing.sink import PricedSink
from monitor.pricing.table import PriceTable
from monitor.store.alert_state import SqliteAlertState
from monitor.store.comparisons import SqliteComparisons
from monitor.store.files import StoreLock
from monitor.store.history import SqliteHistory
from monitor.store.sqlite import SqliteStore
from monitor.store.writer import CommitWriter

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 8.0

#: every detector, by name (its job's name and its results' `detector`)
DETECTORS: Mapping[str, DetectorPlugin[Any, Any]] = {
    plugin.name: plugin for plugin in (DriftPlugin(), ToxicityPlugin(), LatencyPlugin(),
                                       CostPlugin(), EvaluationPlugin(), CanaryPlugin())}


class Daemon:
    def __init__(self, config: Config) -> None:
        self.config = config
        # the one redaction path for what leaves the daemon (examples, alerts, reports)
        self.redactor = Redactor.from_config(config.redaction)
        self.metrics = SelfMetrics()
        self._pauses = CollectorPauses(self.metrics.registry)
        self._store_lock, sqlite = _open_store(config)
        self.store: Store = sqlite
        self._sqlite = sqlite
        ingest = config.ingest
        self._extract_pool = ExtractionPool(
            auto_workers() if ingest.workers == "auto" else ingest.workers, self.metrics,
            retry_after_s=ingest.retry_after)
        self.writer = CommitWriter(
            self.store, self.metrics, max_items=ingest.queue_max_items,
            max_bytes=ingest.queue_max_bytes, commit_max_items=ingest.commit_max_items,
            retry_after_s=ingest.retry_after)
        self.label_limits = CardinalityLimits(config.metrics.cardinality_limit,
                                              self.metrics.registry)
        sink: CallSink = MeteredSink(
            self.writer, GenAiMetrics(self.metrics.registry, self.label_limits),
            CostMetrics(self.metrics.registry, self.label_limits))
        if config.pricing.enabled:  # priced once, before the write (monitor.pricing.sink)
            sink = PricedSink(sink, PriceTable(config.pricing), self.metrics.registry)
        ingestor = Ingestor(sink, self.metrics, self._extract_pool,
                            max_chars=ingest.max_attribute_chars,
                            bounds=CallBounds(max_start_ahead_s=ingest.max_start_ahead),
                            variant_key=ingest.variant_attribute)
        receivers = config.receivers
        self.receivers: list[OtlpGrpcReceiver | OtlpHttpReceiver] = []
        if receivers.otlp_grpc.enabled:
            self.receivers.append(OtlpGrpcReceiver(
                receivers.otlp_grpc, ingestor, self.metrics, retry_after_s=ingest.retry_after))
        if receivers.otlp_http.enabled:
            self.receivers.append(OtlpHttpReceiver(
                receivers.otlp_http, ingestor, self.metrics,
                max_inflight_bytes=ingest.max_inflight_bytes, retry_after_s=ingest.retry_after))
        self.history = SqliteHistory(config.store.path, details=details_readers(DETECTORS))
        self.jobs = JobScheduler(self.metrics)
        self.jobs.add(JobSpec("retention", config.jobs.retention_interval, self._retention))
        self._models: list[Embedder | Scorer] = []
        self.segment_watch = SegmentWatch(config.jobs.max_segments)
        self.metrics.watch("segments_unwatched", "Segments with calls that the detectors do "
                           "not watch (past jobs.max_segments)",
                           lambda: float(self.segment_watch.counts.unwatched))
        self.comparisons = SqliteComparisons(config.store.path)
        self.comparer = self._comparer(config, None, None)
        self._add_detectors(config)
        self.alert_state: SqliteAlertState | None = None
        self.dispatcher: Dispatcher | None = None
        self.alerts = self._add_alerts(config) if config.alerts.enabled else None
        self.ops = OpsServer(config.ops, OpsDeps(
            metrics=self.metrics, store=self.store, history=self.history, jobs=self.jobs,
            listeners=tuple(r.listener for r in self.receivers), alerts=self.alerts,
            detectors=DETECTORS, segments=self.segment_watch, sink=self.writer,
            comparer=self.comparer))
        for name, interval in self.jobs.intervals.items():
            self.metrics.job_interval.labels(name).set(interval)
        export_results(self.metrics, lambda: self.history.latest(), self.history.self_checks,
                       DETECTORS, self.label_limits)
        self.metrics.watch("store_calls", "LLM calls in the store",
                           lambda: float(self.store.stats().calls))
        self.metrics.watch("store_pending_evaluations", "Evaluations waiting for their call "
                           "(until ingest.join_window)",
                           lambda: float(self.store.stats().pending_evaluations))
        self.metrics.watch("store_disk_bytes", "Bytes the store's database and WAL files "
                           "take", lambda: float(sqlite.disk_bytes()))
        self.metrics.watch("store_filesystem_free_bytes", "Bytes the daemon may still write "
                           "on the store's filesystem (a full one stops ingest)",
                           lambda: float(sqlite.free_disk_bytes()))
        push = config.metrics.otlp
        self.metric_push = OtlpMetricPush(push, self.metrics.registry) if push.endpoint else None
        self._started: list[Component] = []

    def _add_detectors(self, config: Config) -> None:
        """The enabled detectors' jobs (and models), on shared references and texts."""
        enabled = [(plugin, plugin.section(config)) for plugin in DETECTORS.values()
                   if plugin.section(config).enabled]
        # the detectors that compare two sides (the canary) read no reference, and are
        # built last, with the comparer the others' models make
        referring = [(p, s) for p, s in enabled if not p.compares] or enabled
        if not enabled:
            return
        split = VersionSplit(config.jobs.split_by, config.jobs.max_versions_per_service)
        if split.keys:
            self.metrics.watch("segment_versions_folded", "Versions of watched services not "
                               "split into segments of their own (past "
                               "jobs.max_versions_per_service), folded into the service's",
                               lambda: float(split.folded))
        references = References(
            self.store, self.history, auto_window_s=max(s.window for _, s in referring),
            auto_min_calls=max(s.min_samples for _, s in referring), watch=self.segment_watch,
            split=split)
        readers = [section for plugin, section in enabled if plugin.reads_texts]
        # the longest window a text-reading job looks at holds about `sample_cap` samples
        texts = self._texts(config, max(s.window for s in readers)) if readers else None
        if texts is not None and texts.rates is not None and config.embedding.ahead:
            self._add_embed_ahead(config, texts, texts.rates,
                                  max(s.sample_cap for s in readers))
        deps = DetectorDeps(store=self.store, history=self.history, references=references,
                            texts=texts, retention_s=config.store.retention,
                            redact=self.redactor)
        toxicity = None
        ordered = sorted(enabled, key=lambda e: e[0].compares)
        for plugin, section in ordered:
            if plugin.compares and deps.comparer is None:
                self.comparer = self._comparer(config, texts, toxicity)
                deps = replace(deps, comparer=self.comparer)
            built = plugin.build(section, deps)
            if isinstance(built.job, ToxicityJob):
                toxicity = Toxicity(scorer=built.job.scorer, threshold=built.job.threshold)
            self.jobs.add(JobSpec(plugin.name, section.interval, built.job.run))
            for spec in built.more_jobs:
                self.jobs.add(spec)
            self._models.extend(built.models)
        if deps.comparer is None:
            self.comparer = self._comparer(config, texts, toxicity)

    def _comparer(self, config: Config, texts: TextSampler | None,
                  toxicity: Toxicity | None) -> Comparer:
        """`driftwatch compare` and the canary, with the models of the drift and toxicity
        jobs (none when they are off: their measures then say "not measured")."""
        passes = PassRule(labels=config.evaluation.pass_labels,
                          threshold=config.evaluation.pass_threshold)
        return Comparer(config.compare, self.store, self.comparisons, texts=texts,
                        toxicity=toxicity, variant_attribute=config.ingest.variant_attribute,
                        passes=passes)

    def _add_embed_ahead(self, config: Config, texts: TextSampler, rates: SampleRates,
                         cap: int) -> None:
        """The `embed_ahead` job: sampled texts embedded as they arrive, and its queue."""
        ahead = Prefetcher(self.store, texts, rates, cap=cap,
                           per_segment=config.embedding.ahead_queue,
                           budget=max(64, int(config.embedding.ahead_interval * 10)))
        self.jobs.add(JobSpec("embed_ahead", config.embedding.ahead_interval, ahead.run))
        self.metrics.watch("embedding_queue_depth", "Sampled texts waiting to be embedded",
                           lambda: float(ahead.stats().depth))
        self.metrics.watch("embedding_queue_lag_seconds", "Age of the oldest call whose "
                           "texts wait to be embedded (0: none wait)",
                           lambda: ahead.stats().lag_s)
        self.metrics.watch_total("embedding_ahead_texts", "Texts embedded ahead of the jobs",
                                 lambda: float(ahead.stats().embedded))

    def _texts(self, config: Config, horizon_s: float) -> TextSampler:
        """The embedder every text-reading detector shares, and its sampler."""
        embedder = build_embedder(config.embedding, self.history)
        self.metrics.watch("embedding_cache_hits", "Texts whose embedding came from the cache",
                           lambda: float(embedder.stats.hits))
        self.metrics.watch("embedding_cache_misses", "Texts embedded by the model",
                           lambda: float(embedder.stats.misses))
        self._models.append(embedder)
        rates = SampleRates(self.store, horizon_s)
        self.metrics.registry.register(SamplingRateCollector(rates))
        return TextSampler(self.store, self.history, embedder, rates)

    def _add_alerts(self, config: Config) -> AlertEngine:
        """Rules on the detectors' latest results, their state in the store, and the
        notifiers; evaluated by the `alerts` job."""
        state = self.alert_state = SqliteAlertState(config.store.path)
        stopping = threading.Event()

        def external_url() -> str:
            return config.alerts.external_url or self.ops.listener.url

        dispatcher = self.dispatcher = Dispatcher(
            build_notifiers(config.alerts, self.metrics, stopping, external_url), state,
            stopping)
        rules = rules_from_config(config, DETECTORS, self.redactor)
        engine = AlertEngine(
            config.alerts, rules, state, Sources(
                results=self.history.latest, jobs=self._job_status,
                refused_total=self.metrics.spans_refused_total,
                free_bytes=self._free_disk_bytes),
            self.metrics, dispatcher, external_url)
        self.jobs.add(JobSpec("alerts", config.alerts.evaluation_interval, engine.run))
        return engine

    def _free_disk_bytes(self) -> float | None:
        """Free bytes on the store's filesystem; None when it cannot be asked (the disk
        rule then keeps its state rather than guess)."""
        try:
            return float(self._sqlite.free_disk_bytes())
        except OSError:
            log.warning("cannot read the free space of the store's filesystem", exc_info=True)
            return None

    def _job_status(self) -> dict[str, JobStatus]:
        since = self.jobs.started_s or time.time()
        return {name: JobStatus(interval_s=interval, since_s=since,
                                last_success_s=self.jobs.last_success.get(name),
                                last_duration_s=self.jobs.last_duration.get(name))
                for name, interval in self.jobs.intervals.items()}

    def _load_models(self) -> None:
        """Load the models before anything listens, so a bad model config fails the start
        with a message naming the fix, not the first job run an hour later."""
        limit_threads(self.config.embedding.threads, models=self._models)
        if not self._models:
            return
        began = time.perf_counter()
        for model in self._models:
            model.load()
        log.info("detector models loaded in %.1fs", time.perf_counter() - began)

    def _retention(self) -> dict[str, Any]:
        now = time.time_ns()
        cutoff = now - int(self.config.store.retention * 1e9)
        deleted = self.store.delete_before(cutoff, self.config.store.retention_batch)
        expired = self.store.expire_pending(now - int(self.config.ingest.join_window * 1e9))
        history = self.history.delete_before(cutoff, self.config.store.retention_batch)
        history += self.comparisons.delete_before(cutoff)
        self.metrics.retention_deleted.inc(deleted + expired + history)
        return {"deleted_calls": deleted, "expired_events": expired,
                "deleted_history": history}

    async def start(self) -> None:
        self._pauses.install()
        await asyncio.to_thread(self._load_models)
        self._extract_pool.start()
        # Stopped in reverse: the jobs (no new evaluation), then the notifiers (finishing
        # what is in flight), then the rest; the metric push last, with the drained counts.
        order: list[Component] = [*([self.metric_push] if self.metric_push else []),
                                  self.writer, *self.receivers, self.ops,
                                  *([self.dispatcher] if self.dispatcher else []), self.jobs]
        for component in order:
            await _start(component)
            self._started.append(component)

    async def stop(self) -> None:
        while self._started:
            component = self._started.pop()
            try:
                await component.stop()
            except Exception:
                log.exception("stopping %s failed", type(component).__name__)
        await asyncio.to_thread(self._extract_pool.close)
        if self.alert_state is not None:
            self.alert_state.close()
        self.history.close()
        self.comparisons.close()
        self.store.close()
        self._store_lock.release()
        self._pauses.remove()

    def banner(self) -> str:
        parts = [f"{r.listener.name}={r.address}" for r in self.receivers]
        parts.append(f"ops={self.ops.listener.url}")
        return f"driftwatch {__version__} listening: " + " ".join(parts)


def _open_store(config: Config) -> tuple[StoreLock, SqliteStore]:
    """The store, held by this daemon alone and checked whole before anything listens.

    :raises StoreError: another daemon holds it, or it cannot be opened, or it is corrupt.
    """
    path = config.store.path
    lock = StoreLock(path)
    try:
        store = SqliteStore(path, min_free_bytes=config.store.min_free_bytes,
                            max_pending_evaluations=config.ingest.max_pending_evaluations)
    except BaseException:
        lock.release()
        raise
    try:
        if config.store.check_on_start:
            began = time.perf_counter()
            store.quick_check()
            log.info("store %s checked whole in %.1fs", path, time.perf_counter() - began)
    except BaseException:
        store.close()
        lock.release()
        raise
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        log.warning("store %s can be read by other users (mode %o); chmod 600 it and its "
                    "-wal and -shm files: it holds every prompt", path, mode)
    return lock, store


async def _start(component: Component) -> None:
    """Start one component; a gRPC port that cannot be bound is an OSError naming it, as
    the HTTP listeners' are (grpcio raises a bare RuntimeError)."""
    try:
        await component.start()
    except RuntimeError as exc:
        if not isinstance(component, OtlpGrpcReceiver) or "bind" not in str(exc):
            raise
        raise OSError(f"cannot listen on {component.address}: address in use or not "
                      "available") from None


def _log_access(config: Config) -> None:
    """Say at start which listeners require a token: auth that is off must not be silent."""
    for name, receiver in (("otlp_grpc", config.receivers.otlp_grpc),
                           ("otlp_http", config.receivers.otlp_http)):
        if receiver.enabled:
            log.info("%s: %s, %s", name,
                     "bearer token required" if receiver.auth else "no token required "
                     f"(receivers.{name}.auth unset)", "TLS" if receiver.tls else "plaintext")
    # the ops server says the same for itself in its "listening" line


async def serve(config: Config, out: TextIO = sys.stdout) -> int:
    """Run until SIGTERM or SIGINT; return the exit code."""
    daemon = Daemon(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await daemon.start()
    except BaseException:
        await daemon.stop()
        raise
    # Only the process's own entry point settles the collector: it freezes whatever the
    # process holds, which in an embedding process (a test) is not only this daemon.
    frozen = settle()
    log.info("garbage collector settled: %d start-up objects frozen", frozen)
    # said before the banner: whoever waits for "listening" can read them in the log
    _log_access(config)
    log.info("store at %s (retention %gs)", config.store.path, config.store.retention)
    print(daemon.banner(), file=out, flush=True)
    await stop.wait()
    log.info("shutting down: refusing new data, draining the queue")
    try:
        await asyncio.wait_for(daemon.stop(), STOP_TIMEOUT_S)
    except TimeoutError:
        log.error("shutdown took over %gs; exiting anyway", STOP_TIMEOUT_S)
        return 1
    log.info("stopped")
    return 0
