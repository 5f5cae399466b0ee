"""Shared fixtures: the real daemon on free loopback ports, stopped after each test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Daemon, write_config

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start a daemon with config overrides; every daemon started is stopped afterwards."""
    started: list[Daemon] = []

    def start(**overrides: Any) -> Daemon:
        config = write_config(tmp_path, **overrides)
        daemon = Daemon(config_path=config, store_path=tmp_path / "driftwatch.db").start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.alive():
            daemon.stop()


@pytest.fixture
def daemon(start_daemon: Callable[..., Daemon]) -> Daemon:
    return start_daemon()
