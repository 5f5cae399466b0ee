"""`driftwatch_llm_cost_usd_total` is bounded like the other families: past the limit, spend
goes on into the overflow series and the total stays right."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.records import LLMCall
from monitor.ops.cardinality import CardinalityLimits
from monitor.ops.cost_metrics import CostMetrics


def call(i: int, model: str, cost: float | None) -> LLMCall:
    return LLMCall(trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", parent_span_id=None,
                   service="shop", provider="openai", request_model=model, response_model=None,
                   operation="chat", start_ns=1, duration_s=1.0, cost_usd=cost)


def samples(registry: CollectorRegistry) -> dict[tuple[tuple[str, str], ...], float]:
    text = generate_latest(registry).decode()
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            if family.name == "driftwatch_llm_cost_usd" for s in family.samples}


def test_spend_past_the_label_limit_goes_to_the_overflow_series() -> None:
    registry = CollectorRegistry()
    cost = CostMetrics(registry, CardinalityLimits(limit=2, registry=registry))
    cost.observe([call(0, "gpt-4o", 0.5), call(1, "ft:gpt-4o:acme::1", 0.25),
                  call(2, "ft:gpt-4o:acme::2", 0.125), call(3, "ft:gpt-4o:acme::3", 0.125),
                  call(4, "gpt-4o", None), call(5, "gpt-4o\x1b[2J", 1.0)])
    found = samples(registry)
    assert found == {
        (("model", "gpt-4o"), ("service", "shop")): 0.5,
        (("model", "ft:gpt-4o:acme::1"), ("service", "shop")): 0.25,
        (("otel_metric_overflow", "true"),): 1.25,
    }
    assert sum(found.values()) == pytest.approx(2.0)
    overflowed = generate_latest(registry).decode()
    assert ('driftwatch_metric_label_sets_overflowed_total{metric="driftwatch_llm_cost_usd_total"}'
            ' 3.0') in overflowed
