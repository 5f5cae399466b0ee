"""The `evaluation:` config section: windows, the pass rule, and the bounds on names."""

from __future__ import annotations

from pydantic import Field

from monitor.core.config import Duration
from monitor.jobs.config import WindowedConfig

#: labels that pass by default (compared case-insensitively); a deployment whose evaluators
#: say otherwise lists its own
#: (not "yes" or "true": YAML reads those unquoted as booleans, so a deployment could not
#: write the default back)
PASS_LABELS = ("pass", "passed", "correct", "good", "relevant", "grounded", "helpful",
               "positive", "thumbs_up", "up", "accept", "accepted")


class EvaluationConfig(WindowedConfig):
    interval: Duration = 300.0
    window: Duration = 900.0
    min_samples: int = Field(default=30, ge=10)  # evaluations per name on each side
    #: an evaluation with one of these labels passes, one with another label fails
    pass_labels: tuple[str, ...] = PASS_LABELS
    #: an evaluation without a label passes when its score is at least this; None: only
    #: labels decide (unlabelled scores still count for the mean score)
    pass_threshold: float | None = 0.5
    #: where a pass rate is measured, it must fall at least this much (absolute) for a
    #: significant drop to be anomalous
    min_drop: float = Field(default=0.05, ge=0, le=1)
    #: evaluation names watched per segment, the most frequent kept: each is a metric
    #: label, an alert label and a result per run
    max_names: int = Field(default=10, ge=1, le=100)
    top_examples: int = Field(default=3, ge=0, le=20)  # the worst-scored, on the report
