"""Quality: what the drift, toxicity and evaluation detectors found, per segment, against the
thresholds they decide with, with the sample counts beside every rate, what moved (the
clusters are in each drift result, one click away) and how fresh each job's answer is."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import DashboardLink, TextBoxVariable
from grafana_foundation_sdk.models.dashboard import Dashboard, VariableOption

from dashboards.defaults import DEFAULTS
from dashboards.kit import (
    RATE,
    Board,
    alert_annotations,
    cell_states,
    cell_thresholds,
    field_thresholds,
    graph,
    label_values,
    note,
    prom,
    segment_table,
    stat,
    timeline,
    whole,
)

UID = "driftwatch-quality"

SEG = 'service=~"$service", model=~"$model", direction=~"$direction"'
SVC = 'service=~"$service"'
LEGEND = "{{service}} · {{model}} · {{direction}}"
BY = ("service", "model", "direction")
ANOMALOUS = {"0": ("quiet", "green"), "1": ("ANOMALOUS", "red")}
DRIFT = {"0": ("no drift", "green"), "1": ("drift", "red")}
DEFAULT_OPS = "http://localhost:9464"


def job_intervals() -> dict[str, float]:
    """Each scheduled job's default interval, seconds: freshness is judged against it."""
    return dict(DEFAULTS.job_intervals_s)


def build() -> Dashboard:
    alpha, gate = DEFAULTS.drift_alpha, DEFAULTS.drift_min_auc
    board = Board("driftwatch / Quality", UID,
                  "Drift and toxicity of prompts and completions per segment, against the "
                  "thresholds the detectors decide with, and the freshness of their jobs.")
    d = board.dashboard.time("now-24h", "now").refresh("5m")
    d.with_variable(label_values("service", "service",
                                 "driftwatch_detector_result_timestamp_seconds",
                                 title="Service"))
    d.with_variable(label_values(
        "model", "model", f"driftwatch_detector_result_timestamp_seconds{{{SVC}}}",
        title="Model", description="The model that answered; All includes the whole-service "
        "results"))
    d.with_variable(label_values("direction", "direction",
                                 "driftwatch_detector_result_timestamp_seconds",
                                 title="Direction"))
    d.with_variable(TextBoxVariable("ops").label("driftwatch ops URL").description(
        "Where the daemon's ops API answers, for links to the full results")
        .default_value(DEFAULT_OPS).current(VariableOption(text=DEFAULT_OPS,
                                                           value=DEFAULT_OPS)))
    d.link(DashboardLink("Detector results (JSON)").url("${ops}/api/v1/results")
           .target_blank(True).icon("external link"))
    alert_annotations(board, SVC)

    board.row("Now")
    for title, detector, selector in (
            ("Segments drifting", "drift", SEG), ("Toxicity alarms", "toxicity", SEG),
            ("Latency regressions", "latency", 'service=~"$service", model=~"$model"')):
        board.add(stat(title, f"Segments whose latest {detector} result is anomalous.", "none",
                       prom(f'sum(driftwatch_detector_anomalous{{detector="{detector}", '
                            f"{selector}}})", detector),
                       steps=((None, "green"), (1, "red")), no_value="0"), w=6, h=4)
    board.add(stat(
        "Too little data", "Segments whose latest result had fewer samples than min_samples: "
        "no answer, rather than a false 'no drift'.", "none",
        prom(f'sum by (detector) (driftwatch_detector_insufficient_data{{{SVC}, '
             'model=~"$model"})', "{{detector}}"),
        steps=((None, "green"), (1, "orange")), show_name=True), w=6, h=4)

    board.row("Drift")
    series = "${ops}/api/v1/results/series?detector=drift&service=${__data.fields.service}" \
             "&model=${__data.fields.model}&direction=${__data.fields.direction}&limit=1"
    board.add(segment_table(
        "Drift now, per segment",
        "The latest drift result of every segment (model empty = the whole service). Click a "
        "row for the full result: the clusters whose share moved, their keywords and "
        "redacted examples.", BY, [
            ("Alarm", f'driftwatch_detector_anomalous{{detector="drift", {SEG}}}'),
            ("This run", f"driftwatch_drift_decision{{{SEG}}}"),
            ("p-value", f"driftwatch_drift_p_value{{{SEG}}}"),
            ("Classifier AUC", f"driftwatch_drift_classifier_auc{{{SEG}}}"),
            ("Novel share", f"driftwatch_drift_novel_share{{{SEG}}}"),
            ("MMD²", f"driftwatch_drift_mmd2{{{SEG}}}"),
            ("Reference n", f'driftwatch_detector_samples{{detector="drift", {SEG}, '
                            'window="reference"}'),
            ("Current n", f'driftwatch_detector_samples{{detector="drift", {SEG}, '
                          'window="current"}'),
        ], link=("What moved: the latest result (JSON)", series), overrides=[
            ("Alarm", cell_states(ANOMALOUS)), ("This run", cell_states(DRIFT)),
            ("p-value", cell_thresholds((None, "red"), (alpha, "green"))),
            ("Classifier AUC", cell_thresholds((None, "green"), (gate, "red"))),
        ]), w=24, h=8)
    board.add(graph(
        "p-value against alpha",
        f"Smallest p-value of the drift tests per segment; below alpha ({alpha:g}, dashed, "
        "the default) the change is significant. The decision also needs the effect gates "
        "and a correction across the run.", "none",
        prom(whole(f"driftwatch_drift_p_value{{{SEG}}}"), LEGEND),
        steps=((None, "red"), (alpha, "green")), log=True), w=12, h=8)
    board.add(graph(
        "Classifier AUC against its gate",
        f"How well a classifier tells current texts from reference ones (0.5 = alike). "
        f"Drift needs it above {gate:g} (dashed).", "none",
        prom(whole(f"driftwatch_drift_classifier_auc{{{SEG}}}"), LEGEND),
        steps=((None, "green"), (gate, "red")), min_val=0.4, max_val=1), w=12, h=8)
    board.add(graph(
        "Novel share", "Share of current texts farther from the reference than reference "
        "texts are from each other: new topics.", "percentunit",
        prom(whole(f"driftwatch_drift_novel_share{{{SEG}}}"), LEGEND), min_val=0), w=12, h=8)
    board.add(timeline(
        "Drift decisions", "Each segment's decision per run, before hysteresis.",
        prom(whole(f"driftwatch_drift_decision{{{SEG}}}"), LEGEND), DRIFT), w=12, h=8)
    board.add(graph(
        "Self-check: false alarms on the reference",
        "Share of reference-against-reference splits that would have alarmed. It should stay "
        f"near alpha ({alpha:g}, dashed); well above it, alarms are not to be trusted.",
        "percentunit",
        prom(whole(f"driftwatch_drift_self_check_false_alarm_rate{{{SEG}}}"), LEGEND),
        steps=((None, "green"), (alpha, "orange")), min_val=0), w=12, h=8)
    board.add(note("What moved", (
        "Drift results name **what moved**: the clusters of texts whose share grew or shrank "
        "between the reference and the current window, with their keywords and redacted "
        "examples.\n\n"
        "* Click a row of *Drift now, per segment* for that segment's latest result.\n"
        "* All latest results: [${ops}/api/v1/results?detector=drift]"
        "(${ops}/api/v1/results?detector=drift)\n"
        "* From a shell: `driftwatch status --detector drift --json`\n")), w=12, h=8)

    board.row("Toxicity")
    board.add(graph(
        "Toxic rate with its upper 95% bound",
        "Share of texts scored toxic, the upper Wilson bound of that share, and the "
        "reference's rate.", "percentunit",
        prom(whole(f"driftwatch_toxicity_rate{{{SEG}}}"), f"{LEGEND} rate"),
        prom(whole(f"driftwatch_toxicity_rate_ci_high{{{SEG}}}"), f"{LEGEND} upper bound"),
        prom(whole(f"driftwatch_toxicity_reference_rate{{{SEG}}}"), f"{LEGEND} reference"),
        min_val=0), w=12, h=8)
    board.add(graph(
        "Texts scored", "Texts in each side of the latest toxicity result: a rate is only as "
        "good as its count.", "none",
        prom(whole(f'driftwatch_detector_samples{{detector="toxicity", {SEG}}}'),
             f"{LEGEND} {{{{window}}}}"), min_val=0), w=12, h=8)
    board.add(segment_table(
        "Toxicity now, per segment", "The latest toxicity result of every segment.", BY, [
            ("Alarm", f'driftwatch_detector_anomalous{{detector="toxicity", {SEG}}}'),
            ("Toxic rate", f"driftwatch_toxicity_rate{{{SEG}}}"),
            ("Upper 95%", f"driftwatch_toxicity_rate_ci_high{{{SEG}}}"),
            ("Reference rate", f"driftwatch_toxicity_reference_rate{{{SEG}}}"),
            ("Mean score", f"driftwatch_toxicity_mean_score{{{SEG}}}"),
            ("Current n", f'driftwatch_detector_samples{{detector="toxicity", {SEG}, '
                          'window="current"}'),
            ("Reference n", f'driftwatch_detector_samples{{detector="toxicity", {SEG}, '
                            'window="reference"}'),
        ], overrides=[("Alarm", cell_states(ANOMALOUS))]), w=24, h=7)

    board.row("Evaluations")
    evals = 'service=~"$service", model=~"$model"'
    legend = "{{service}} · {{model}} · {{evaluation}}"
    board.add(graph(
        "Evaluation pass rate against the reference",
        "Share of each evaluation's results that passed (a pass label, or a score at the "
        "threshold), per segment and evaluation name, and the reference's (from evaluators' "
        "gen_ai.evaluation.result events and POST /api/v1/feedback).", "percentunit",
        prom(whole(f"driftwatch_evaluation_pass_rate{{{evals}}}"), legend),
        prom(whole(f"driftwatch_evaluation_reference_pass_rate{{{evals}}}"),
             f"{legend} reference"), min_val=0, max_val=1), w=12, h=8)
    board.add(graph(
        "Mean evaluation score", "Mean score of each evaluation in the window, and the "
        "reference's; higher is better.", "none",
        prom(whole(f"driftwatch_evaluation_score_mean{{{evals}}}"), legend),
        prom(whole(f"driftwatch_evaluation_reference_score_mean{{{evals}}}"),
             f"{legend} reference")), w=12, h=8)
    board.add(segment_table(
        "Evaluations now, per segment and name",
        "The latest evaluation result of every segment and evaluation name. A drop is "
        "anomalous when the one-sided tests, corrected over the segment's names, find it "
        "and the pass rate fell at least min_drop; the worst-scored calls are on its report "
        "page (driftwatch status).", ("service", "model", "evaluation"), [
            ("Alarm", f'driftwatch_detector_anomalous{{detector="evaluation", {evals}}}'),
            ("Pass rate", f"driftwatch_evaluation_pass_rate{{{evals}}}"),
            ("Reference pass rate", f"driftwatch_evaluation_reference_pass_rate{{{evals}}}"),
            ("Mean score", f"driftwatch_evaluation_score_mean{{{evals}}}"),
            ("Reference mean score",
             f"driftwatch_evaluation_reference_score_mean{{{evals}}}"),
            ("Current n", f"driftwatch_evaluation_count{{{evals}}}"),
        ], overrides=[("Alarm", cell_states(ANOMALOUS))]), w=24, h=7)

    board.row("Freshness")
    freshness = stat(
        "Time since each job's last success",
        "Orange past twice a job's default interval, red past three times.", "s",
        prom("time() - max by (job_name) (driftwatch_job_last_success_timestamp_seconds)",
             "{{job_name}}"), show_name=True)
    for job, interval in job_intervals().items():
        freshness = freshness.override_by_name(job, field_thresholds(
            (None, "green"), (2 * interval, "orange"), (3 * interval, "red")))
    board.add(freshness, w=16, h=5)
    board.add(stat(
        "Age of the latest result", "Time since each detector last produced a result for "
        "the selected services.", "s",
        prom(f"time() - max by (detector) (driftwatch_detector_result_timestamp_seconds"
             f"{{{SVC}}})", "{{detector}}"), show_name=True), w=8, h=5)
    board.add(graph(
        "Job runs by outcome", "Scheduled and on-demand runs, by job and outcome.", "none",
        prom(f"sum by (job_name, outcome) (increase(driftwatch_job_runs_total{RATE}))",
             "{{job_name}} {{outcome}}"), bars=True, min_val=0), w=24, h=6)
    return board.dashboard.build()
