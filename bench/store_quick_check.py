"""What the start-up integrity check (`PRAGMA quick_check`, run before the daemon listens)
costs on a store of a given size.

    .venv/bin/python bench/store_quick_check.py                  # 200,000 calls, ~420 MiB
    .venv/bin/python bench/store_quick_check.py --calls 50000

Writes `--calls` calls (a 1,200-character prompt and a 600-character completion each) into
a temporary store, closes it, then times `SqliteStore.quick_check` on a fresh open: once as
the page cache left it (warm), and once after asking the kernel to drop the file's pages
(cold, where posix_fadvise is honoured). Wall-clock seconds.
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

from monitor.core.components import WriteBatch  # noqa: E402
from monitor.core.records import LLMCall  # noqa: E402
from monitor.store.sqlite import SqliteStore  # noqa: E402

T0 = 1_700_000_000_000_000_000


def fill(path: Path, calls: int) -> None:
    store = SqliteStore(path, synchronous="NORMAL")
    for first in range(0, calls, 5000):
        store.write(WriteBatch(calls=[LLMCall(
            trace_id=os.urandom(16).hex(), span_id=os.urandom(8).hex(), parent_span_id=None,
            service="bench",
            provider="openai", request_model="gpt-4o", response_model="gpt-4o",
            operation="chat", start_ns=T0 + i, duration_s=1.0,
            prompt=os.urandom(600).hex(), completion=os.urandom(300).hex())
            for i in range(first, min(first + 5000, calls))]))
    store.close()


def timed_check(path: Path) -> float:
    store = SqliteStore(path)
    began = time.perf_counter()
    store.quick_check()
    took = time.perf_counter() - began
    store.close()
    return took


def drop_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--dir", help="where the temporary store goes (default: $TMPDIR)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "bench.db"
        fill(path, args.calls)
        size_mib = path.stat().st_size / 2**20
        warm = timed_check(path)
        drop_cache(path)
        cold = timed_check(path)
    print(f"{args.calls} calls, {size_mib:.0f} MiB: quick_check {warm:.2f} s warm, "
          f"{cold:.2f} s cold")


if __name__ == "__main__":
    main()
