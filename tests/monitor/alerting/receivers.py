"""Working fakes for alerting tests: a loopback HTTP receiver that records every request
and answers from a script (what a webhook, Slack or PagerDuty endpoint does), and the alert
engine in-process on a real store file, fed detector results."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.alerting.engine import AlertEngine, JobStatus, Sources, rules_from_config
from monitor.alerting.notifiers import Dispatcher, build_notifiers
from monitor.config import Config
from monitor.core.metrics import SelfMetrics
from monitor.core.records import DetectorResult, Direction
from monitor.daemon import DETECTORS
from monitor.store.alert_state import AlertRecord, SqliteAlertState
from monitor.store.sqlite import SqliteStore
from tests.loopback import LoopbackServer, Reply, Request


@dataclass
class Recorded:
    at: float  # time.monotonic()
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay_s: float = 0.0


class Receiver:
    """Answers the scripted answers in order, then `default` for ever."""

    def __init__(self, *answers: Answer, default: Answer | None = None) -> None:
        self.script = list(answers)
        self.default = default or Answer()
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self.url = ""

    def handle(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(Recorded(at=time.monotonic(), path=request.path,
                                          headers=request.headers,
                                          body=json.loads(request.body)))
            answer = self.script.pop(0) if self.script else self.default
        time.sleep(answer.delay_s)
        return Reply(answer.status, answer.body, answer.headers)

    def bodies(self) -> list[Any]:
        with self._lock:
            return [r.body for r in self.requests]

    def wait(self, n: int, timeout: float = 20.0) -> list[Any]:
        """The first `n` request bodies, once they arrived."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} of {n} requests arrived: "
                                     f"{self.bodies()}")
            time.sleep(0.02)
        return self.bodies()[:n]

    def answer(self, *answers: Answer, default: Answer | None = None) -> None:
        with self._lock:
            self.script = list(answers)
            if default is not None:
                self.default = default


@contextmanager
def receiving(*answers: Answer, default: Answer | None = None) -> Iterator[Receiver]:
    receiver = Receiver(*answers, default=default)
    server = LoopbackServer(receiver.handle)
    receiver.url = server.url
    try:
        yield receiver
    finally:
        server.close()


# -- the alert engine in-process, on a real store file ---------------------------------------

EXTERNAL_URL = "http://driftwatch.test:9464"
_ids = itertools.count(1)


def result(detector: str = "latency", *, service: str = "chat", model: str | None = "gpt-4o",
           direction: str | None = None, anomalous: bool | None = True,
           computed_ns: int | None = None, summary: str = "", statistic: float | None = 2.0,
           **details: Any) -> DetectorResult:
    """A detector result as the jobs store it, with a fresh id (a new observation); `details`
    are its detector's, as in `status --json` (those not given are empty)."""
    now = computed_ns or time.time_ns()
    return DetectorResult(
        id=next(_ids), detector=detector, service=service, model=model,
        direction=Direction(direction) if direction else None, window_start_ns=now - 900 * 10**9,
        window_end_ns=now, n_reference=100, n_current=100, statistic=statistic, p_value=1e-6,
        anomalous=anomalous, summary=summary or f"{detector} result",
        details=DETECTORS[detector].details_from_json(details),
        computed_ns=now)


class Alerting:
    """AlertEngine + Dispatcher + real notifiers + SqliteAlertState on a migrated store file,
    fed the results, job states and refusals a test sets. `restart()` builds them anew on
    the same file, as a daemon restart does."""

    def __init__(self, path: Path, alerts: dict[str, Any], **sections: Any) -> None:
        self.path = path
        self.config = Config.model_validate(
            {"store": {"path": str(path)}, "alerts": alerts, **sections})
        SqliteStore(path).close()  # creates and migrates the file
        self.results: list[DetectorResult] = []
        self.jobs: dict[str, JobStatus] = {}
        self.refused = 0.0
        self.free_bytes: float | None = 10 << 30
        self._build()

    def _build(self) -> None:
        self.metrics = SelfMetrics()
        self.state = SqliteAlertState(self.path)
        self.stopping = threading.Event()
        self.dispatcher = Dispatcher(
            build_notifiers(self.config.alerts, self.metrics, self.stopping,
                            lambda: EXTERNAL_URL), self.state, self.stopping)
        self.engine = AlertEngine(
            self.config.alerts, rules_from_config(self.config, DETECTORS), self.state,
            Sources(results=lambda: self.results, jobs=lambda: self.jobs,
                    refused_total=lambda: self.refused, free_bytes=lambda: self.free_bytes),
            self.metrics, self.dispatcher, lambda: EXTERNAL_URL)

    def run(self, now_ns: int | None = None, wait: bool = True) -> dict[str, dict[str, Any]]:
        """Evaluate (and deliver); the alerts by '<alertname> <labels>'."""
        out = self.engine.run(now_ns)
        if wait:
            self.settle()
        return {key(a["labels"]): a for a in out}

    def settle(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.dispatcher.idle():
            assert time.monotonic() < deadline, "deliveries did not finish"
            time.sleep(0.01)

    def alerts(self) -> dict[str, AlertRecord]:
        return {key(a.labels): a for a in self.state.alerts()}

    def restart(self) -> None:
        self.close()
        self._build()

    def close(self) -> None:
        asyncio.run(self.dispatcher.stop())
        self.state.close()


def key(labels: Any) -> str:
    rest = ",".join(f"{k}={v}" for k, v in sorted(labels.items())
                    if k not in ("alertname", "severity"))
    return f"{labels['alertname']} {rest}".strip()
