"""The alert rules driftwatch ships, in the YAML a user writes under `alerts.rules`.

A user's entry of the same name is merged over these (labels and annotations key by key);
`NAME: false` or `NAME: {enabled: false}` turns one off. Annotations are Python format
strings over the observation: the segment (`service`, `model`, `segment`, `direction`),
`value` and `threshold` (of the first check), the result's `summary`, `n_current`,
`n_reference`, `p_value`, `statistic` and every key of its `details`, e.g.
`{burn_rates[availability][1h]:.1f}`; a missing value reads "n/a".
"""

from __future__ import annotations

DEFAULT_RULES_YAML = """
LLMPromptDrift:
  detector: drift
  direction: prompt
  when: anomalous
  severity: ticket
  annotations:
    summary: "Prompts to {segment} drifted from their reference"
    description: "{summary}. Reference: {reference}; {n_reference} reference and
      {n_current} current texts."

LLMCompletionDrift:
  detector: drift
  direction: completion
  when: anomalous
  severity: ticket
  annotations:
    summary: "Completions of {segment} drifted from their reference"
    description: "{summary}. Reference: {reference}; {n_reference} reference and
      {n_current} current texts."

LLMToxicityHigh:
  detector: toxicity
  # rose significantly above the reference, or surely above 10% (lower 95% bound)
  when: [[anomalous], ["ci_low > 0.10"]]
  severity: ticket
  annotations:
    summary: "{direction}s of {segment} are {toxic_rate:.1%} toxic"
    description: "{summary}. Toxic rate {toxic_rate:.1%} (95% CI {ci_low:.1%}-{ci_high:.1%},
      n={n_current}), reference {reference_rate:.1%}."

LLMLatencyRegression:
  detector: latency
  when: anomalous
  for: 2
  severity: ticket
  annotations:
    summary: "{segment} is slower than its reference: p95 {p95_s:.2f}s, x{p95_ratio:.2f}"
    description: "p95 {p95_s:.2f}s over {count} calls against {reference_p95_s:.2f}s in the
      reference ({reference}); one-sided p={p_value:.2g}."

LLMErrorBudgetBurn:
  detector: latency
  scope: service
  when:
    - ["burn_rates.availability.1h > 14.4", "burn_rates.availability.5m > 14.4"]
    - ["burn_rates.availability.6h > 6", "burn_rates.availability.30m > 6"]
  for: 3
  severity: page
  labels: {slo: availability}
  annotations:
    summary: "{service} is burning its availability error budget"
    description: "Error-budget burn {burn_rates[availability][1h]:.1f}x over 1h and
      {burn_rates[availability][5m]:.1f}x over 5m, {burn_rates[availability][6h]:.1f}x over
      6h and {burn_rates[availability][30m]:.1f}x over 30m (availability SLO
      {slo_availability:.2%}); {error_rate:.1%} of {count} calls failed in the window."

LLMErrorBudgetBurnSlow:
  detector: latency
  scope: service
  # the SRE workbook's tickets: 10% of a 30-day budget spent in a day or in three
  when:
    - ["burn_rates.availability.1d > 3", "burn_rates.availability.2h > 3"]
    - ["burn_rates.availability.3d > 1", "burn_rates.availability.6h > 1"]
  for: 15
  severity: ticket
  labels: {slo: availability}
  annotations:
    summary: "{service} is slowly burning its availability error budget"
    description: "Error-budget burn {burn_rates[availability][1d]:.1f}x over 1d and
      {burn_rates[availability][2h]:.1f}x over 2h, {burn_rates[availability][3d]:.1f}x over
      3d and {burn_rates[availability][6h]:.1f}x over 6h (availability SLO
      {slo_availability:.2%}, a ticket at 3x over 1d and 2h or 1x over 3d and 6h)."

LLMCostRegression:
  detector: cost
  when: anomalous
  for: 2
  severity: ticket
  annotations:
    summary: "{segment} spends more than its reference: {spend_per_hour_usd:,.2f} USD/h,
      x{spend_ratio:.2f}"
    description: "{spend_per_hour_usd:,.2f} USD/h over {priced} priced calls against
      {reference_spend_per_hour_usd:,.2f} USD/h in the reference ({reference}): cost per call
      x{cost_per_call_ratio:.2f} (p={cost_per_call_p:.2g}), calls per second
      x{call_rate_ratio:.2f} (p={call_rate_p:.2g})."

LLMCostBudgetBurn:
  detector: cost
  scope: service
  when:
    - ["budget_burn.1h > 14.4", "budget_burn.5m > 14.4"]
    - ["budget_burn.6h > 6", "budget_burn.30m > 6"]
  for: 2
  severity: page
  annotations:
    summary: "{service} is burning its daily LLM budget at {value:.1f}x its pace"
    description: "Spend is {budget_burn[1h]:.1f}x the daily budget's pace over 1h and
      {budget_burn[5m]:.1f}x over 5m, {budget_burn[6h]:.1f}x over 6h and
      {budget_burn[30m]:.1f}x over 30m (budget {daily_budget_usd:,.2f} USD a day; at 14.4x a
      day's budget is gone in 100 minutes)."

LLMTimeToFirstTokenHigh:
  detector: latency
  when: "ttft_p95_s > 3"
  for: 5
  severity: ticket
  annotations:
    summary: "{segment}: time to first token p95 is {ttft_p95_s:.2f}s"
    description: "Streamed responses of {segment} took {ttft_p95_s:.2f}s (p95) to their first
      token, above {threshold:g}s; p50 {ttft_p50_s:.2f}s."

LLMEvaluationDrop:
  detector: evaluation
  # one-sided tests of pass rate and scores, corrected over the segment's evaluation names
  when: anomalous
  severity: ticket
  annotations:
    summary: "{evaluation} of {segment} dropped: pass rate {pass_rate:.1%} against
      {reference_pass_rate:.1%}"
    description: "{summary}. Mean score {mean_score:.3g} against {reference_mean_score:.3g}
      over {n_current} evaluations ({n_reference} in the reference: {reference}); one-sided
      p={p_value:.2g}. The worst-scored calls are on the report page."
LLMCanaryRegression:
  detector: canary
  # the newest service.version is significantly worse than the one before it
  when: anomalous
  severity: ticket
  annotations:
    summary: "{service} {version} regressed against {previous_version}"
    description: "{summary}. {verdict}; {n_reference} calls of {previous_version} and
      {n_current} of {version} since {first_seen}. Comparison: {report}"

LLMTrafficAbsent:
  kind: traffic_absent
  scope: service
  for: 2
  severity: ticket
  annotations:
    summary: "{service} sent no LLM calls in the last {window}"
    description: "{service} had calls in the last 3d but none in its latest {window} window;
      is the app down or no longer exporting its traces?"

DriftwatchJobStale:
  kind: job_stale
  severity: ticket
  annotations:
    summary: "driftwatch job {job} has not succeeded for {value:.0f}s"
    description: "The {job} job runs every {interval:g}s and last succeeded {last_success}:
      its results (and the alerts on them) are stale. See the daemon's log."

DriftwatchDetectorsBehind:
  kind: job_behind
  # fires while a run still ends inside its interval, before DriftwatchJobStale would
  busy_share: 0.8
  severity: ticket
  annotations:
    summary: "driftwatch job {job} is falling behind: its last run took {value:.0%} of its
      interval"
    description: "The {job} job runs every {interval:g}s and its last run took
      {duration:.0f}s; when runs outlast the interval its results go stale. See
      driftwatch_job_busy_ratio and driftwatch_detector_sampling_rate; lower sample_cap, raise
      embedding.threads or move embedding to embedding.remote."
DriftwatchDiskFilling:
  kind: disk_filling
  # while the store's filesystem has under 4x store.min_free_bytes free (ingest stops at 1x)
  for: 2
  severity: ticket
  annotations:
    summary: "driftwatch's store has {value:,.0f} bytes free"
    description: "Ingest stops below store.min_free_bytes ({min_free_bytes:,} bytes); this
      rule holds under {threshold:,.0f}. Free space on the store's filesystem, lower
      store.retention or move the store."

DriftwatchRefusingSpans:
  kind: spans_refused
  severity: ticket
  annotations:
    summary: "driftwatch refused {value:.0f} spans since the last evaluation"
    description: "Exporters were refused {value:.0f} spans (queue full, too large or invalid):
      see driftwatch_spans_refused_total by reason."
"""
