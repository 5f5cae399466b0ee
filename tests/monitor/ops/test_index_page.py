"""A person who opens the ops address in a browser gets an index: where the metrics and the
API are, and the latest results with their reports; nothing from the wire runs as markup."""

from __future__ import annotations

import re

from tests.harness import Daemon, get, raw_request
from tests.monitor.jobs.test_segments import run_latency, send

HOSTILE = '<script>alert("x")</script>&'


def test_the_root_links_the_api_and_every_latest_report_with_texts_escaped(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon(latency={"min_samples": 10})
    status, headers, body = raw_request("GET", daemon.ops + "/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "No detector results yet" in page

    send(daemon, HOSTILE, 3)
    run_latency(daemon)
    page = get(daemon.ops + "/")[1]
    for href in ("/metrics", "/api/v1/results", "/api/v1/alerts", "/api/v1/calls?limit=20"):
        assert f'href="{href}"' in page
    assert "<script" not in page and "&lt;script&gt;alert(&quot;x&quot;)" in page
    reports = re.findall(r'href="(/reports/latency/\d+)"', page)
    assert len(reports) == 2  # the service as a whole and its one model
    for report in reports:
        assert get(daemon.ops + report)[0] == 200
