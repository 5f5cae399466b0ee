"""Overview: the SRE's landing page. Service levels and error budget first, then traffic,
errors, latency, time to first token, tokens and cost, from the GenAI client metrics the
daemon derives from every call, beside what the latency detector measured on its window."""

from __future__ import annotations

from grafana_foundation_sdk.models.dashboard import Dashboard, DynamicConfigValue

from dashboards.defaults import DEFAULTS
from dashboards.kit import (
    RATE,
    Board,
    alert_annotations,
    cell_thresholds,
    graph,
    label_values,
    prom,
    segment_table,
    stat,
    whole,
)

UID = "driftwatch-overview"

CALLS = "gen_ai_client_operation_duration_seconds"
TTFT = "gen_ai_server_time_to_first_token_seconds"
TOKENS = "gen_ai_client_token_usage"
COST = "driftwatch_llm_cost_usd_total"
SEL = 'service_name=~"$service", gen_ai_provider_name=~"$provider", gen_ai_request_model=~"$model"'
SVC = 'service=~"$service"'
SVC_NAME = 'service_name=~"$service"'
FAILED = ', error_type!=""'

PAGE_FAST, PAGE_SLOW = 14.4, 6.0  # burn factors of the 1h/5m and 6h/30m paging windows
TICKET_FAST, TICKET_SLOW = 3.0, 1.0  # and of the 1d/2h and 3d/6h ticket windows
BURN_STEPS = ((None, "green"), (PAGE_SLOW, "orange"), (PAGE_FAST, "red"))
WINDOW_STEPS = ((None, "green"), (TICKET_SLOW, "yellow"), (TICKET_FAST, "orange"),
                (PAGE_SLOW, "dark-orange"), (PAGE_FAST, "red"))


def error_ratio(by: str, window: str, selector: str = SEL) -> str:
    """Failed calls over all calls; 0, not empty, where none failed."""
    def total(extra: str = "") -> str:
        return f"sum by ({by}) (increase({CALLS}_count{{{selector}{extra}}}{window}))"
    return f"(({total(FAILED)}) or ({total()} * 0)) / {total()}"


def quantile(q: float, metric: str, by: str) -> str:
    return (f"histogram_quantile({q}, sum by (le{', ' + by if by else ''}) "
            f"(rate({metric}_bucket{{{SEL}}}{RATE})))")


def build() -> Dashboard:
    board = Board("driftwatch / Overview", UID,
                  "Service levels, traffic, errors, latency and tokens of the LLM calls "
                  "driftwatch receives.")
    d = board.dashboard.time("now-6h", "now").refresh("1m")
    d.with_variable(label_values("service", "service_name", f"{CALLS}_count", title="Service"))
    d.with_variable(label_values("provider", "gen_ai_provider_name",
                                 f"{CALLS}_count{{{SVC_NAME}}}",
                                 title="Provider"))
    d.with_variable(label_values(
        "model", "gen_ai_request_model",
        f'{CALLS}_count{{service_name=~"$service", gen_ai_provider_name=~"$provider"}}',
        title="Model", description="The model each call asked for"))
    alert_annotations(board, SVC)

    board.row("Service levels")
    for name, slo_label in (("Availability", "availability"), ("Latency", "latency")):
        board.add(stat(
            f"{name} burn rate, last hour",
            f"How fast the {name.lower()} error budget burns over the last hour (1 = exactly "
            f"on budget). Pages above {PAGE_FAST}× together with the 5m window.",
            "suffix:×",
            prom(f'max by (service) (driftwatch_slo_burn_rate{{{SVC}, model="", '
                 f'slo="{slo_label}", window="1h"}})', "{{service}}"),
            steps=BURN_STEPS, decimals=2), w=6, h=5)
    availability = DEFAULTS.slo_availability
    budget = f"1 - ({error_ratio('service_name', '[30d]', SVC_NAME)}) / {1 - availability:g}"
    board.add(stat(
        "Error budget left, 30 days",
        f"Share of the availability error budget ({availability:.0%} of calls without "
        "error) not yet spent over the last 30 days, or as much as Prometheus keeps.",
        "percentunit", prom(budget, "{{service_name}}"),
        steps=((None, "red"), (0.0, "orange"), (0.25, "green")), decimals=1), w=6, h=5)
    board.add(stat(
        "Firing alerts", "driftwatch alerts firing now, by severity.", "none",
        prom('sum by (severity) (driftwatch_alerts{state="firing"})', "{{severity}}"),
        steps=((None, "green"), (1, "red")), no_value="0", show_name=True), w=6, h=5)
    board.add(graph(
        "Burn rate by window",
        "Error-budget burn rate of each SLO and window (5m to 3d), for the whole service. "
        f"The dashed lines are the SRE workbook's factors: a page at {PAGE_FAST:g}× (1h "
        f"with 5m) or {PAGE_SLOW:g}× (6h with 30m), a ticket at {TICKET_FAST:g}× (1d with "
        f"2h) or {TICKET_SLOW:g}× (3d with 6h). A window longer than the store's retention "
        "has no value.", "suffix:×",
        prom(f'driftwatch_slo_burn_rate{{{SVC}, model=""}}',
             "{{service}} {{slo}} {{window}}"),
        steps=WINDOW_STEPS), w=24, h=8)

    board.row("Traffic and errors")
    board.add(graph(
        "Calls per second by model", "GenAI operations per second, by requested model.",
        "reqps", prom(f"sum by (gen_ai_request_model) (rate({CALLS}_count{{{SEL}}}{RATE}))",
                      "{{gen_ai_request_model}}")), w=12, h=8)
    board.add(graph(
        "Error ratio by error type", "Share of calls that failed, stacked by error type.",
        "percentunit",
        prom(f"sum by (error_type) (rate({CALLS}_count{{{SEL}{FAILED}}}{RATE})) "
             f"/ scalar(sum(rate({CALLS}_count{{{SEL}}}{RATE})))", "{{error_type}}"),
        stack=True, min_val=0), w=12, h=8)

    board.row("Latency")
    board.add(graph(
        "Call duration p50 / p95 / p99", "Quantiles of the duration of the selected calls.",
        "s", *(prom(quantile(q, CALLS, ""), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99))),
        w=12, h=8)
    board.add(graph(
        "Call duration p95 by model", "95th percentile of call duration, by model.", "s",
        prom(quantile(0.95, CALLS, "gen_ai_request_model"), "{{gen_ai_request_model}}")),
        w=12, h=8)
    board.add(graph(
        "Time to first token p50 / p95", "Streamed calls only: time from the request to the "
        "first output token.", "s",
        *(prom(quantile(q, TTFT, "gen_ai_request_model"), f"p{round(q * 100)} "
               "{{gen_ai_request_model}}") for q in (0.5, 0.95))), w=12, h=8)
    board.add(graph(
        "p95 against the reference (latency detector)",
        "The latency detector's p95 over its window divided by the reference's p95, per "
        f"segment. Above {DEFAULTS.latency_min_ratio}× (dashed) with a significant test it "
        "is a regression.", "suffix:×",
        prom(whole(f"driftwatch_latency_p95_ratio{{{SVC}}}"), "{{service}} {{model}}"),
        steps=((None, "green"), (DEFAULTS.latency_min_ratio, "red"))), w=12, h=8)

    board.add(segment_table(
        "Latency detector, per segment",
        "What the latency detector measured over its window, per segment (model empty = the "
        "whole service), and its p95 against the reference's.", ("service", "model"), [
            ("Calls/s", f"driftwatch_latency_requests_per_second{{{SVC}}}"),
            ("Error ratio", f"driftwatch_latency_error_ratio{{{SVC}}}"),
            *((f"p{q}", f'driftwatch_latency_duration_seconds{{{SVC}, quantile_level="0.{q}"}}')
              for q in ("50", "95", "99")),
            *((f"TTFT p{q}", f'driftwatch_latency_ttft_seconds{{{SVC}, quantile_level="0.{q}"}}')
              for q in ("50", "95")),
            ("p95 / reference", f"driftwatch_latency_p95_ratio{{{SVC}}}"),
        ], overrides=[
            *((name, [DynamicConfigValue(id_val="unit", value="s")]) for name in
              ("p50", "p95", "p99", "TTFT p50", "TTFT p95")),
            ("Error ratio", [DynamicConfigValue(id_val="unit", value="percentunit")]),
            ("p95 / reference", cell_thresholds(
                (None, "green"), (DEFAULTS.latency_min_ratio, "red"))),
        ]), w=24, h=7)

    board.row("Tokens")
    board.add(graph(
        "Tokens per second", "Input and output tokens per second.", "short",
        prom(f"sum by (gen_ai_token_type) (rate({TOKENS}_sum{{{SEL}}}{RATE}))",
             "{{gen_ai_token_type}}")), w=8, h=8)
    board.add(graph(
        "Tokens per call p95", "95th percentile of tokens per call, input and output.",
        "short", prom(quantile(0.95, TOKENS, "gen_ai_token_type"), "{{gen_ai_token_type}}")),
        w=8, h=8)
    board.add(graph(
        "Output tokens per second of generation",
        "Output tokens divided by generation time, as the latency detector measured it on "
        "its window.", "short",
        prom(whole(f"driftwatch_latency_output_tokens_per_second{{{SVC}}}"),
             "{{service}} {{model}}")), w=8, h=8)

    board.row("Cost")
    spend = f"sum by (service) (rate({COST}{{{SVC}}}{RATE}))"
    board.add(graph(
        "Spend per hour by service", "USD per hour at the current pace, by the price table "
        "(configuration.md, pricing); calls without a price add nothing (see Unpriced calls).",
        "currencyUSD", prom(f"{spend} * 3600", "{{service}}"), min_val=0), w=8, h=8)
    board.add(graph(
        "Cost per call", "USD per call of the selected services: their spend over their "
        "calls, priced or not (unpriced calls lower it; see Unpriced calls).", "currencyUSD",
        prom(f"sum(rate({COST}{{{SVC}}}{RATE})) / sum(rate({CALLS}_count{{{SVC_NAME}}}{RATE}))",
             "cost per call"), min_val=0), w=8, h=8)
    board.add(graph(
        "Top models by spend", "The five models that cost most per hour at the current pace "
        "(the model that answered, dated names included).", "currencyUSD",
        prom(f"topk(5, sum by (model) (rate({COST}{{{SVC}}}{RATE}))) * 3600", "{{model}}"),
        min_val=0), w=8, h=8)
    board.add(stat(
        "Spend, last 24 hours", "USD spent over the last day, by service.", "currencyUSD",
        prom(f"sum by (service) (increase({COST}{{{SVC}}}[24h]))", "{{service}}"),
        show_name=True, decimals=2), w=12, h=5)
    board.add(stat(
        "Unpriced calls, last 24 hours", "Calls stored without a cost, by why: no model "
        "name, a model the price table does not know (add it under pricing.models), or "
        "token counts missing.", "none",
        prom("sum by (reason) (increase(driftwatch_calls_unpriced_total[24h]))", "{{reason}}"),
        steps=((None, "green"), (1, "orange")), show_name=True, decimals=0), w=12, h=5)
    board.add(graph(
        "Spend against the reference (cost detector)",
        "The cost detector's spend per hour over its window divided by the reference's (by "
        f"default the same hour a day earlier), per segment. Above {DEFAULTS.cost_min_ratio}× "
        "(dashed) with a significant test it is a regression (LLMCostRegression).", "suffix:×",
        prom(whole(f"driftwatch_cost_spend_ratio{{{SVC}}}"), "{{service}} {{model}}"),
        steps=((None, "green"), (DEFAULTS.cost_min_ratio, "red"))), w=12, h=8)
    board.add(graph(
        "Daily budget burn", "How fast each service with a daily budget (cost.budgets) spends "
        f"it, per window (1 = the budget lasts exactly a day). LLMCostBudgetBurn pages at "
        f"{PAGE_FAST:g}× over 1h and 5m or {PAGE_SLOW:g}× over 6h and 30m.", "suffix:×",
        prom(f"driftwatch_cost_budget_burn_rate{{{SVC}}}", "{{service}} {{window}}"),
        steps=BURN_STEPS), w=12, h=8)
    return board.dashboard.build()
