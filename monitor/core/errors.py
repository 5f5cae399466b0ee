"""The daemon's exceptions, one tree:

    DriftwatchError
    ├── ConfigError            a config file, key or value is wrong (names the path and value)
    ├── StoreError             the store cannot be opened, migrated or written
    ├── IngestError            an OTLP request cannot be taken
    │   ├── BadRequest         permanent: malformed body; 400 / INVALID_ARGUMENT
    │   ├── TooLarge           permanent: over the size cap; 413 / RESOURCE_EXHAUSTED
    │   └── Overloaded         retryable: queue full; 503 + Retry-After / UNAVAILABLE + RetryInfo
    └── DetectorError          a detector run failed

Ingest errors carry `permanent`, so a transport maps them to its codes in one place.
"""

from __future__ import annotations


class DriftwatchError(Exception):
    """Base of every error the daemon raises on purpose."""


class ConfigError(DriftwatchError):
    """The configuration is invalid; the message names the path and the value."""


class StoreError(DriftwatchError):
    """The store failed; what was committed before stays committed."""


class IngestError(DriftwatchError):
    permanent: bool = True


class BadRequest(IngestError):
    """The request body cannot be decoded; retrying it will not help."""


class TooLarge(IngestError):
    """The body is over the configured cap (checked while decompressing)."""


class Overloaded(IngestError):
    """The ingest queue is full; the client should retry after `retry_after_s`."""

    permanent = False

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DetectorError(DriftwatchError):
    """A detector could not produce a result."""
