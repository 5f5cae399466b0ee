"""A service named to attack the operator's terminal (ESC sequences, a carriage return, a
newline that forges a row) reaches `driftwatch calls` and `driftwatch status` as visible
escapes, one row per call or result."""

from __future__ import annotations

from tests.harness import Daemon, cli
from tests.monitor.jobs.test_segments import run_latency, send

HOSTILE = "bot\x1b]0;pwned\x07\x1b[2J\rok\nFORGED ROW"


def test_calls_and_status_show_a_hostile_name_escaped_on_its_own_row(
        start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon(latency={"min_samples": 10})
    send(daemon, HOSTILE, 3)
    run_latency(daemon)

    calls = cli("calls", "--config", str(daemon.config_path), "--since", "1d").stdout
    status = cli("status", "--ops", daemon.ops).stdout
    for out in (calls, status):
        assert not any(c in out for c in "\x1b\x07\r"), out
        assert not any(line.startswith("FORGED ROW") for line in out.splitlines())
    rows = [line for line in calls.splitlines() if "bot\\x1b]0;pw" in line]
    assert len(rows) == 3  # one line per call, the name escaped and cut to its column
    assert len([line for line in status.splitlines() if "bot\\x1b]0;pw" in line]) == 2
