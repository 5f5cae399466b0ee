"""SLO burn-rate counts over 5m-3d windows: the latency job's minute rollup beside counting
each window straight from the store.

    .venv/bin/python bench/burn_windows.py                 # 1,000,000 calls over 3 days
    .venv/bin/python bench/burn_windows.py --calls 200000

Writes `--calls` calls of one segment at uniformly random start times over the 3 days
before a fixed "now" into a temporary store (5% errors, durations 0-20 s), then times, for
the job's seven windows (5m, 30m, 1h, 2h, 6h, 1d, 3d):

- direct: one `Store.count` per window, what a job without the rollup reads every run;
- rollup, first run: `TrailingCounts` reading every settled minute once (also its hourly
  rebuild);
- rollup, next run: one minute later, reading the new minute and the unsettled tail.

Both sides' counts are checked equal. Wall-clock seconds, best of `--repeat` runs.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors.latency import BURN_WINDOWS_S  # noqa: E402
from monitor.core.components import CallQuery, WindowCount, WriteBatch  # noqa: E402
from monitor.core.records import CallStatus, LLMCall, Segment  # noqa: E402
from monitor.store.burn_counts import TrailingCounts  # noqa: E402
from monitor.store.sqlite import SqliteStore  # noqa: E402

T = TypeVar("T")
S = 10**9
NOW = 1_700_000_000 * S
SLOW_S = 10.0


def fill(store: SqliteStore, n: int) -> None:
    rng = random.Random(1)
    for first in range(0, n, 50_000):
        store.write(WriteBatch(calls=[LLMCall(
            trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}", parent_span_id=None,
            service="chat", provider="openai", request_model="gpt-4o",
            response_model="gpt-4o", operation="chat",
            start_ns=NOW - rng.randrange(3 * 86400 * S), duration_s=rng.random() * 20,
            status=CallStatus.ERROR if rng.random() < 0.05 else CallStatus.OK)
            for i in range(first, min(n, first + 50_000))]))


def best(repeat: int, work: Callable[[], T]) -> tuple[float, T]:
    """The least wall-clock seconds of `repeat` runs, and the last run's result."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        out = work()
        times.append(time.perf_counter() - began)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    segment = Segment(service="chat", model="gpt-4o")
    windows = [length * S for length in BURN_WINDOWS_S.values()]
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "burn.db")
        fill(store, args.calls)

        def direct(now: int = NOW + 60 * S) -> list[WindowCount]:
            return [store.count(CallQuery(service="chat", model="gpt-4o", since_ns=now - w,
                                          until_ns=now), slow_s=SLOW_S) for w in windows]

        def first_run() -> TrailingCounts:
            counts = TrailingCounts(store, slow_s=SLOW_S)
            counts.counts(segment, NOW, windows)
            return counts

        direct_s, expected = best(args.repeat, direct)
        first_s, _ = best(args.repeat, first_run)
        warm = first_run()
        next_s, got = best(1, lambda: warm.counts(segment, NOW + 60 * S, windows))
        store.close()
    assert got == expected, "the rollup and the store disagree"
    print(f"{args.calls:,} calls over 3 days, one segment, 7 windows (5m-3d)\n"
          "| direct counts | rollup, first run (and hourly rebuild) | rollup, next run |\n"
          f"|---:|---:|---:|\n| {direct_s:.2f} s | {first_s:.2f} s | {next_s * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
