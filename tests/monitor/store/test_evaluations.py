"""The store's evaluations: joined to their calls by span or response id whichever arrives
first, read back by segment and name, expired while pending, and deleted with their calls."""

from __future__ import annotations

from pathlib import Path

from monitor.core.components import WriteBatch
from monitor.core.evaluations import Evaluation
from monitor.core.records import Segment
from monitor.store.sqlite import SqliteStore
from tests.monitor.store.test_sqlite import T0, TRACE, call

SEGMENT = Segment(service="support-bot", model=None)
WINDOW = (T0 - 10**9, T0 + 10**12)


def judged(name: str = "relevance", score: float | None = 1.0, **fields: object) -> Evaluation:
    values: dict[str, object] = {"name": name, "score": score, "time_ns": T0 + 5 * 10**9,
                                 "source": "log", **fields}
    return Evaluation(**values)  # type: ignore[arg-type]


def test_an_evaluation_joins_its_call_by_span_or_by_response_id(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    first = call(service="support-bot", response_model="gpt-4o-mini", start_ns=T0)
    second = call(service="support-bot", response_model="gpt-4o", start_ns=T0 + 1,
                  response_id="chatcmpl-7")
    store.write(WriteBatch(calls=[first, second]))

    result = store.write(WriteBatch(evaluations=[
        judged(trace_id=TRACE, span_id=first.span_id, score=0.25),
        judged(response_id="chatcmpl-7", score=0.75),
        judged(response_id="chatcmpl-unknown"),
    ]))

    assert (result.evaluations_joined, result.evaluations_pending) == (2, 1)
    scores = store.scored_calls(SEGMENT, "relevance", *WINDOW, limit=10)
    assert sorted(s.score for s in scores if s.score is not None) == [0.25, 0.75]
    by_model = store.scored_calls(Segment(service="support-bot", model="gpt-4o"),
                                  "relevance", *WINDOW, limit=10)
    assert [s.score for s in by_model] == [0.75]
    assert store.evaluation_names(SEGMENT, *WINDOW) == {"relevance": 2}
    assert store.stats().pending_evaluations == 1
    store.close()


def test_a_pending_evaluation_joins_the_call_that_arrives_later(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    late = call(service="support-bot", start_ns=T0, completion="I like turtles.")
    store.write(WriteBatch(evaluations=[
        judged(trace_id=TRACE, span_id=late.span_id, score=0.0, explanation="off topic")]))
    assert store.scored_calls(SEGMENT, "relevance", *WINDOW, limit=10) == []

    result = store.write(WriteBatch(calls=[late]))

    assert result.evaluations_joined == 1
    [worst] = store.worst_scored(SEGMENT, "relevance", *WINDOW, pass_labels=(), limit=3)
    assert (worst.completion, worst.explanation, worst.span_id) == (
        "I like turtles.", "off topic", late.span_id)
    assert store.stats().pending_evaluations == 0
    store.close()


def test_a_redelivered_evaluation_is_stored_once(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    c = call(start_ns=T0, service="support-bot")
    store.write(WriteBatch(calls=[c]))
    once = judged(trace_id=TRACE, span_id=c.span_id)
    store.write(WriteBatch(evaluations=[once]))
    store.write(WriteBatch(evaluations=[once]))
    assert len(store.scored_calls(SEGMENT, "relevance", *WINDOW, limit=10)) == 1
    store.close()


def test_pending_evaluations_expire_and_joined_ones_go_with_their_calls(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    c = call(start_ns=T0, service="support-bot")
    store.write(WriteBatch(calls=[c], evaluations=[
        judged(trace_id=TRACE, span_id=c.span_id), judged(response_id="never")]))

    assert store.expire_pending(cutoff_ns=2**62) == 1
    assert store.stats().pending_evaluations == 0
    store.delete_before(T0 + 1, batch_size=100)
    assert store.evaluation_names(SEGMENT, *WINDOW) == {}
    store.close()


def test_worst_examples_put_the_lowest_scores_then_failing_labels_first(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    calls = [call(start_ns=T0 + i, service="support-bot") for i in range(4)]
    store.write(WriteBatch(calls=calls, evaluations=[
        judged(trace_id=TRACE, span_id=calls[0].span_id, score=0.9),
        judged(trace_id=TRACE, span_id=calls[1].span_id, score=0.1),
        judged(trace_id=TRACE, span_id=calls[2].span_id, score=None, label="pass"),
        judged(trace_id=TRACE, span_id=calls[3].span_id, score=None, label="fail"),
    ]))
    worst = store.worst_scored(SEGMENT, "relevance", *WINDOW, pass_labels=("pass",), limit=4)
    assert [(w.score, w.label) for w in worst] == [
        (0.1, None), (0.9, None), (None, "fail"), (None, "pass")]
    store.close()


def test_past_the_most_pending_new_evaluations_are_refused_and_none_waiting_dropped(
        tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", max_pending_evaluations=2)
    late = call(service="support-bot", start_ns=T0, response_id="chatcmpl-late")
    first = store.write(WriteBatch(evaluations=[judged(response_id="chatcmpl-late"),
                                                judged(response_id="never-1")]))
    assert (first.evaluations_pending, first.evaluations_refused) == (2, ())

    result = store.write(WriteBatch(calls=[late], evaluations=[
        judged(response_id="never-2"), judged(response_id="never-3"),
        judged(response_id="chatcmpl-late", name="csat")]))

    # the waiting one joins its call and makes room for one; the one joining now needs none
    assert (result.evaluations_joined, result.evaluations_pending) == (2, 1)
    assert result.evaluations_refused == (1,)
    assert store.stats().pending_evaluations == 2
    assert store.evaluation_names(SEGMENT, *WINDOW) == {"relevance": 1, "csat": 1}
    store.close()
