"""What calls cost, end to end: spans from the real OpenTelemetry SDK exporter into the real
daemon, `cost_usd` on `calls --json` and in the table, and the spend on /metrics."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.apps import LLMApp, otlp_exporter
from tests.harness import Daemon, cli, write_config
from tests.monitor.test_daemon import post, span_request

PRICES = {"models": [
    {"model": "acme-large", "input_usd_per_million": 4.0, "output_usd_per_million": 16.0,
     "cached_input_usd_per_million": 1.0},
    {"pattern": "acme-tiny-.*", "input_usd_per_million": 0.5, "output_usd_per_million": 2.0},
]}


def test_calls_are_priced_once_as_stored_and_the_spend_is_exported(
        start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon(pricing=PRICES)
    app = LLMApp(otlp_exporter("http", daemon.http), service="support-bot")
    try:
        app.chat("plain", "a", model="acme-large", input_tokens=1000, output_tokens=500)
        app.chat("cached", "a", model="acme-large", input_tokens=1000, output_tokens=500,
                 cached_input_tokens=800)
        app.chat("dated", "a", model="acme-large-2025-06-01", input_tokens=1000,
                 output_tokens=500)
        app.chat("fine-tuned", "a", model="ft:acme-large-2025-06-01:shop::x1", input_tokens=1000,
                 output_tokens=500)
        app.chat("pattern", "a", model="acme-tiny-2b", input_tokens=2000, output_tokens=1000)
        app.chat("shipped", "a", model="gpt-4o-2024-08-06", input_tokens=1000, output_tokens=100)
        app.chat("unknown", "a", model="homebrew-7b")
        app.flush()
    finally:
        app.shutdown()
    cost = {c["prompt"]: c["cost_usd"] for c in daemon.calls()}
    full = (1000 * 4.0 + 500 * 16.0) / 1e6
    assert cost["plain"] == pytest.approx(full)
    assert cost["cached"] == pytest.approx((200 * 4.0 + 800 * 1.0 + 500 * 16.0) / 1e6)
    assert cost["dated"] == pytest.approx(full) and cost["fine-tuned"] == pytest.approx(full)
    assert cost["pattern"] == pytest.approx((2000 * 0.5 + 1000 * 2.0) / 1e6)
    assert cost["shipped"] == pytest.approx((1000 * 2.5 + 100 * 10.0) / 1e6)  # gpt-4o's list
    assert cost["unknown"] is None
    cached = {c["prompt"]: c["cached_input_tokens"] for c in daemon.calls()}
    assert cached["cached"] == 800 and cached["plain"] is None

    spent = daemon.metric("driftwatch_llm_cost_usd_total", service="support-bot",
                          model="acme-large")
    assert spent == pytest.approx(cost["plain"] + cost["cached"])
    total = daemon.metric("driftwatch_llm_cost_usd_total")
    assert total == pytest.approx(sum(v for v in cost.values() if v is not None))
    assert daemon.metric("driftwatch_calls_unpriced_total", reason="unknown_model") == 1
    assert daemon.metric("driftwatch_calls_unpriced_total", reason="no_tokens") == 0

    table = cli("calls", "--config", str(daemon.config_path), "--since", "30d").stdout
    header, *rows = table.splitlines()
    assert "COST $" in header
    assert any("homebrew-7b" in row and " - " in row for row in rows)
    assert any("acme-large" in row and f"{full:.4f}" in row for row in rows)


def test_a_redelivered_span_adds_its_cost_once(start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon(pricing=PRICES)
    request = span_request(os.urandom(16), os.urandom(8), name="chat acme-large", attributes={
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "acme",
        "gen_ai.request.model": "acme-large", "gen_ai.usage.input_tokens": 1000,
        "gen_ai.usage.output_tokens": 0})
    for _ in range(3):  # as an exporter retries after a lost acknowledgement
        assert post(daemon, "traces", request) == 200
    assert daemon.metric("driftwatch_llm_calls_duplicate_total") == 2
    assert daemon.metric("driftwatch_llm_cost_usd_total") == pytest.approx(4000 / 1e6)


def test_pricing_off_leaves_every_cost_null_and_counts_nothing(
        start_daemon: Callable[..., Daemon]) -> None:
    daemon = start_daemon(pricing={"enabled": False})
    app = LLMApp(otlp_exporter("grpc", daemon.grpc))
    app.chat("hello", "a", model="gpt-4o")
    app.flush()
    app.shutdown()
    assert [c["cost_usd"] for c in daemon.calls()] == [None]
    assert "driftwatch_calls_unpriced_total" not in "".join(daemon.metrics())


def test_a_bad_price_is_refused_before_anything_starts(tmp_path: Path) -> None:
    config = write_config(tmp_path, pricing={"models": [
        {"model": "gpt-4o", "input_usd_per_million": -2.5, "output_usd_per_million": 10}]})
    result = cli("validate", str(config), check=False)
    assert result.returncode != 0
    assert ("pricing.models.0.input_usd_per_million: Input should be greater than or equal "
            "to 0, got: -2.5") in result.stderr + result.stdout
