"""`Comparer`: two sides of one service read from the store, compared, and kept.

A side is a `Selector`, `KEY=VALUE` with KEY `model`, `version` (the resource's
`service.version`) or `variant` (the attribute `ingest.variant_attribute` names, which may
also be given by that name). Each side is read as two uniform samples of its calls in the
time range: the numbers of up to `compare.sample_cap` calls, and the completions of up to
`compare.text_cap` of them, which the toxicity job's classifier scores and the drift job's
embedder embeds (when those detectors are on). The costs are those of the priced calls
among the first sample; and for each of the `compare.max_evaluations` evaluation names most
common on both sides, up to `sample_cap` of its evaluations, passed or failed by the
evaluation detector's pass rule. So a comparison over any store holds a bounded number of
rows, whatever the traffic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from detectors.compare import (
    CompareSettings,
    Comparison,
    Measure,
    Side,
    compare,
    shared_evaluations,
)
from detectors.drift import DriftSettings
from detectors.evaluation import Scores, scores_of
from detectors.toxicity import EmbeddingScorer, Scorer
from monitor.core.components import CallQuery, Store, VersionKey
from monitor.core.records import Direction, LLMCall, rfc3339
from monitor.jobs.canary.config import CompareConfig
from monitor.jobs.texts import TextSampler
from monitor.store.comparisons import SqliteComparisons

_KEYS: dict[str, VersionKey] = {"model": "model", "version": "service_version",
                                "variant": "variant"}
MAX_VALUE_CHARS = 256


class CompareError(ValueError):
    """A comparison that cannot be made as asked; the message says why and what exists."""


class NothingToCompare(LookupError):
    """An unknown service, or a side without calls; the message names what was seen."""


@dataclass(frozen=True, slots=True)
class Selector:
    """One side: calls whose `key` is `value`."""

    key: VersionKey
    value: str

    @property
    def text(self) -> str:
        name = {v: k for k, v in _KEYS.items()}[self.key]
        return f"{name}={self.value}"

    def query(self, service: str, since_ns: int, until_ns: int, *, limit: int | None = None,
              sample: bool = False, with_text: Direction | None = None) -> CallQuery:
        return CallQuery(
            service=service, since_ns=since_ns, until_ns=until_ns, limit=limit, sample=sample,
            with_text=with_text, model=self.value if self.key == "model" else None,
            service_version=self.value if self.key == "service_version" else None,
            variant=self.value if self.key == "variant" else None)


def parse_selector(name: str, text: Any, variant_attribute: str | None = None) -> Selector:
    """`model=gpt-4o`, `version=1.4.2`, `variant=v7` (or `<variant attribute>=v7`).

    :raises CompareError: naming the side (`name`) and what was given.
    """
    keys = ", ".join(sorted(_KEYS) + ([variant_attribute] if variant_attribute else []))
    if not isinstance(text, str) or "=" not in text:
        raise CompareError(f"{name}: expected KEY=VALUE with KEY one of {keys}, got: "
                           f"{str(text)[:80]!r}")
    key, _, value = text.partition("=")
    key = "variant" if variant_attribute and key == variant_attribute else key
    if key not in _KEYS:
        raise CompareError(f"{name}: unknown key {key[:80]!r}; expected one of {keys}")
    if not value or len(value) > MAX_VALUE_CHARS:
        raise CompareError(f"{name}: expected a value of 1 to {MAX_VALUE_CHARS} characters "
                           f"after {key}=, got: {value[:80]!r}")
    return Selector(_KEYS[key], value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Toxicity:
    """The toxicity job's classifier and threshold."""

    scorer: Scorer
    threshold: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PassRule:
    """Which evaluations pass: the evaluation detector's `pass_labels` and `pass_threshold`."""

    labels: tuple[str, ...] = ()
    threshold: float | None = 0.5


#: the names each side's count is read for, before those both sides carry are chosen
_NAMES_READ = 100


class Comparer:
    """Compares two sides of a service and keeps the comparison (thread-safe)."""

    def __init__(self, config: CompareConfig, store: Store, comparisons: SqliteComparisons,
                 *, texts: TextSampler | None = None, toxicity: Toxicity | None = None,
                 variant_attribute: str | None = None,
                 passes: PassRule = PassRule()) -> None:
        self.config = config
        self._store = store
        self._comparisons = comparisons
        self._texts = texts
        self._toxicity = toxicity
        self._passes = passes
        self.variant_attribute = variant_attribute

    def run(self, service: str, a: Selector, b: Selector, *, since_ns: int, until_ns: int,
            alpha: float | None = None, min_samples: int | None = None,
            origin: str = "compare") -> dict[str, Any]:
        """Compare, store and return the comparison's JSON (with its `id` and `report`).

        :raises NothingToCompare: the service has no calls in the range, or a side has none.
        :raises CompareError: both sides are the same.
        """
        if a == b:
            raise CompareError(f"b: the same side as a ({a.text}); compare two different ones")
        self._check_sides(service, a, b, since_ns, until_ns)
        settings = CompareSettings(
            alpha=alpha or self.config.alpha,
            min_samples=min_samples or self.config.min_samples,
            toxicity_threshold=self._toxicity.threshold if self._toxicity else 0.5,
            drift=DriftSettings(permutations=self.config.permutations,
                                max_samples=self.config.text_cap),
            max_evaluations=self.config.max_evaluations)
        side_a = self._side(service, a, since_ns, until_ns)
        side_b = self._side(service, b, since_ns, until_ns)
        side_a, side_b = self._with_evaluations(service, (a, side_a), (b, side_b),
                                                since_ns, until_ns)
        found = compare(side_a, side_b, settings)
        now = time.time_ns()
        body = comparison_json(service, a, b, since_ns, until_ns, found, origin=origin,
                               created_ns=now, settings=settings)
        comparison_id = self._comparisons.save(service, now, body)
        return {"id": comparison_id, "report": f"/reports/compare/{comparison_id}", **body}

    def get(self, comparison_id: int) -> dict[str, Any] | None:
        body = self._comparisons.get(comparison_id)
        if body is None:
            return None
        return {"id": comparison_id, "report": f"/reports/compare/{comparison_id}", **body}

    def _check_sides(self, service: str, a: Selector, b: Selector, since_ns: int,
                     until_ns: int) -> None:
        span = f"from {rfc3339(since_ns)} to {rfc3339(until_ns)}"
        # one row each at most, by the (service, ..., start_ns) indexes: no count of a side
        if not self._any(CallQuery(service=service, since_ns=since_ns, until_ns=until_ns)):
            raise NothingToCompare(f"service: no calls of {service!r} {span}; is the name "
                                   "right (`driftwatch calls --since ...` lists them)?")
        for name, side in (("a", a), ("b", b)):
            if self._any(side.query(service, since_ns, until_ns)):
                continue
            seen = self._store.values_seen(service, side.key, since_ns)
            known = ", ".join(sorted(seen)[:20]) or "none"
            raise NothingToCompare(f"{name}: no calls of {service!r} with {side.text} {span}; "
                                   f"{side.text.partition('=')[0]} values seen: {known}")

    def _any(self, query: CallQuery) -> bool:
        return bool(self._store.timings(replace(query, limit=1)))

    def _side(self, service: str, selector: Selector, since_ns: int, until_ns: int) -> Side:
        cap = self.config.sample_cap
        timings = self._store.timings(selector.query(service, since_ns, until_ns, limit=cap,
                                                     sample=True))
        side = Side(
            durations_s=np.array([t.duration_s for t in timings], dtype=np.float64),
            errors=np.array([t.error for t in timings], dtype=bool),
            input_tokens=_column([t.input_tokens for t in timings]),
            output_tokens=_column([t.output_tokens for t in timings]),
            # the priced calls among the same sample (unpriced ones left out)
            cost_usd=np.array([t.cost_usd for t in timings if t.cost_usd is not None],
                              dtype=np.float64))
        if self._texts is None and self._toxicity is None:
            return side
        calls = self._store.calls(selector.query(
            service, since_ns, until_ns, limit=self.config.text_cap, sample=True,
            with_text=Direction.COMPLETION))
        return self._with_texts(side, calls)

    def _with_texts(self, side: Side, calls: list[LLMCall]) -> Side:
        completions = [c.completion or "" for c in calls]
        vectors = self._texts.embed(completions) if self._texts is not None else None
        scores = None
        if self._toxicity is not None:
            scorer = self._toxicity.scorer
            if not completions:
                scores = np.zeros(0)
            elif (vectors is not None and isinstance(scorer, EmbeddingScorer)
                  and self._texts is not None
                  and scorer.embedding_model == self._texts.embedder.model_id):
                scores = scorer.score_embeddings(vectors)
            elif self._texts is not None:
                with self._texts.cpu:
                    scores = scorer.score(completions)
            else:
                scores = scorer.score(completions)
        if vectors is not None and not completions:
            vectors = None  # no rows: too few to test, said as insufficient data
        return replace(side, toxicity=scores, embeddings=vectors,
                       prompt_keys=tuple(c.prompt or "" for c in calls))

    def _with_evaluations(self, service: str, a: tuple[Selector, Side],
                          b: tuple[Selector, Side], since_ns: int,
                          until_ns: int) -> tuple[Side, Side]:
        """Both sides with the evaluations of the names they share, the most common first."""
        if not self.config.max_evaluations:
            return a[1], b[1]
        queries = [selector.query(service, since_ns, until_ns) for selector, _ in (a, b)]
        counts = [self._store.side_evaluation_names(q, limit=_NAMES_READ) for q in queries]
        names = shared_evaluations(counts[0], counts[1], self.config.max_evaluations)
        sides = []
        for query, (_, side) in zip(queries, (a, b), strict=True):
            found: dict[str, Scores] = {}
            for name in names:
                rows = self._store.side_evaluations(query, name, limit=self.config.sample_cap)
                found[name] = scores_of([r.score for r in rows], [r.label for r in rows],
                                        pass_labels=self._passes.labels,
                                        pass_threshold=self._passes.threshold)
            sides.append(replace(side, evaluations=found))
        return sides[0], sides[1]


def _column(values: list[int | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def comparison_json(service: str, a: Selector, b: Selector, since_ns: int, until_ns: int,
                    found: Comparison, *, origin: str, created_ns: int,
                    settings: CompareSettings) -> dict[str, Any]:
    """What the API answers and the store keeps of one comparison."""
    return {
        "service": service, "a": a.text, "b": b.text, "origin": origin,
        "since": rfc3339(since_ns), "until": rfc3339(until_ns), "created": rfc3339(created_ns),
        "alpha": settings.alpha, "min_samples": settings.min_samples,
        "verdict": found.verdict, "regressed": list(found.regressed),
        "measures": [measure_json(m) for m in found.measures],
    }


def measure_json(m: Measure) -> dict[str, Any]:
    """One measure: the `driftwatch compare --json` line (with the comparison's id)."""
    return {
        "measure": m.measure, "label": m.label, "a": m.a, "b": m.b, "unit": m.unit,
        "n_a": m.n_a, "n_b": m.n_b, "p_value": m.p_value,
        "interval": list(m.interval) if m.interval is not None else None,
        "significant": m.significant, "worse": m.worse, "effect": m.effect,
        "test": m.test, "verdict": m.verdict, "evaluation": m.evaluation,
    }
