"""The `canary` job: each service's newest `service.version` compared with the one before it,
while the new one is younger than `canary.window`.

Every run, for every watched service whose calls carry `service.version`: the newest version
(by its first call) is B, the version that appeared before it is A, and both sides' calls
from `window` before B's first call until now are compared (`Comparer`, decided at
`canary.alpha`, `canary.min_samples` calls a side). The result is anomalous when B is
significantly worse on a measure that can regress (latency, errors, tokens, cost per call,
toxicity, an evaluation's pass rate or score), insufficient data until both sides have enough
calls, and carries the comparison's report page. Once B is older than `window` the canary of
B is over: one result says so (not anomalous), and the service gets no more until a newer
version appears.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from monitor.core.components import Store, ValueSeen
from monitor.core.records import DetectorResult, rfc3339
from monitor.jobs.canary.comparer import Comparer, NothingToCompare, Selector
from monitor.jobs.canary.config import CanaryConfig
from monitor.jobs.canary.details import DETECTOR, CanaryDetails, CanaryMeasure
from monitor.jobs.references import References
from monitor.store.history import SqliteHistory

log = logging.getLogger(__name__)


class CanaryJob:
    def __init__(self, config: CanaryConfig, store: Store, references: References,
                 history: SqliteHistory, comparer: Comparer) -> None:
        self._config = config
        self._store = store
        self._references = references
        self._history = history
        self._comparer = comparer

    def run(self, now_ns: int | None = None) -> list[DetectorResult]:
        now = now_ns or time.time_ns()
        window = int(self._config.window * 1e9)
        services = sorted({s.service for s in self._references.segments(now - window)})
        results = []
        for service in services:
            seen = self._store.values_seen(service, "service_version", now - 2 * window)
            found = self._canary(service, seen, now, window)
            if found is not None:
                results.append(found)
        return self._history.record(results)

    def _canary(self, service: str, seen: dict[str, ValueSeen], now: int,
                window: int) -> DetectorResult | None:
        if len(seen) < 2:
            return None
        order = sorted(seen, key=lambda v: (seen[v].first_ns, v))
        new, previous = order[-1], order[-2]
        first = seen[new].first_ns
        details = CanaryDetails(version=new, previous_version=previous,
                                first_seen=rfc3339(first))
        base = DetectorResult(
            detector=DETECTOR, service=service, model=None, direction=None,
            window_start_ns=first - window, window_end_ns=now, n_reference=0, n_current=0,
            statistic=None, p_value=None, anomalous=None, summary="", details=details,
            computed_ns=now)
        label = f"{service}, B = {new} against A = {previous}"
        if now - first > window:
            if self._over(service, new):
                return None
            return replace(base, anomalous=False, summary=(
                f"canary of {label} is over: its first call was more than "
                f"{self._config.window:g}s ago"))
        try:
            body = self._comparer.run(
                service, Selector("service_version", previous), Selector("service_version", new),
                since_ns=first - window, until_ns=now, alpha=self._config.alpha,
                min_samples=self._config.min_samples, origin="canary")
        except NothingToCompare as exc:
            return replace(base, summary=f"insufficient data for the canary of {label}: "
                                         f"{exc.args[0]}")
        return self._result(base, details, label, body)

    def _over(self, service: str, version: str) -> bool:
        """Whether the last result of this service already said the canary of `version`
        was over (so it is said once)."""
        last = self._history.recent(detector=DETECTOR, service=service, model=None,
                                    direction=None, limit=1)
        if not last:
            return False
        details = last[0].details.to_json()
        return details.get("version") == version and last[0].summary.startswith("canary of")

    def _result(self, base: DetectorResult, details: CanaryDetails, label: str,
                body: dict[str, Any]) -> DetectorResult:
        raw: list[dict[str, Any]] = body["measures"]
        measures = tuple(CanaryMeasure.from_json(m) for m in raw)
        regressed = tuple(m.measure for m in measures if m.significant and m.worse)
        decided = [m for m in measures if m.significant is not None]
        anomalous = bool(regressed) if decided else None
        worst = [m.p_value for m in measures if m.measure in regressed and m.p_value is not None]
        tested = [m.p_value for m in decided if m.p_value is not None]
        p_value = min(worst or tested) if (worst or tested) else None
        counts = {m["measure"]: (m["n_a"], m["n_b"]) for m in raw}
        n_a, n_b = counts.get("latency_p50", (0, 0))
        details = replace(details, comparison=body["id"], report=body["report"],
                          verdict=body["verdict"], regressed=regressed, measures=measures)
        summary = (f"insufficient data for the canary of {label}: {self._config.min_samples} "
                   "calls of each version needed" if anomalous is None
                   else f"canary of {label}: {body['verdict']}")
        return replace(base, n_reference=n_a, n_current=n_b, p_value=p_value,
                       anomalous=anomalous, summary=summary, details=details)
