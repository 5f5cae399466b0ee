"""The CLI as a person runs it: help everywhere, version, and `calls` filters."""

from __future__ import annotations

import json

import pytest

from monitor import __version__
from tests.apps import LLMApp, otlp_exporter
from tests.harness import Daemon, cli


@pytest.mark.parametrize("command", [[], ["run"], ["validate"], ["calls"], ["version"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = cli(*command, "--help")
    assert "usage: driftwatch" in result.stdout


def test_version() -> None:
    assert cli("version").stdout.strip() == f"driftwatch {__version__}"


def test_calls_filters_by_service_and_prints_a_table_or_json_lines(start_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon: Daemon = start_daemon()
    for service in ("billing-bot", "search-bot"):
        app = LLMApp(otlp_exporter("grpc", daemon.grpc), service=service)
        app.chat(f"question for {service}", "answer", model="claude-sonnet", provider="anthropic")
        app.flush()
        app.shutdown()

    lines = cli("calls", "--config", str(daemon.config_path), "--service", "billing-bot",
                "--json").stdout.splitlines()
    assert [json.loads(line)["prompt"] for line in lines] == ["question for billing-bot"]

    table = cli("calls", "--config", str(daemon.config_path)).stdout
    assert "billing-bot" in table and "search-bot" in table and "2 calls" in table

    none = cli("calls", "--config", str(daemon.config_path), "--since", "2030-01-01T00:00:00Z")
    assert "no calls" in none.stdout


def test_calls_without_a_store_says_where_it_looked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = cli("calls", "--store", str(tmp_path / "missing.db"), check=False)
    assert result.returncode == 1
    assert "missing.db" in result.stderr


def test_calls_rejects_an_unreadable_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "x.db").touch()
    result = cli("calls", "--store", str(tmp_path / "x.db"), "--since", "last tuesday",
                 check=False)
    assert result.returncode == 2
    assert "last tuesday" in result.stderr
