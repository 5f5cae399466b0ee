"""What the detection jobs cost the daemon in memory and time at full sample caps.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/detection_memory.py            # 2,400 per window
    HF_HUB_OFFLINE=1 .venv/bin/python bench/detection_memory.py --calls 600

Starts `driftwatch run` on a temporary store with the detectors' defaults (1,000
permutations, 2,000 samples per segment, direction and window, explanations on; only the
intervals are long, so that jobs run when this script asks). One app exports `--calls`
chat spans backdated into a baseline window (banking77 prompts, CLINC150 texts as answers:
short texts, so that embedding them takes about a minute) and as many into the current
window (the other way round, so there is drift to explain). It pins the baseline, then
runs the drift, toxicity and latency jobs one after another and prints, after each, its
time and the resident memory of the daemon process and its extraction workers: now and the
peak so far (VmHWM).

Memory is what a deployment must allow for: the peak after drift is the daemon's peak at
these caps, for these short texts. Longer ones take far longer to embed; the model runs at
most 1,024 word pieces per pass (detectors/bert.py), so they should not need much more
memory, but this script does not measure them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ingest import rss_mb, start_daemon  # noqa: E402

from monitor.cli.client import OpsClient  # noqa: E402
from monitor.cli.demo import SERVICE, SupportBot  # noqa: E402
from monitor.core.records import rfc3339  # noqa: E402

MINUTE_NS = 60 * 10**9


def texts(name: str) -> list[str]:
    with (REPO / "corpora" / f"{name}.jsonl").open() as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def send(bot: SupportBot, prompts: list[str], answers: list[str], n: int,
         window_ns: tuple[int, int]) -> None:
    import random

    rng = random.Random(7)
    start, end = window_ns
    for i in range(n):
        at = start + (end - start) * i // n
        bot.chat(prompts[i % len(prompts)], answers[i % len(answers)], model="gpt-4o",
                 start_ns=at, duration_s=rng.uniform(0.5, 3.0), error=None, rng=rng)
    bot.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2_400, help="calls per window")
    args = parser.parse_args()
    banking, clinc = texts("banking77"), texts("clinc150")
    with tempfile.TemporaryDirectory() as tmp:
        # Defaults but for the intervals, so that the jobs run only when asked.
        process, endpoints = start_daemon(Path(tmp), {
            "drift": {"interval": "24h", "self_check_interval": "24h"},
            "toxicity": {"interval": "24h", "window": "1h"},
            "latency": {"interval": "24h", "window": "1h"}})
        pid = process.pid
        rows: list[tuple[str, float, float, float]] = []

        def measure(stage: str, seconds: float) -> None:
            rows.append((stage, seconds, rss_mb(pid, "VmRSS"), rss_mb(pid, "VmHWM")))

        try:
            measure("started, model loaded", 0.0)
            client = OpsClient(endpoints["ops"])
            bot = SupportBot(f"http://{endpoints['otlp_http']}")
            now = time.time_ns()
            baseline = (now - 170 * MINUTE_NS, now - 110 * MINUTE_NS)
            began = time.monotonic()
            send(bot, banking, clinc, args.calls, baseline)
            send(bot, clinc, banking, args.calls, (now - 55 * MINUTE_NS, now - MINUTE_NS))
            bot.shutdown()
            measure(f"{2 * args.calls:,} calls ingested", time.monotonic() - began)
            client.post("/api/v1/baselines", {"service": SERVICE, "model": None,
                                              "from": rfc3339(baseline[0]),
                                              "to": rfc3339(baseline[1])})
            for job in ("drift", "toxicity", "latency"):
                began = time.monotonic()
                results = client.post(f"/api/v1/jobs/{job}/run")["result"]
                n = max((r.get("n_current") or 0 for r in results
                         if r.get("service") == SERVICE), default=0)
                measure(f"{job} job ({len(results)} results, up to {n:,} current samples)",
                        time.monotonic() - began)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print("\n| after | seconds | RSS now (daemon + workers) | peak so far |\n|---|---:|---:|---:|")
    for stage, seconds, now_mb, peak_mb in rows:
        print(f"| {stage} | {seconds:.1f} | {now_mb:.0f} MB | {peak_mb:.0f} MB |")


if __name__ == "__main__":
    main()
