"""What a group commit costs as the calls table grows: random trace ids (what W3C trace
context gives every real span) beside ids that increase with time, on the same schema.

    .venv/bin/python bench/store_growth.py                      # to 400,000 rows
    .venv/bin/python bench/store_growth.py --rows 1000000 --commit 4096

Extracts `--batch` real chat calls once (300-1,500-character texts from
corpora/long_texts.jsonl, as bench/ingest.py sends), then writes copies of them through
`SqliteStore.write` in commits of `--commit` calls, each copy with new ids and later start
times, until the table holds `--rows`. Every `--step` rows it prints the CPU per call (this
process, the store's checkpointer thread included) and the bytes written per call (WAL
appends and checkpoint copies: the process's write() bytes).

The (trace_id, span_id) key is what finds a re-delivered span, a content event's span and
a wrapper's inner call. With random ids each commit lands in leaves all over that index, so
once the index has more leaves than a commit has calls, every call rewrites a page of its
own; with increasing ids the same inserts all land at the index's right edge.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ingest import template_calls  # noqa: E402

from monitor.core.components import WriteBatch  # noqa: E402
from monitor.core.records import LLMCall  # noqa: E402
from monitor.store.sqlite import SqliteStore  # noqa: E402

S = 10**9


def written_bytes() -> int:
    """write() bytes of this process so far: WAL appends and checkpoint copies."""
    fields = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    return int(fields["wchar"])


Step = tuple[int, float, float, float]


def fill(ids: str, calls: list[LLMCall], args: argparse.Namespace) -> list[Step]:
    """(rows, CPU µs per call, KiB written per call, bytes on disk per call so far) after
    each step of `args.step` rows."""
    out: list[Step] = []
    serial = 0
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = SqliteStore(Path(tmp) / "growth.db")
        rows = 0
        while rows < args.rows:
            cpu0, bytes0, step_rows = time.process_time(), written_bytes(), 0
            while step_rows < args.step:
                batch = []
                for call in calls[:args.commit]:
                    serial += 1
                    trace_id = (os.urandom(16).hex() if ids == "random"
                                else f"{serial:032x}")
                    batch.append(call._replace(
                        trace_id=trace_id, span_id=os.urandom(8).hex(),
                        start_ns=call.start_ns + serial * 1_000_000))
                store.write(WriteBatch(calls=batch))
                step_rows += len(batch)
            rows += step_rows
            out.append((rows, (time.process_time() - cpu0) / step_rows * 1e6,
                        (written_bytes() - bytes0) / step_rows / 1024,
                        store.disk_bytes() / rows))
        store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=400_000)
    parser.add_argument("--step", type=int, default=50_000)
    parser.add_argument("--commit", type=int, default=1024, help="calls per group commit")
    parser.add_argument("--batch", type=int, default=4096, help="distinct calls to copy")
    parser.add_argument("--dir", default=None, help="where the temporary store goes")
    args = parser.parse_args()
    calls = template_calls(max(args.batch, args.commit))
    results = {ids: fill(ids, calls, args) for ids in ("random", "increasing")}
    texts = sum(len(t.encode()) for c in calls for t in (c.system_prompt, c.prompt,
                                                           c.completion) if t) / len(calls)
    print(f"\n{args.commit} calls per commit; per call over each step of {args.step:,} rows; "
          f"the calls' texts average {texts:,.0f} bytes\n"
          "| rows in the table | random ids: CPU µs | KiB written | on disk, bytes per call "
          "| increasing ids: CPU µs | KiB written |\n|---:|---:|---:|---:|---:|---:|")
    for (rows, cpu, kib, disk), (_, cpu_inc, kib_inc, _) in zip(
            results["random"], results["increasing"], strict=True):
        print(f"| {rows:,} | {cpu:.1f} | {kib:.1f} | {disk:,.0f} | {cpu_inc:.1f} "
              f"| {kib_inc:.1f} |")


if __name__ == "__main__":
    main()
