"""The config vocabulary every section is built from: the strict frozen `Section`, durations,
sizes, endpoints, files that must exist, TLS and bearer-token auth (a section that names
no usable token is an error, never auth turned off).

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
    field_validator,
    model_validator,
)

from monitor.core.errors import ConfigError

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


MIN_TOKEN_CHARS = 16


def check_token(token: str) -> str:
    """The token without surrounding whitespace, if it is usable.

    :raises ValueError: saying why not, without echoing the token (its length at most).
    """
    token = token.strip()
    if not token:
        raise ValueError("a token is required; an empty one would turn auth off, got: nothing")
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"a token needs at least {MIN_TOKEN_CHARS} characters, got: "
                         f"{len(token)}")  # its length only: never echo a secret
    if not all("!" <= c <= "~" for c in token):
        raise ValueError("a token is one word of visible ASCII characters, got: spaces, "
                         "control or non-ASCII characters")
    return token


def read_token(path: Path) -> str:
    """The token a secret file holds.

    :raises ValueError: the file cannot be read or holds no usable token; names the file.
    """
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise ValueError(f"cannot read the token, got: {str(path)!r} ({reason})") from None
    try:
        return check_token(text)
    except ValueError as exc:
        raise ValueError(f"{path} holds no usable token: {exc}") from None


class AuthConfig(Section):
    """Bearer-token auth: requests must carry `Authorization: Bearer <token>`.

    A section without a usable token is refused rather than read as "no auth": an empty or
    short secret file must not open the listener it was meant to close.
    """

    bearer_token: str | None = None
    bearer_token_file: Path | None = None

    @field_validator("bearer_token")
    @classmethod
    def _usable_token(cls, token: str | None) -> str | None:
        return None if token is None else check_token(token)

    @field_validator("bearer_token_file")
    @classmethod
    def _usable_file(cls, path: Path | None) -> Path | None:
        if path is not None:
            read_token(_existing_file(path))
        return path

    @model_validator(mode="after")
    def _one_source(self) -> AuthConfig:
        if (self.bearer_token is None) == (self.bearer_token_file is None):
            raise ValueError("set bearer_token or bearer_token_file (exactly one); auth "
                             "without a token would leave the listener open, got: "
                             f"{'both' if self.bearer_token else 'neither'}")
        return self

    def token(self) -> str:
        """The token, the file read now.

        :raises ConfigError: the file no longer holds a usable token (never None: auth
            configured is auth on).
        """
        if self.bearer_token is not None:
            return self.bearer_token
        assert self.bearer_token_file is not None  # one of the two, by validation
        try:
            return read_token(self.bearer_token_file)
        except ValueError as exc:
            raise ConfigError(f"bearer_token_file: {exc}") from None
