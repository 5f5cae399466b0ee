"""The toxicity job on a real store: labelled texts (corpora/toxicity.jsonl) as completions,
benign in the pinned baseline hour and toxic in the current one. The scorer reads each text's
label, so the rates are known exactly and the job runs without a model; the shipped head is
exercised by test_detection."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from detectors.toxicity import Scorer
from monitor.core.components import WriteBatch
from monitor.core.records import DetectorResult, Direction, LLMCall
from monitor.daemon import DETECTORS
from monitor.jobs.config import ToxicityConfig
from monitor.jobs.plugin import details_readers
from monitor.jobs.references import References
from monitor.jobs.texts import TextSampler
from monitor.jobs.toxicity.job import ToxicityJob
from monitor.store.history import Baseline, SqliteHistory
from monitor.store.sqlite import SqliteStore
from tests.monitor.jobs.test_drift import WordHashEmbedder
from tests.texts import rows

HOUR = 3600 * 10**9
T0 = 1_700_000_000_000_000_000
NOW = T0 + 4 * HOUR
N = 600  # calls a window: an all-toxic window against an all-benign one underflows Fisher's p
PROMPT = "What do you think of my neighbours?"


class LabelScorer(Scorer):
    """Scores a text 1.0 when its dataset labels it toxic, else 0.0."""

    name = "labels"

    def __init__(self, labels: Mapping[str, bool]) -> None:
        self._labels = labels

    def score(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([float(self._labels[t]) for t in texts])


def calls(completions: Sequence[str], *, start: int) -> list[LLMCall]:
    every = HOUR // (len(completions) + 1)
    return [LLMCall(trace_id=f"{start + i:032x}", span_id=f"{start // HOUR + i:016x}",
                    parent_span_id=None, service="bot", provider="openai",
                    request_model="gpt-4o", response_model="gpt-4o", operation="chat",
                    start_ns=start + (i + 1) * every, duration_s=1.0,
                    prompt=PROMPT, completion=completion)
            for i, completion in enumerate(completions)]


@pytest.fixture
def job(tmp_path: Path) -> Iterator[ToxicityJob]:
    labelled = rows("toxicity")
    toxic = [r["text"] for r in labelled if r["toxic"]][:N]
    benign = [r["text"] for r in labelled if not r["toxic"]][:N]
    store = SqliteStore(tmp_path / "driftwatch.db")
    store.write(WriteBatch(calls=[*calls(benign, start=T0), *calls(toxic, start=NOW - HOUR)]))
    history = SqliteHistory(store.path, details=details_readers(DETECTORS))
    history.set_baseline(Baseline(service="bot", model=None, start_ns=T0, end_ns=T0 + HOUR,
                                  source="pinned"))
    references = References(store, history, auto_window_s=HOUR, auto_min_calls=30)
    scorer = LabelScorer({PROMPT: False} | {r["text"]: bool(r["toxic"]) for r in labelled})
    yield ToxicityJob(ToxicityConfig(), references, TextSampler(store, history,
                      WordHashEmbedder()), history, scorer, default_threshold=0.5)
    history.close()
    store.close()


def completions_of_the_service(job: ToxicityJob) -> DetectorResult:
    [found] = [r for r in job.run(NOW) if r.model is None
               and r.direction is Direction.COMPLETION]
    return found


def test_a_rise_so_extreme_its_p_value_underflows_to_zero_is_anomalous(
        job: ToxicityJob) -> None:
    table = [[N, 0], [0, N]]
    assert stats.fisher_exact(table, alternative="greater").pvalue == 0.0, "the premise"
    result = completions_of_the_service(job)
    assert (result.n_current, result.n_reference) == (N, N)
    assert result.statistic == 1.0 and result.p_value == 0.0
    assert result.anomalous is True
    assert result.summary.startswith("toxicity rose in completions of bot")


def test_unchanged_prompts_beside_it_are_not(job: ToxicityJob) -> None:
    [prompts] = [r for r in job.run(NOW) if r.model is None
                 and r.direction is Direction.PROMPT]
    assert prompts.anomalous is False and prompts.statistic == 0.0
