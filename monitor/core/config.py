"""The config vocabulary every section is built from: the strict frozen `Section`, durations,
sizes, endpoints, files that must exist, TLS and bearer-token auth.

The whole config (`monitor.config.Config`) composes the sections each component keeps beside
itself; this module imports nothing of ours.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_UNIT_B = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 10**6, "MiB": 1 << 20,
           "GB": 10**9, "GiB": 1 << 30}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like "90s", "15m", "7d"."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 15m, 7d")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError("expected a duration like 30s, 15m, 7d")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_size(value: Any) -> int:
    """Bytes from an integer or a string like "64MiB"."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 4MiB")
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError("expected a size like 65536, 512KiB or 64MiB")
    return int(match.group(1)) * _UNIT_B[match.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
Size = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_endpoint(endpoint: str) -> str:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError("expected host:port, e.g. 127.0.0.1:4317")
    return endpoint


Endpoint = Annotated[str, BeforeValidator(lambda v: _check_endpoint(str(v)))]


def _existing_file(path: Path) -> Path:
    if not path.is_file():
        raise ValueError(f"no such file, got: {str(path)!r}")
    return path


# A file the daemon reads (certificates, keys, secrets), checked to exist when the config is.
ExistingFile = Annotated[Path, AfterValidator(_existing_file)]


class TlsConfig(Section):
    cert_file: ExistingFile
    key_file: ExistingFile


class AuthConfig(Section):
    """Bearer-token auth: requests must carry `Authorization: Bearer <token>`."""

    bearer_token: str | None = Field(default=None, min_length=16)
    bearer_token_file: ExistingFile | None = None

    @model_validator(mode="after")
    def _one_source(self) -> AuthConfig:
        if self.bearer_token and self.bearer_token_file:
            raise ValueError("set bearer_token or bearer_token_file, not both")
        return self

    def token(self) -> str | None:
        if self.bearer_token_file:
            return self.bearer_token_file.read_text().strip() or None
        return self.bearer_token
