"""Where request bodies are decoded and extracted: worker processes, or threads for small ones.

Extraction is pure Python, and under one interpreter lock it would cap the daemon at one
core. So large bodies go to worker processes (`python -m collectors.worker`, which import
only the extraction modules) and come back as calls; small bodies, where the round trip
to a worker costs more than it saves, are extracted on a thread of the daemon. With
`workers: 0` everything stays on threads.

A worker that dies (killed, out of memory) is replaced, and the request it had is answered
as overload, so its exporter retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import math
import os
import pickle
import queue
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

import collectors
from collectors.extract import Extracted, Media, Signal, extract_body
from monitor.core.errors import BadRequest, Overloaded
from monitor.core.metrics import SelfMetrics

log = logging.getLogger(__name__)

INLINE_BELOW = 32 * 1024  # bytes: smaller bodies are extracted on a daemon thread
# Past four workers extraction outruns what the one store writer commits (~20 µs of a core
# per call), and each worker is ~30 MB: "auto" stops there on large machines.
MAX_AUTO_WORKERS = 4
_PIPE_BYTES = 1 << 20
_PACKAGE_ROOT = str(Path(collectors.__file__).resolve().parent.parent)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def usable_cpus(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Cores this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a
    container's CPU limit), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota
    return max(1, cores)


def _widen(pipe_fd: int) -> None:
    """A 1 MiB pipe (Linux's default cap) instead of 64 KiB: a request body crosses in a few
    writes instead of dozens of wake-ups of the reader."""
    # A lower pipe-max-size refuses it: the default size works, only slower.
    with contextlib.suppress(OSError):
        fcntl.fcntl(pipe_fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), _PIPE_BYTES)


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a process (Linux /proc), None when unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    except (OSError, ValueError, IndexError):
        return None


def process_resident_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc), 0 when unreadable."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


def auto_workers(cores: int | None = None) -> int:
    """What `ingest.workers: auto` means: one per usable core, at most MAX_AUTO_WORKERS."""
    return min(cores or usable_cpus(), MAX_AUTO_WORKERS)


class WorkerDied(Exception):
    """The worker process exited (or its pipe broke) while it had a request."""


class _Worker:
    """One worker process and the two pipes to it; used by one thread at a time."""

    def __init__(self) -> None:
        request_r, request_w = os.pipe()
        answer_r, answer_w = os.pipe()
        for fd in (request_w, answer_w):
            _widen(fd)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "collectors.worker"], stdin=request_r, stdout=answer_w,
                env=env, close_fds=True)
        finally:
            os.close(request_r)
            os.close(answer_w)
        self._requests = Connection(request_w, readable=False)
        self._answers = Connection(answer_r, writable=False)

    def call(self, signal: Signal, body: bytes, media: Media, max_chars: int,
             variant_key: str | None = None) -> Extracted:
        """:raises BadRequest: undecodable body. :raises WorkerDied: the process is gone."""
        try:
            request = (signal, body, media, max_chars, variant_key)
            self._requests.send_bytes(pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
            kind, value = pickle.loads(self._answers.recv_bytes())
        except (EOFError, OSError) as exc:
            raise WorkerDied(str(exc) or type(exc).__name__) from None
        if kind == "bad":
            raise BadRequest(value)
        if kind == "error":
            raise RuntimeError(f"extraction failed in a worker: {value}")
        result: Extracted = value
        return result

    def close(self, timeout_s: float = 5.0) -> None:
        self._requests.close()  # the worker sees EOF and exits
        self._answers.close()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ExtractionPool:
    """Runs `extract_body` for the receivers; started and closed by the daemon."""

    def __init__(self, workers: int, metrics: SelfMetrics, *, retry_after_s: float) -> None:
        self.workers = workers
        self._metrics = metrics
        self._retry_after_s = retry_after_s
        self._inline = ThreadPoolExecutor(max_workers=2, thread_name_prefix="extract")
        # One thread per worker process, each sending a request and waiting for its answer
        # (the pipes release the interpreter lock while they wait).
        self._callers = ThreadPoolExecutor(max_workers=max(1, workers),
                                           thread_name_prefix="extract-call")
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        # CPU of the workers already replaced, and the last reading of each live one: the
        # total never goes back when a worker is.
        self._retired_cpu_s = 0.0
        self._last_cpu_s: dict[int, float] = {}
        metrics.watch_total(
            "extraction_workers_cpu_seconds", "CPU seconds (user and system) used by the "
            "extraction worker processes, the replaced ones included; the daemon process's "
            "own is process_cpu_seconds_total", self.cpu_seconds)
        metrics.watch(
            "extraction_workers_resident_memory_bytes", "Resident memory of the extraction "
            "worker processes, added up; the daemon process's own is "
            "process_resident_memory_bytes", self.resident_bytes)

    def start(self) -> None:
        for _ in range(self.workers):
            self._add()

    async def extract(self, signal: Signal, body: bytes, media: Media,
                      max_chars: int, variant_key: str | None = None) -> Extracted:
        """:raises BadRequest: undecodable body. :raises Overloaded: a worker died."""
        loop = asyncio.get_running_loop()
        if not self._all or len(body) < INLINE_BELOW:
            self._metrics.extractions.labels("thread").inc()
            return await loop.run_in_executor(
                self._inline, extract_body, signal, body, media, max_chars, variant_key)
        self._metrics.extractions.labels("worker").inc()
        try:
            return await loop.run_in_executor(
                self._callers, self._call, signal, body, media, max_chars, variant_key)
        except WorkerDied:
            raise Overloaded("an extraction worker died; retry the request",
                             self._retry_after_s) from None

    def _call(self, signal: Signal, body: bytes, media: Media, max_chars: int,
              variant_key: str | None) -> Extracted:
        """On a caller thread: take an idle worker, use it, give it back (or replace it)."""
        worker = self._idle.get()
        try:
            result = worker.call(signal, body, media, max_chars, variant_key)
        except WorkerDied as exc:
            self._replace(worker, str(exc))
            raise
        except BaseException:
            self._idle.put(worker)
            raise
        self._idle.put(worker)
        return result

    def cpu_seconds(self) -> float:
        """CPU its worker processes have used so far, replaced ones included (Linux)."""
        with self._lock:
            for worker in self._all:
                pid = worker.process.pid
                seconds = process_cpu_seconds(pid)
                if seconds is not None:  # else the last reading stands
                    self._last_cpu_s[pid] = seconds
            return self._retired_cpu_s + sum(self._last_cpu_s.values())

    def resident_bytes(self) -> float:
        """Resident memory of the live worker processes, added up (Linux)."""
        with self._lock:
            pids = [worker.process.pid for worker in self._all]
        return float(sum(map(process_resident_bytes, pids)))

    def _retire(self, worker: _Worker) -> None:
        """Move a worker's CPU to the retired total; before it is reaped, so /proc still
        has its final count. The caller holds the lock."""
        pid = worker.process.pid
        last = self._last_cpu_s.pop(pid, 0.0)
        self._retired_cpu_s += process_cpu_seconds(pid) or last

    def _add(self) -> None:
        worker = _Worker()
        with self._lock:
            self._all.append(worker)
        self._idle.put(worker)

    def _replace(self, dead: _Worker, why: str) -> None:
        with self._lock:  # before poll() below reaps it
            self._all.remove(dead)
            self._retire(dead)
            closed = self._closed
        log.error("extraction worker %d died (%s, exit code %s); starting another",
                  dead.process.pid, why, dead.process.poll())
        dead.close(timeout_s=1.0)
        self._metrics.worker_restarts.inc()
        if not closed:
            self._add()

    def close(self) -> None:
        """Wait for requests in flight, then end the workers."""
        with self._lock:
            self._closed = True
        self._callers.shutdown(wait=True)
        self._inline.shutdown(wait=True)
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.close()
