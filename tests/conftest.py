"""Shared fixtures: the real daemon on free loopback ports, stopped after each test."""

from __future__ import annotations

import os
import subprocess
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

    def start(*, home: str | None = None, **overrides: Any) -> Daemon:
        """A daemon with its config and store in tmp_path, or in tmp_path/HOME: daemons
        started with the same home share a store (a restart), others do not."""
        directory = tmp_path if home is None else tmp_path / home
        directory.mkdir(exist_ok=True)
        config = write_config(directory, **overrides)
        daemon = Daemon(config_path=config, store_path=directory / "driftwatch.db").start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.alive():
            daemon.stop()


@pytest.fixture
def daemon(start_daemon: Callable[..., Daemon]) -> Daemon:
    return start_daemon()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed (certificate, key) for localhost and 127.0.0.1, made by openssl."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key
