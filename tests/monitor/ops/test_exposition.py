"""/metrics is valid Prometheus exposition by promtool's own check, even with hostile label
values from the wire (ESC, CR, newline, quotes): they are escaped, never raw."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.harness import Daemon, get
from tests.monitor.jobs.test_segments import run_latency, send

HOSTILE = 'evil\x1b[2J\r\nfake_metric 1\t"q"\\'


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_metrics_of_a_daemon_fed_hostile_names(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon(latency={"min_samples": 10})
    send(daemon, HOSTILE, 12)
    run_latency(daemon)
    status, text = get(daemon.ops + "/metrics")
    assert status == 200 and "driftwatch_latency_duration_seconds{" in text

    checked = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                             capture_output=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not any(c in text for c in "\x1b\r\t"), "a control character went out raw"
    assert "\nfake_metric 1" not in text
    assert r'service="evil\\x1b[2J\\r\\nfake_metric 1\\t\"q\"\\"' in text
