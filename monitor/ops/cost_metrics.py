"""What the LLM calls cost, on /metrics: `driftwatch_llm_cost_usd_total{service,model}`.

Fed the committed calls the GenAI histograms see (`MeteredSink`), so a re-delivered span or a
framework span wrapping a provider span of the same exchange adds nothing. Service and model
come from the wire, so the family is bounded like the others (`monitor.ops.cardinality`):
past `metrics.cardinality_limit` label sets, spend goes on into the overflow series and the
total stays right.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator, Sequence

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from monitor.core.records import LLMCall
from monitor.ops.cardinality import CardinalityLimits, label_value, overflow_sample

NAME = "driftwatch_llm_cost_usd"
HELP = "USD spent on LLM calls, by the price table (calls without a price add nothing)"


class CostMetrics(Collector):
    def __init__(self, registry: CollectorRegistry, limits: CardinalityLimits) -> None:
        self._lock = threading.Lock()
        self._usd: dict[Hashable, float] = {}
        self._limit = limits.of(f"{NAME}_total")
        registry.register(self)

    def observe(self, calls: Sequence[LLMCall]) -> None:
        with self._lock:
            for call in calls:
                cost = call.cost_usd
                if cost is None:
                    continue
                key = self._limit.admit((call.service, call.model or ""))
                self._usd[key] = self._usd.get(key, 0.0) + cost

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(NAME, HELP, labels=["service", "model"])
        with self._lock:
            for key, usd in self._usd.items():
                if isinstance(key, tuple):
                    family.add_metric([label_value(v) for v in key], usd)
                else:
                    family.samples.append(overflow_sample(f"{NAME}_total", usd))
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(NAME, HELP, labels=["service", "model"])
