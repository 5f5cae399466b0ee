"""Extraction worker processes: large bodies are extracted there, small ones on a thread, a
worker that dies is replaced and its request retried by the exporter, and `workers: 0`
keeps everything in the daemon process."""

from __future__ import annotations

import os
import pickle
import signal
from pathlib import Path

import pytest

from collectors.workers import (
    INLINE_BELOW,
    auto_workers,
    process_cpu_seconds,
    process_resident_bytes,
    usable_cpus,
)
from monitor.core.records import CallStatus, ContentSource, LLMCall
from tests.apps import LLMApp, otlp_exporter
from tests.harness import Daemon, raw_request, wait_for
from tests.texts import long_pairs


def worker_pids(daemon: Daemon) -> list[int]:
    assert daemon.process is not None
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == daemon.process.pid and b"collectors.worker" in cmdline:
            pids.append(int(stat.parent.name))
    return sorted(pids)


def send_long_calls(daemon: Daemon, protocol: str, n: int) -> LLMApp:
    """n calls with 300-1,500-character texts, exported in batches of 512 (bodies of ~1 MB)."""
    app = LLMApp(otlp_exporter(protocol, daemon.grpc if protocol == "grpc" else daemon.http))
    for prompt, completion in long_pairs(n):
        app.chat(prompt, completion)
    app.flush()
    app.shutdown()
    return app


def stored_ids(daemon: Daemon) -> list[tuple[str, str]]:
    return [(c["trace_id"], c["span_id"]) for c in daemon.calls("--limit", "100000")]


def sent_ids(app: LLMApp) -> set[tuple[str, str]]:
    return {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}")
            for s in app.exporter.exported}


def test_large_bodies_are_extracted_in_worker_processes_and_stored(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(ingest={"workers": 2})
    assert len(wait_for(lambda: len(worker_pids(daemon)) == 2 and worker_pids(daemon))) == 2

    app = send_long_calls(daemon, "http", 600)

    assert app.exporter.failures == 0
    assert sorted(stored_ids(daemon)) == sorted(sent_ids(app))
    assert daemon.metric("driftwatch_extractions_total", where="worker") >= 1


def test_small_bodies_are_extracted_on_a_thread(daemon: Daemon) -> None:
    app = LLMApp(otlp_exporter("http", daemon.http))
    app.chat("What is my balance?", "Your balance is 10 EUR.")
    app.flush()
    app.shutdown()

    assert daemon.metric("driftwatch_extractions_total", where="thread") == 1
    assert daemon.metric("driftwatch_extractions_total", where="worker") == 0
    assert len(daemon.calls()) == 1


def test_a_killed_worker_is_replaced_and_the_exporter_retries_its_request(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(ingest={"workers": 2, "retry_after": "1s"})
    first = wait_for(lambda: len(worker_pids(daemon)) == 2 and worker_pids(daemon))
    os.kill(first[0], signal.SIGKILL)

    app = send_long_calls(daemon, "grpc", 1100)

    assert app.exporter.failures == 0
    stored = stored_ids(daemon)
    assert len(stored) == len(set(stored)) == 1100
    assert set(stored) == sent_ids(app)
    assert daemon.metric("driftwatch_extraction_worker_restarts_total") == 1
    replaced = worker_pids(daemon)
    assert len(replaced) == 2 and first[0] not in replaced


def test_the_workers_cpu_is_exported_and_kept_when_one_is_replaced(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(ingest={"workers": 2, "retry_after": "1s"})
    first = wait_for(lambda: len(worker_pids(daemon)) == 2 and worker_pids(daemon))
    at_start = daemon.metric("driftwatch_extraction_workers_cpu_seconds_total")

    send_long_calls(daemon, "http", 1024)

    worked = daemon.metric("driftwatch_extraction_workers_cpu_seconds_total")
    assert worked > at_start
    # The workers' own CPU (the daemon process's is process_cpu_seconds_total); idle now.
    assert worked == pytest.approx(sum(process_cpu_seconds(pid) or 0 for pid in first),
                                   abs=0.05)

    killed_used = process_cpu_seconds(first[0]) or 0
    os.kill(first[0], signal.SIGKILL)
    send_long_calls(daemon, "grpc", 600)  # finds the dead worker and replaces it

    assert daemon.metric("driftwatch_extraction_worker_restarts_total") == 1
    # The replaced worker's CPU stays in the total, so it never goes back.
    live = sum(process_cpu_seconds(pid) or 0 for pid in worker_pids(daemon))
    assert daemon.metric("driftwatch_extraction_workers_cpu_seconds_total") == pytest.approx(
        killed_used + live, abs=0.05)


def test_the_workers_memory_is_exported_beside_the_daemons(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(ingest={"workers": 2})
    pids = wait_for(lambda: len(worker_pids(daemon)) == 2 and worker_pids(daemon))
    send_long_calls(daemon, "http", 600)

    exported = daemon.metric("driftwatch_extraction_workers_resident_memory_bytes")

    # Each worker holds the interpreter and the extraction modules: tens of MB, not the
    # daemon's hundreds, and not counted in its process_resident_memory_bytes.
    assert exported == pytest.approx(sum(map(process_resident_bytes, pids)), rel=0.1)
    assert 2 * 10e6 < exported < daemon.metric("process_resident_memory_bytes")


def test_a_body_that_does_not_decode_in_a_worker_is_a_400(daemon: Daemon) -> None:
    body = b"\x0a" + b"\xff" * (INLINE_BELOW * 2)  # a field header, then a broken length

    status, _, text = raw_request("POST", daemon.http + "/v1/traces", body,
                               {"Content-Type": "application/x-protobuf"})

    assert status == 400
    assert b"not a valid ExportTraceServiceRequest" in text
    assert daemon.metric("driftwatch_extractions_total", where="worker") == 1
    assert daemon.alive()


def test_with_no_workers_large_bodies_are_extracted_on_threads(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(ingest={"workers": 0})
    assert worker_pids(daemon) == []

    app = send_long_calls(daemon, "http", 600)

    assert app.exporter.failures == 0
    assert len(stored_ids(daemon)) == 600
    assert daemon.metric("driftwatch_extractions_total", where="worker") == 0


def test_workers_stop_with_the_daemon(start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon = start_daemon(ingest={"workers": 2})
    pids = wait_for(lambda: len(worker_pids(daemon)) == 2 and worker_pids(daemon))

    assert daemon.stop() == 0

    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def test_auto_workers_follow_a_containers_cpu_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")  # a limit of 1.5 cores
    assert usable_cpus(cpu_max) == min(2, len(os.sched_getaffinity(0)))
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max) == len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path / "absent") == len(os.sched_getaffinity(0))


def test_a_call_comes_back_from_a_worker_equal_and_of_its_type() -> None:
    call = LLMCall(trace_id="ab" * 16, span_id="cd" * 8, parent_span_id=None, service="bot",
                   provider="openai", request_model="gpt-4o", response_model=None,
                   operation="chat", start_ns=1, duration_s=0.5, status=CallStatus.ERROR,
                   error_type="timeout", finish_reasons=("stop",), prompt="Hi – ✓",
                   content_source=ContentSource.OPENINFERENCE)

    back = pickle.loads(pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL))

    assert back == call and type(back) is LLMCall
    assert back.status is CallStatus.ERROR and back.model == "gpt-4o"


def test_workers_leave_sigterm_to_the_daemon(start_daemon) -> None:  # type: ignore[no-untyped-def]
    """systemd signals the whole cgroup: the workers must live on while the daemon drains."""
    daemon = start_daemon(ingest={"workers": 2})
    send_long_calls(daemon, "http", 1100)  # two bodies at once: both workers are up
    pids = worker_pids(daemon)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)

    app = send_long_calls(daemon, "http", 600)

    assert app.exporter.failures == 0
    assert len(pids) == 2 and worker_pids(daemon) == pids
    assert daemon.metric("driftwatch_extraction_worker_restarts_total") == 0
    assert daemon.stop() == 0


def test_auto_workers_are_one_per_core_up_to_four() -> None:
    assert [auto_workers(cores) for cores in (1, 2, 4, 64)] == [1, 2, 4, 4]
    assert auto_workers() == min(usable_cpus(), 4)
