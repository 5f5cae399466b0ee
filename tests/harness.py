"""The real daemon as a subprocess on free loopback ports, and the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 60.0


_BLOCKER = """\
import sys

class _Absent:
    \"\"\"Imports of these packages fail as if they were not installed.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {names!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Absent())
"""


# What the `torch` extra brings; the daemon on its defaults needs none of it.
TORCH_PACKAGES = ("torch", "sentence_transformers", "transformers")


def without_packages(directory: Path, *names: str) -> dict[str, str]:
    """Environment under which a Python process finds none of `names`, as on an install
    without them: a sitecustomize on PYTHONPATH refuses their imports."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(_BLOCKER.format(names=set(names)))
    return {"PYTHONPATH": str(directory)}


def cli(*args: str, env: dict[str, str] | None = None, check: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `driftwatch ARGS` as a user would, in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-m", "monitor.cli", *args], capture_output=True, text=True,
        timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"driftwatch {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


@dataclass
class Daemon:
    """A running `driftwatch run` and where it listens."""

    config_path: Path
    store_path: Path
    process: subprocess.Popen[str] | None = None
    endpoints: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment

    @property
    def grpc(self) -> str:
        return self.endpoints["otlp_grpc"]

    @property
    def http(self) -> str:
        return "http://" + self.endpoints["otlp_http"]

    @property
    def ops(self) -> str:
        return self.endpoints["ops"]

    def start(self) -> Daemon:
        self.log_path = self.config_path.with_suffix(".log")
        with self.log_path.open("a") as log:  # the child keeps its own copy of the fd
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "run", "--config", str(self.config_path)],
                stdout=subprocess.PIPE, stderr=log, text=True, cwd=REPO,
                env={**os.environ, **self.env})
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], STARTUP_TIMEOUT_S)
        line = self.process.stdout.readline() if ready else ""
        if "listening:" not in line:
            self.process.kill()
            raise AssertionError(f"daemon did not start: {line!r}\n{self.log_path.read_text()}")
        for part in line.split("listening:", 1)[1].split():
            name, _, address = part.partition("=")
            self.endpoints[name] = address
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        if self.process.stdout:
            self.process.stdout.close()
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def calls(self, *args: str) -> list[dict[str, Any]]:
        """`driftwatch calls --json` over the whole retention window."""
        out = cli("calls", "--config", str(self.config_path), "--since", "30d", "--json",
                  *args).stdout
        return [json.loads(line) for line in out.split("\n") if line.strip()]

    def metrics(self) -> dict[str, float]:
        """/metrics as {'name{labels}': value}."""
        text = get(self.ops + "/metrics")[1]
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                samples[key] = float(value)
        return samples

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include the given ones."""
        total = 0.0
        for key, value in self.metrics().items():
            base, _, rest = key.partition("{")
            if base != name:
                continue
            if all(f'{k}="{v}"' in rest for k, v in labels.items()):
                total += value
        return total


def write_config(directory: Path, **overrides: Any) -> Path:
    """A config on free loopback ports with a store under `directory`; overrides merge in."""
    config: dict[str, Any] = {
        "receivers": {"otlp_grpc": {"endpoint": "127.0.0.1:0"},
                      "otlp_http": {"endpoint": "127.0.0.1:0"}},
        "ops": {"endpoint": "127.0.0.1:0"},
        "store": {"path": str(directory / "driftwatch.db")},
        # The embedding detectors load a model (seconds of CPU); tests that need them
        # turn them on.
        "drift": {"enabled": False},
        "toxicity": {"enabled": False},
    }
    _merge(config, overrides)
    path = directory / "driftwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    return request("GET", url, headers=headers)


def request(method: str, url: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, str]:
    status, _, data = raw_request(method, url, body, headers)
    return status, data.decode(errors="replace")


def raw_request(method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
