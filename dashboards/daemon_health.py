"""Daemon health: is driftwatch itself keeping up? Spans in and refused, export requests,
the ingest queue, store commits, jobs, notifiers, and the process's CPU and memory."""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.kit import RATE, Board, alert_annotations, graph, label_values, prom, stat

UID = "driftwatch-daemon"

INST = 'instance=~"$instance"'
RANGE = "[$__range]"


def _fill(bound: str) -> str:
    """The ingest queue's fill by one bound (items, or bytes of text), over all instances."""
    return (f"sum(driftwatch_ingest_queue_{bound}{{{INST}}}) / "
            f"sum(driftwatch_ingest_queue_capacity_{bound}{{{INST}}})")


def quantiles(metric: str, by: str = "") -> list[str]:
    keys = f"le, {by}" if by else "le"
    return [f"histogram_quantile({q}, sum by ({keys}) (rate({metric}_bucket{{{INST}}}{RATE})))"
            for q in (0.5, 0.95, 0.99)]


def build() -> Dashboard:
    board = Board("driftwatch / Daemon health", UID,
                  "driftwatch itself: ingest, queue, store, jobs, notifiers and the process.")
    d = board.dashboard.time("now-3h", "now").refresh("30s")
    d.with_variable(label_values("instance", "instance", "driftwatch_build_info",
                                 title="Instance"))
    alert_annotations(board)

    board.row("At a glance")
    board.add(stat("Version", "driftwatch version of each instance.", "none",
                   prom(f"driftwatch_build_info{{{INST}}}", "{{version}}"), name_only=True),
              w=4, h=4)
    board.add(stat("Uptime", "Time since the process started.", "s",
                   prom(f"time() - process_start_time_seconds{{{INST}}}", "{{instance}}")),
              w=4, h=4)
    board.add(stat("Queue fill", "Calls and events waiting for commit, as a share of the "
                   "queue's capacity in items or in bytes of text, whichever is fuller; a "
                   "full queue refuses exports with 503.", "percentunit",
                   prom(f'max(label_replace({_fill("items")}, "bound", "items", "", "") or '
                        f'label_replace({_fill("bytes")}, "bound", "text", "", ""))', "fill"),
                   steps=((None, "green"), (0.5, "orange"), (0.9, "red"))), w=4, h=4)
    for title, description, expr in (
            ("Spans refused", "Spans refused over the time range, every reason.",
             f"sum(increase(driftwatch_spans_refused_total{{{INST}}}{RANGE}))"),
            ("Store errors", "Failed store writes over the time range.",
             f"sum(increase(driftwatch_store_errors_total{{{INST}}}{RANGE}))"),
            ("Notifications failed", "Alert notifications that failed over the time range.",
             f'sum(increase(driftwatch_notifications_total{{{INST}, outcome="failed"}}'
             f"{RANGE}))")):
        board.add(stat(title, description, "none", prom(expr, title), no_value="0",
                       steps=((None, "green"), (1, "red")), decimals=0), w=4, h=4)

    board.row("Ingest")
    board.add(graph(
        "Spans in, accepted and refused", "Spans per second by transport; refused by reason.",
        "short",
        prom(f"sum by (transport) (rate(driftwatch_spans_received_total{{{INST}}}{RATE}))",
             "received {{transport}}"),
        prom(f"sum by (transport) (rate(driftwatch_spans_accepted_total{{{INST}}}{RATE}))",
             "accepted {{transport}}"),
        prom(f"sum by (transport, reason) "
             f"(rate(driftwatch_spans_refused_total{{{INST}}}{RATE}))",
             "refused {{transport}} {{reason}}")), w=12, h=8)
    board.add(graph(
        "Export requests by code", "OTLP export requests per second by transport, signal "
        "and response code.", "reqps",
        prom(f"sum by (transport, signal, code) "
             f"(rate(driftwatch_receiver_requests_total{{{INST}}}{RATE}))",
             "{{transport}} {{signal}} {{code}}")), w=12, h=8)
    board.add(graph(
        "Export request duration", "From request received to response, commit included.",
        "s", *(prom(e, f"{p} {{{{transport}}}}") for p, e in
               zip(("p50", "p95", "p99"),
                   quantiles("driftwatch_receiver_request_duration_seconds", "transport"),
                   strict=True))), w=12, h=8)
    board.add(graph(
        "Spans by kind, calls stored", "Accepted spans per second by kind, and LLM calls "
        "newly committed.", "short",
        prom(f"sum by (kind) (rate(driftwatch_spans_by_kind_total{{{INST}}}{RATE}))",
             "{{kind}} spans"),
        prom(f"sum(rate(driftwatch_llm_calls_stored_total{{{INST}}}{RATE}))",
             "LLM calls stored")), w=12, h=8)

    board.row("Queue and store")
    board.add(graph(
        "Ingest queue fill", "Calls and events waiting for commit, as a share of the queue's "
        "capacity in items and in bytes of the text they hold (ingest.queue_max_items, "
        "queue_max_bytes); either one full refuses exports with 503.", "percentunit",
        prom(f"driftwatch_ingest_queue_items{{{INST}}} / "
             f"driftwatch_ingest_queue_capacity_items{{{INST}}}", "items {{instance}}"),
        prom(f"driftwatch_ingest_queue_bytes{{{INST}}} / "
             f"driftwatch_ingest_queue_capacity_bytes{{{INST}}}", "text {{instance}}"),
        min_val=0), w=8, h=8)
    board.add(graph(
        "Store commit latency", "Group commit duration quantiles.", "s",
        *(prom(e, p) for p, e in zip(("p50", "p95", "p99"),
                                     quantiles("driftwatch_store_commit_duration_seconds"),
                                     strict=True))), w=8, h=8)
    board.add(graph(
        "Store errors by operation", "Failed store writes per second.", "short",
        prom(f"sum by (operation) (rate(driftwatch_store_errors_total{{{INST}}}{RATE}))",
             "{{operation}}"), min_val=0), w=8, h=8)
    board.add(graph(
        "Calls in the store", "LLM calls kept (retention deletes the old ones).", "short",
        prom(f"driftwatch_store_calls{{{INST}}}", "{{instance}}"), min_val=0), w=8, h=7)
    board.add(graph(
        "Store on disk", "Bytes of the store's database and WAL, and the space left on its "
        "filesystem: when it runs out, commits fail and exports are refused.", "bytes",
        prom(f"driftwatch_store_disk_bytes{{{INST}}}", "store {{instance}}"),
        prom(f"driftwatch_store_filesystem_free_bytes{{{INST}}}", "free {{instance}}"),
        min_val=0), w=8, h=7)
    board.add(graph(
        "Embedding cache hit ratio", "Share of texts whose embedding came from the cache "
        "since the daemon started.", "percentunit",
        prom(f"driftwatch_embedding_cache_hits{{{INST}}} / (driftwatch_embedding_cache_hits"
             f"{{{INST}}} + driftwatch_embedding_cache_misses{{{INST}}})", "{{instance}}"),
        min_val=0, max_val=1), w=8, h=7)

    board.row("Jobs and notifications")
    board.add(graph(
        "Mean job run time, last hour", "Mean duration of each job's runs over the "
        "preceding hour.", "s",
        prom(f"sum by (job_name) (increase(driftwatch_job_duration_seconds_sum{{{INST}}}[1h])) / "
             f"sum by (job_name) (increase(driftwatch_job_duration_seconds_count{{{INST}}}[1h]))",
             "{{job_name}}")), w=12, h=8)
    board.add(graph(
        "Job run time, share of its interval", "Each job's last run time over its "
        "interval; near 1 the detectors fall behind and their results go stale "
        "(DriftwatchDetectorsBehind fires above 0.8).", "percentunit",
        prom(f"driftwatch_job_busy_ratio{{{INST}}}", "{{job_name}}"), min_val=0), w=12, h=8)
    board.add(graph(
        "Detector sampling rate", "Share of each segment's calls in its shared detector "
        "sample: falls as traffic grows, so each segment embeds about sample_cap texts per "
        "window.", "percentunit",
        prom(f"driftwatch_detector_sampling_rate{{{INST}}}", "{{service}} {{model}}"),
        min_val=0, max_val=1), w=12, h=8)
    board.add(graph(
        "Texts embedded per second", "Texts the embedding model ran on (cache misses), "
        "per second over 5 minutes.", "short",
        prom(f"sum by (instance) (rate(driftwatch_embedding_cache_misses{{{INST}}}[5m]))",
             "{{instance}}"), min_val=0), w=12, h=8)
    board.add(graph(
        "Notifications by outcome", "Alert notifications per second, by notifier and "
        "outcome.", "short",
        prom(f"sum by (notifier, outcome) "
             f"(rate(driftwatch_notifications_total{{{INST}}}{RATE}))",
             "{{notifier}} {{outcome}}"), min_val=0), w=12, h=8)

    board.row("Process")
    board.add(graph(
        "CPU", "CPU time per second (1 = one core busy) of the daemon process and of its "
        "extraction worker processes, which decode and extract large export requests. GC "
        "pauses: the part of the daemon's the Python garbage collector took (near 0 after "
        "start-up; a rise means objects accumulate).", "percentunit",
        prom(f"rate(process_cpu_seconds_total{{{INST}}}{RATE})", "daemon {{instance}}"),
        prom(f"rate(driftwatch_extraction_workers_cpu_seconds_total{{{INST}}}{RATE})",
             "extraction workers {{instance}}"),
        prom(f"sum by (instance) (rate(driftwatch_gc_pause_seconds_total{{{INST}}}{RATE}))",
             "GC pauses {{instance}}"), min_val=0),
        w=8, h=8)
    board.add(graph(
        "Resident memory", "Resident set size of the daemon process and of its extraction "
        "worker processes (added up): a container's memory limit holds both.", "bytes",
        prom(f"process_resident_memory_bytes{{{INST}}}", "daemon {{instance}}"),
        prom(f"driftwatch_extraction_workers_resident_memory_bytes{{{INST}}}",
             "extraction workers {{instance}}"), min_val=0),
        w=8, h=8)
    board.add(graph(
        "Open file descriptors", "Open file descriptors against the process limit.", "short",
        prom(f"process_open_fds{{{INST}}}", "open {{instance}}"),
        prom(f"process_max_fds{{{INST}}}", "limit {{instance}}"), min_val=0), w=8, h=8)
    return board.dashboard.build()
